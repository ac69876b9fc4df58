"""Explanations: pick an example (by position, misclassified, class or group); SHAP waterfall,
LIME weights and, for images, saliency overlays side by side with their quality scores;
global importance (beeswarm / bar)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from audit.render.figures import shap as shapfig
from dashboards import _figures, _live, _state, _widgets

report = _state.require_report()
st.title("Explanations")
section = report.sections.get("explain")
saved = section.result if section is not None else None
if section is not None and saved is None:
    st.info(f"The audit's explain section was skipped: {section.skipped}.")
ctx = _state.live_context(report)


def _scores(method: str, i: int | None) -> str | None:
    """The saved report's faithfulness score of `method` on explained example `i`."""
    if saved is None or i is None or method not in saved.curves:
        return None
    c = saved.curves[method]
    return f"deletion AUC {c.deletion_auc[i]:.3f} (random {c.deletion_auc_random[i]:.3f})"


if not ctx.live and saved is None:
    st.stop()

st.subheader("One example")
if ctx.live:
    model, data = ctx.model, ctx.data
    key = _live.key_of(model, data)
    proba = _live.probabilities(model, data, key)
    only_saved = saved is not None and st.toggle("Only the examples the audit explained", value=False, key="exp_saved")
    row = _widgets.pick_example(model, data, proba, key="exp", restrict=saved.rows if only_saved else None)
    if row is None:
        st.stop()
    index = int(np.flatnonzero(saved.rows == row)[0]) if saved is not None and row in set(saved.rows.tolist()) else None
    methods = _live.local_methods(model, data)
    chosen = st.multiselect("Methods next to SHAP", methods, default=methods[:2] if data.kind == "image" else methods[:1],
                            key="exp_methods")
    with st.spinner("Explaining ..."):
        shap_result = _live.shap_example(model, data, key, row)
        attributions = {m: _live.attribution_example(model, data, key, row, m) for m in chosen}
    kind, image = data.kind, _live.split_of(data).X[row] if data.kind == "image" else None
    shap_index = 0
else:  # the saved explanations only
    labels = [f"test row {r}: true {saved.class_names[y]}, predicted {saved.class_names[p]}"
              + (" (misclassified)" if y != p else "") for r, y, p in zip(saved.rows, saved.labels, saved.predictions)]
    index = st.selectbox("Explained example", range(len(labels)), format_func=lambda i: labels[i], key="exp_saved_pick")
    row, kind = int(saved.rows[index]), saved.kind
    shap_result, shap_index = saved.shap, index
    attributions = {m: a for m, a in saved.attributions.items() if m != "shap"}
    first = next(iter(saved.attributions.values()), None)
    image = first.inputs[index] if kind == "image" and first is not None and first.inputs is not None else None

if kind == "tabular":
    c1, c2 = st.columns(2)
    with c1:
        if shap_result is not None:
            st.markdown("**SHAP waterfall**")
            st.pyplot(shapfig.waterfall(shap_result, shap_index))
            st.caption(f"f(x) = {float(shap_result.base_values[shap_index] + shap_result.values[shap_index].sum()):.4f}; "
                       + (_scores("shap", index) or "quality scores: explained examples of the saved report only"))
    with c2:
        for m, a in attributions.items():
            i = 0 if ctx.live else index
            st.markdown(f"**{m.replace('_', ' ')}**")
            st.pyplot(_figures.attribution_bars(a, i, title=m.replace("_", " ")))
            extra = []
            if "score" in a.extras:
                extra.append(f"local fit R^2 {float(a.extras['score'][i]):.3f}")
            if _scores(m, index):
                extra.append(_scores(m, index))
            if extra:
                st.caption("; ".join(extra))
else:
    maps = {}
    if ctx.live and shap_result is not None:
        maps["shap"] = shap_result.input_attributions()[0]
    elif not ctx.live and "shap" in saved.attributions:
        maps["shap"] = saved.attributions["shap"].values[index]
    for m, a in attributions.items():
        maps[m] = a.values[0 if ctx.live else index]
    if ctx.live:
        with st.spinner("Measuring faithfulness ..."):
            scores = _live.deletion_scores(model, data, key, row, tuple(maps))
    else:
        scores = {m: _scores(m, index) for m in maps if _scores(m, index)}
    if image is not None and maps:
        st.pyplot(_figures.saliency_overlays(image, maps, scores=scores))
        st.caption("Red pushes towards the explained class, blue away from it. Quality scores (deletion AUC: "
                   "lower is more faithful than a random order).")

if ctx.live and kind == "tabular":
    from dashboards.views import _what_would_change

    _what_would_change.show(model, data, row)

st.subheader("Global importance")
global_shap = saved.shap if saved is not None and saved.kind == "tabular" else None
if global_shap is None and ctx.live and ctx.data.kind == "tabular":
    if st.toggle("Compute SHAP on 200 test rows", value=False, key="exp_global"):
        with st.spinner("SHAP on 200 rows ..."):
            global_shap = _live.shap_global(ctx.model, ctx.data, _live.key_of(ctx.model, ctx.data))
if global_shap is not None:
    view = st.radio("View", ["bar", "beeswarm"], horizontal=True, key="exp_view")
    st.pyplot(shapfig.bar(global_shap) if view == "bar" else shapfig.beeswarm(global_shap))
if saved is not None and saved.permutation is not None:
    perm = saved.global_importance().get("permutation", {})
    st.markdown("**Permutation importance** (accuracy drop when a column is shuffled)")
    st.dataframe(pd.DataFrame({"feature": list(perm), "importance": list(perm.values())})
                 .sort_values("importance", ascending=False), hide_index=True, width="stretch")
if saved is not None:
    with st.expander("Explanation quality (saved report)"):
        _widgets.findings_list(saved.findings)

if saved is not None and saved.interactions is not None:
    from audit.render.figures import interactions as ifig

    inter = saved.interactions
    st.subheader("Feature interactions")
    st.caption(f"SHAP interaction values on {len(inter.values)} test rows: which features act together.")
    left, right = st.columns(2)
    left.pyplot(ifig.top_pairs(inter))
    right.pyplot(ifig.heatmap(inter))
    names = list(inter.feature_names)
    top = names.index(inter.top_pairs(1)[0][0]) if len(names) > 1 else 0
    feature = st.selectbox("Dependence plot of", names, index=top, key="exp_dependence")
    st.pyplot(ifig.dependence(inter, feature))
    st.caption(f"Coloured by {names[inter.partner(names.index(feature))]}, its strongest partner.")
if saved is not None and saved.surrogate is not None:
    sur = saved.surrogate
    st.subheader("Global surrogate rules")
    st.caption(f"A depth-{sur.provenance.settings.get('max_depth')} decision tree fit to the model's "
               f"predictions; it agrees with the model on {sur.fidelity:.1%} of held-out rows.")
    st.dataframe(pd.DataFrame({"rule": [r.text for r in sur.rules], "rows": [r.support for r in sur.rules],
                               "agreement": [r.confidence for r in sur.rules]})
                 .sort_values("rows", ascending=False), hide_index=True, width="stretch")
    if sur.groups:
        from audit.render.figures import surrogate as sfig

        st.pyplot(sfig.group_fidelity(sur))
