"""Explanation stability: how much of each attribution's top-k survives a perturbation that keeps
the prediction (random label-keeping PGD, and an attack aimed at the explanation), per method and
eps, with the spread over examples."""

from __future__ import annotations

import altair as alt
import numpy as np
import pandas as pd
import streamlit as st

from dashboards import _charts, _state, _widgets

report = _state.require_report()
st.title("Explanation stability under attack")
result = _widgets.section_result(report, "explanation_stability")
if result is None:
    st.stop()

st.markdown(f"{result.n} correctly classified test examples; top-**{result.k}** features per attribution; "
            f"methods: {', '.join(result.methods)}. An overlap of 1 means the same top features after the "
            "perturbation; the explanation attack moves the input within eps to push attribution off them while "
            "the predicted class stays.")
_widgets.findings_list(_widgets.section_findings(report, "explanation_stability"))

rows = []
for j, e in enumerate(result.eps):
    for m in result.methods:
        rows.append({"eps": float(e), "method": m, "label-stable share": float(result.stable_fraction[j]),
                     "top-k overlap (PGD)": float(result.top_k[m][j]),
                     "Spearman (PGD)": float(result.spearman[m][j]),
                     "top-k overlap (explanation attack)": float(result.attack_top_k[m][j]),
                     "Spearman (explanation attack)": float(result.attack_spearman[m][j]),
                     "attack targets": result.attack_source.get(m, m)})
table = pd.DataFrame(rows)

grid = [float(e) for e in result.eps]
at = st.select_slider("eps (the audit's grid)", options=grid, value=grid[-1], key="stab_eps")
j = grid.index(at)
bars = pd.DataFrame([{"method": m, "perturbation": kind, "top-k overlap": float(values[m][j])}
                     for m in result.methods
                     for kind, values in (("label-keeping PGD", result.top_k), ("explanation attack",
                                                                                 result.attack_top_k))])
c1, c2 = st.columns(2)
with c1:
    st.altair_chart(_charts.bars(bars, category="method", value="top-k overlap", color="perturbation",
                                 value_title=f"top-{result.k} overlap with the clean attribution",
                                 title=f"At eps {at:g}"), width="stretch")
with c2:
    method = st.selectbox("Spread over examples of", list(result.methods), key="stab_method")
    per = np.asarray(result.per_example_top_k[method][j], np.float64)
    per = per[np.isfinite(per)]
    if per.size:
        edges = np.linspace(0.0, 1.0, 11)
        counts, _ = np.histogram(per, bins=edges)
        hist = pd.DataFrame({"overlap from": edges[:-1], "overlap to": edges[1:], "examples": counts})
        st.altair_chart(alt.Chart(hist).mark_bar().encode(
            x=alt.X("overlap from:Q", bin="binned", title=f"top-{result.k} overlap (label-keeping PGD)"),
            x2="overlap to:Q", y=alt.Y("examples:Q"),
            tooltip=["overlap from", "overlap to", "examples"]).properties(height=260), width="stretch")
        st.caption(f"{per.size} examples whose label survived PGD at eps {at:g}; median overlap "
                   f"{np.median(per):.2f}.")
    else:
        st.caption(f"PGD changed every label at eps {at:g}: no example to compare.")
st.markdown("**The report's numbers**, one row per eps and method")
st.dataframe(table, hide_index=True, width="stretch", key="stab_table")
