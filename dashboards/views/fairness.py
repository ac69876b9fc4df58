"""Fairness: pick the sensitive attribute (and an intersection); group metrics, disparities
with intervals, proxies; a threshold slider showing how the gaps and accuracy move."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import streamlit as st

from audit.render.figures import fairness as ffig
from dashboards import _charts, _cohort, _live, _state, _widgets

GAPS = ("demographic_parity_difference", "equal_opportunity_difference", "equalized_odds_difference")

report = _state.require_report()
st.title("Fairness")
result = _widgets.section_result(report, "fairness")
if result is None:
    st.stop()

names = [a.name for a in result.attributes]
single = [n for n in names if "&" not in n]
opening = _widgets.failing_attribute(report, names)  # open on what failed the policy
first, *rest = opening.split("&") if single else [opening]
c1, c2 = st.columns(2)
options = single or names
attribute = c1.selectbox("Sensitive attribute", options, index=options.index(first) if first in options else 0,
                         key="fair_attr")
partners = [n for n in single if n != attribute and (f"{attribute}&{n}" in names or f"{n}&{attribute}" in names)]
cross_options = ["(none)"] + partners
cross = c2.selectbox("Intersect with", cross_options,
                     index=cross_options.index(rest[0]) if rest and rest[0] in cross_options else 0, key="fair_cross")
if opening != names[0] and "fair_attr_told" not in st.session_state:
    st.session_state["fair_attr_told"] = True
    st.caption(f"Opened on {opening!r}: a finding about it failed or warned.")
if cross != "(none)":
    attribute = f"{attribute}&{cross}" if f"{attribute}&{cross}" in names else f"{cross}&{attribute}"
chosen = result.attribute(attribute)
classes = [t.class_name for t in chosen.tables]
class_name = st.selectbox("Class (one-vs-rest)", classes, key="fair_class") if len(classes) > 1 else classes[0]

st.subheader(f"Groups of {attribute}")
st.caption(f"Grouping: {chosen.rule}." + (f" Empty cells: {', '.join(chosen.empty_groups)}." if chosen.empty_groups else ""))
table = chosen.table(class_name)
small = {g for m in table.too_small for g in table.small_groups(m)}
frame = pd.DataFrame({"group": table.groups, "rows": np.asarray(chosen.sizes, int),
                      "too small to judge": [g in small for g in table.groups],
                      **{m: np.asarray(v, np.float64) for m, v in table.values.items()}})
st.dataframe(frame, hide_index=True, width="stretch")

c1, c2 = st.columns(2)
with c1:
    _widgets.figure("fair_disparity", lambda: ffig.disparity_chart(result, attribute=attribute, class_name=class_name), attribute, class_name)
with c2:
    _widgets.figure("fair_heatmap", lambda: ffig.group_heatmap(result, attribute=attribute, class_name=class_name), attribute, class_name)
rows = [{"disparity": d.name, "value": d.value, "interval": f"[{d.ci_low:.3f}, {d.ci_high:.3f}]",
         "between": f"{d.high_group} vs {d.low_group}", "significant": d.significant,
         "all groups": d.all_groups_value, "too small to judge": ", ".join(d.small_groups)}
        for d in chosen.disparities if d.class_name == class_name]
st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")
own = [f for f in _widgets.section_findings(report, "fairness") if _widgets.finding_attribute(f) == attribute]
_widgets.findings_list(own, empty=f"No findings about {attribute}.")

st.subheader("Move the decision threshold")
ctx = _state.live_context(report)
if ctx.live and ctx.model.n_classes == 2:
    model, data = ctx.model, ctx.data
    key = _live.key_of(model, data)
    settings = {k: v for k, v in result.provenance.settings.items() if k in ("bins", "n_bins", "min_group_size", "min_count")}
    settings_json = json.dumps(settings, sort_keys=True)
    threshold = st.slider(f"Decide {model.class_names[1]!r} when its probability is at least", 0.05, 0.95, 0.5, 0.01,
                          key="fair_threshold")
    with st.spinner("Recomputing group metrics ..."):
        live, accuracy = _live.fairness_at(model, data, key, attribute, float(threshold), settings_json, n_bootstrap=0)
        base, base_accuracy = _live.fairness_at(model, data, key, attribute, 0.5, settings_json, n_bootstrap=0)
        sweep = _live.fairness_sweep(model, data, key, attribute, settings_json,
                                     tuple(np.round(np.linspace(0.05, 0.95, 19), 2)))
    cols = st.columns(1 + len(GAPS))
    cols[0].metric("Accuracy", f"{accuracy:.3f}", delta=f"{accuracy - base_accuracy:+.3f} vs 0.5")
    for col, gap in zip(cols[1:], GAPS):
        now, then = live.disparity(gap).value, base.disparity(gap).value
        col.metric(gap.replace("_", " "), f"{now:.3f}", delta=f"{now - then:+.3f} vs 0.5", delta_color="inverse")
    c1, c2 = st.columns(2)
    with c1:
        st.altair_chart(_charts.threshold_tradeoff(sweep, float(threshold), attribute=attribute), width="stretch")
    with c2:
        st.altair_chart(_charts.disparities(_cohort.gap_rows(live), attribute=attribute, threshold=float(threshold)),
                        width="stretch")
    st.caption("Intervals: Newcombe's square-and-add from the two groups' exact intervals (no bootstrap, so the "
               "slider answers at once). The audit itself used the model's argmax decisions (0.5 for two classes).")
elif ctx.live:
    st.caption("The threshold slider applies to two-class models; this model has "
               f"{ctx.model.n_classes} classes.")

if result.proxies:
    st.subheader("Proxies")
    proxy_names = [p.attribute for p in result.proxies]
    pick = st.selectbox("Proxies for", proxy_names,
                        index=proxy_names.index(attribute) if attribute in proxy_names else 0, key="fair_proxy")
    _widgets.figure("fair_proxy", lambda: ffig.proxy_chart(result, attribute=pick), pick)

mitigation = report.sections.get("fairness_mitigation")
if mitigation is not None and mitigation.result is not None:
    st.subheader("Mitigations (retrained)")
    _widgets.figure("fair_mitigation", lambda: ffig.mitigation_bars(mitigation.result))
