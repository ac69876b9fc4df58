"""Robustness: robust-accuracy curves (per attack, class, group), sanity findings, and a live
attack on one example with an eps slider and attack choice."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import streamlit as st

from audit.render.figures import robustness as rfig
from dashboards import _charts, _live, _state, _widgets

report = _state.require_report()
st.title("Adversarial robustness")
result = _widgets.section_result(report, "robustness")

if result is not None:
    st.markdown(f"{result.n} test examples, clean accuracy **{result.clean_accuracy:.1%}**, norm "
                f"**{result.norm}**, attacks: {', '.join(result.attacks)}.")
    c1, c2 = st.columns([1, 1])
    with c1:
        by = st.radio("Curves by", ["attack", "class"] + (["group"] if result.attributes else []), horizontal=True,
                      key="rob_by")
        attribute = None
        if by == "group":
            attribute = st.selectbox("Sensitive attribute", list(result.attributes), key="rob_attr")
        _widgets.figure("rob_curves", lambda: rfig.robust_accuracy_curves(result, by=by, attribute=attribute), by, attribute)
    with c2:
        eps_grid = [float(e) for e in result.eps]
        at = st.select_slider("Budget eps (the audit's grid)", options=eps_grid,
                              value=next((e for e in eps_grid if e > 0), eps_grid[0]), key="rob_grid_eps")
        j = eps_grid.index(at)
        table = [{"curve": c.name if c.attribute is None else f"{c.attribute} = {c.name}", "kind": c.kind,
                  "robust accuracy": float(c.accuracy[j]), "low": float(c.low[j]), "high": float(c.high[j]), "n": c.n}
                 for c in result.curves if by == "attack" and c.kind in ("attack", "baseline") or c.kind == by
                 and (attribute is None or c.attribute == attribute)]
        st.dataframe(pd.DataFrame(table), hide_index=True, width="stretch")
        st.metric(f"Robust accuracy (worst case over attacks) at eps {at:g}",
                  f"{result.curve('ensemble').accuracy[j]:.1%}")
    st.subheader("Sanity checks")
    _widgets.findings_list(result.findings, empty="The audit recorded no sanity findings.")
    tables = rfig.report_tables(result)  # AutoAttack's stages; distances per class (PGD bisection, C&W)
    if result.min_found.size or result.cw_distance.size:
        with st.expander("Minimal perturbations", expanded=bool(result.cw_distance.size)):
            _widgets.figure("rob_minpert", lambda: rfig.min_perturbation_histogram(result))
    for table in tables:
        st.caption(table["caption"])
        st.dataframe(pd.DataFrame([[text for text, _ in cells] for _, cells in table["rows"]],
                                  index=[label for label, _ in table["rows"]], columns=table["columns"]),
                     width="stretch")

st.subheader("Attack one example")
ctx = _state.live_context(report)
norm = result.norm if result is not None else "linf"
if ctx.live:
    model, data = ctx.model, ctx.data
    key = _live.key_of(model, data)
    proba = _live.probabilities(model, data, key)
    row = _widgets.pick_example(model, data, proba, key="rob")
    choices = _live.attack_choices(model, data, norm)
    if row is not None and choices:
        from audit.robustness import default_eps

        top = float(max(result.eps)) if result is not None else float(max(default_eps(data.kind, norm)))
        c1, c2 = st.columns(2)
        attack = c1.selectbox("Attack", choices, index=choices.index("pgd") if "pgd" in choices else 0, key="rob_attack")
        eps = c2.slider(f"eps ({norm})", min_value=0.0, max_value=top, value=top / 2, step=top / 100, key="rob_eps")
        with st.spinner(f"Running {attack} ..."):
            out = _live.attack_example(model, data, key, row, attack, eps, norm)
        names = data.class_names
        before, after = int(np.argmax(out["clean"])), int(np.argmax(out["attacked"]))
        delta = out["adversarial"] - out["original"]
        size = float(np.abs(delta).max()) if norm == "linf" else float(np.sqrt((delta ** 2).sum()))
        m1, m2, m3 = st.columns(3)
        m1.metric("Prediction before", f"{names[before]} ({out['clean'][before]:.0%})")
        m2.metric("Prediction after", f"{names[after]} ({out['attacked'][after]:.0%})",
                  delta="flipped" if after != before else "unchanged", delta_color="inverse" if after != before else "off")
        m3.metric(f"Perturbation size ({norm})", f"{size:.4g}")
        c1, c2 = st.columns(2)
        with c1:
            if size == 0:
                st.caption("The attack did not change this example (eps 0, or no gradient step helped).")
            if data.kind == "image":
                original, adversarial = out["original"], out["adversarial"]
                st.image([_charts.image(original), _charts.image(delta, signed=True), _charts.image(adversarial)],
                         caption=[f"{names[before]} ({out['clean'][before]:.0%})", f"{attack}, eps={eps:g}",
                                  f"{names[after]} ({out['attacked'][after]:.0%})"], width=180)
            else:
                st.altair_chart(_charts.perturbation(delta.ravel(), out["original"].ravel(),
                                                     tuple(data.feature_names)), width="stretch")
        with c2:
            st.altair_chart(_charts.probabilities(names, out["clean"], out["attacked"], label=out["label"]),
                            width="stretch")
elif result is not None and result.examples:
    st.caption("Adversarial examples saved in the report:")
    eps_saved = sorted({float(e.eps) for e in result.examples})
    pick = st.select_slider("eps", options=eps_saved, key="rob_saved_eps")
    st.pyplot(rfig.adversarial_examples(dataclasses.replace(
        result, examples=tuple(e for e in result.examples if float(e.eps) == pick))))

corrupted = report.sections.get("corruptions")
if corrupted is not None and corrupted.result is not None:
    from audit.render.figures import corruptions as cfig

    cres = corrupted.result
    st.subheader("Common corruptions")
    st.markdown(f"{cres.n} test examples, clean accuracy **{cres.clean_accuracy:.1%}**, mean corruption error "
                f"**{cres.mean_corruption_error:.1%}** (relative: {cres.relative_corruption_error:.1%}).")
    attrs = list(dict.fromkeys(g.attribute for g in cres.groups))
    grid_by = st.radio("Corruption grid by", ["severity", "class"] + (["group"] if attrs else []), horizontal=True,
                       key="rob_corr_by")
    if grid_by == "severity":
        _widgets.figure("rob_corr_grid", lambda: cfig.corruption_grid(cres))
    elif grid_by == "class":
        _widgets.figure("rob_corr_class", lambda: cfig.corruption_by_class(cres))
    else:
        st.pyplot(cfig.corruption_by_group(cres, st.selectbox("Sensitive attribute", attrs, key="rob_corr_attr")))
    _widgets.findings_list(cres.findings, empty="No corruption findings.")

transferred = report.sections.get("transfer")
if transferred is not None and transferred.result is not None:
    from audit.render.figures import transfer as tfig

    st.subheader("Transfer attacks (black-box attacker with a surrogate)")
    _widgets.figure("rob_transfer", lambda: tfig.transfer_curves(transferred.result))
    _widgets.findings_list(transferred.result.findings, empty="No transfer findings.")
