"""'What would change this decision?': live counterfactuals for the picked row of the Explanations
page, with the fixed and one-way columns chosen by the user (audit.explain.counterfactuals)."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboards import _live


def show(model, data, row: int) -> None:
    """Counterfactual table for test row `row`: the original and each counterfactual, changed cells marked."""
    if data.kind != "tabular" or data.encoding is None:
        return
    st.subheader("What would change this decision?")
    names = list(data.encoding.raw_names)
    numeric = [c.name for c in data.encoding.columns if c.kind == "numeric"]
    sensitive = [n for n in names if n in data.sensitive]
    c1, c2, c3, c4 = st.columns([3, 3, 3, 1])
    immutable = c1.multiselect("Columns that cannot change", [n for n in names if n not in sensitive],
                               default=[], key="cf_immutable")
    up = c2.multiselect("May only increase", [n for n in numeric if n not in sensitive], key="cf_up")
    down = c3.multiselect("May only decrease", [n for n in numeric if n not in sensitive and n not in up],
                          key="cf_down")
    k = c4.number_input("How many", min_value=1, max_value=5, value=3, key="cf_k")
    if sensitive:
        st.caption(f"Sensitive inputs never change: {', '.join(sensitive)}.")
    monotone = tuple(sorted([(n, "increase") for n in up] + [(n, "decrease") for n in down]))
    with st.spinner("Searching counterfactuals ..."):
        res = _live.counterfactual_example(model, data, _live.key_of(model, data), int(row), tuple(sorted(immutable)),
                                           monotone, int(k))
    frame = res.to_frame()
    target = res.class_names[int(res.target[0])]
    split = res.validity_split()
    if not res.validity[0].any():
        st.warning(f"Infeasible: no change within the data's range and these constraints makes the model say "
                   f"{target!r}.")
        return
    st.caption(f"Of {int(k)} requested: {split['valid']} valid"
               + (f", {split['invalid']} invalid (fewer distinct changes than asked)" if split["invalid"] else "")
               + "; infeasible would mean none exists under these constraints.")
    st.caption(f"The cheapest changes that make the model say {target!r} (cost: MAD-scaled L1, 1 per changed "
               "category; highlighted cells differ from the original).")
    shown = frame[["kind", *names, "class", "cost", "sparsity"]].reset_index(drop=True)
    original = shown.iloc[0]

    def mark(r: pd.Series) -> list[str]:
        return ["background-color: #fff3c4; font-weight: 700" if r.name > 0 and c in names and r[c] != original[c]
                else "" for c in r.index]

    st.dataframe(shown.style.apply(mark, axis=1), hide_index=True, width="stretch")
