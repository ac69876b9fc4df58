"""Error analysis: the cohorts where the model errs more than on the rest, and a cohort builder that
recomputes the model's metrics on any rows picked by raw-column filters."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import streamlit as st

from dashboards import _charts, _live, _state, _widgets

report = _state.require_report()
st.title("Error analysis: cohorts worse than the rest")
result = _widgets.section_result(report, "slices")
if result is None:
    st.stop()

m = result.metrics()
cols = st.columns(4)
cols[0].metric("Error on the split", f"{result.error:.3f}", help=f"{result.n_rows} rows of the {result.split} split")
cols[1].metric("Cohorts tried", f"{result.n_tried}")
cols[2].metric("Significantly worse", f"{len(result.significant)}",
               help=f"{result.correction} correction at alpha {result.alpha:g}")
cols[3].metric("Worst error ratio", f"{m['worst_error_ratio']:.2f}",
               help="error of the most surely worse cohort over the rest's (1: none significant)")
_widgets.findings_list(_widgets.section_findings(report, "slices"))

st.subheader("Cohorts")
table = pd.DataFrame({
    "cohort": [c.name for c in result.cohorts], "rows": [c.size for c in result.cohorts],
    "error": [c.error for c in result.cohorts], "interval low": [c.error_low for c in result.cohorts],
    "interval high": [c.error_high for c in result.cohorts], "rest's error": [c.rest_error for c in result.cohorts],
    "ratio": [c.error_ratio for c in result.cohorts], "corrected p": [c.p_adjusted for c in result.cohorts],
    "significant": [c.significant for c in result.cohorts]})
st.dataframe(table, hide_index=True, width="stretch", key="slices_table")
if result.cohorts:
    top = table.head(10).assign(worse=lambda t: np.where(t["significant"], "significantly worse", "not significant"))
    st.altair_chart(_charts.bars(top, category="cohort", value="error", color="worse", low="interval low",
                                 high="interval high", value_title="error (95% Wilson interval)",
                                 domain=(0.0, float(min(1.0, top["interval high"].max() * 1.1 + 0.01))),
                                 title=f"Top cohorts; the whole split errs {result.error:.3f}"), width="stretch")

st.subheader("Cohort builder")
ctx = _state.live_context(report)
if not ctx.live:  # live_context has said why
    st.stop()
model, data = ctx.model, ctx.data
rows = _live.split_of(data, result.split)
if rows.encoding is None or rows.raw is None:
    st.info("The cohort builder needs tabular data with raw columns.")
    st.stop()
key = _live.key_of(model, data)
names = list(rows.encoding.raw_names)
start = st.selectbox("Start from", ["the whole split"] + [c.name for c in result.cohorts], key="slices_start")
conditions = () if start == "the whole split" else next(c for c in result.cohorts if c.name == start).conditions
picked = st.multiselect("Narrow it with filters on raw columns", names, key="slices_columns")
filters = []
for name in picked:
    j = names.index(name)
    column, values = rows.encoding.columns[j], rows.raw[:, j]
    if column.kind == "categorical":
        levels = st.multiselect(f"{name} is one of", list(column.categories), default=list(column.categories),
                                key=f"slices_levels:{name}")
        filters.append((name, tuple(levels), None, None))
    else:
        lo, hi = float(np.nanmin(values)), float(np.nanmax(values))
        if lo == hi:
            continue
        whole = bool(np.all(np.isnan(values) | (values == np.round(values))))
        step = float(max(1, round((hi - lo) / 200))) if whole else (hi - lo) / 200  # about 200 steps
        low, high = st.slider(f"{name} between", lo, hi, (lo, hi), step=step, key=f"slices_range:{name}")
        filters.append((name, None, float(low), float(high)))
fair = report.sections.get("fairness")
settings = {k: v for k, v in (fair.result.provenance.settings if fair is not None and fair.result is not None
                              else {}).items() if k in ("bins", "n_bins", "min_group_size", "min_count")}
out = _live.cohort(model, data, key, result.split, tuple(conditions),
                   int(result.provenance.settings.get("n_bins", 4)), tuple(filters),
                   json.dumps(settings, sort_keys=True))
n = out["rows"]
if n == 0:
    st.warning("No rows match these filters.")
    st.stop()
fmt = lambda v: "-" if v is None else f"{v:.3f}"
c = st.columns(5)
c[0].metric("Rows", f"{n}", help=f"of {n + out['rest_rows']} in the {result.split} split")
c[1].metric("Accuracy", fmt(out["accuracy"]), help=f"95% Wilson interval {out['accuracy_low']:.3f} to "
            f"{out['accuracy_high']:.3f}")
c[2].metric("Error", fmt(out["error"]), delta=None if out["rest_error"] is None else
            f"{out['error'] - out['rest_error']:+.3f} vs rest", delta_color="inverse")
c[3].metric("Rest's error", fmt(out["rest_error"]))
c[4].metric("ECE", fmt(out["ece"]), help="expected calibration error of the top-label confidence on the cohort "
            "(10 bins), as the imbalance section computes it")
st.caption(f"Accuracy 95% Wilson interval {out['accuracy_low']:.3f} to {out['accuracy_high']:.3f}; every number "
           "recomputed with the model on the cohort's rows." +
           (f" The cohort has under {settings.get('min_group_size', 30)} rows: too small to judge calibration "
            "or fairness." if out["too_small"] else ""))
left, right = st.columns(2)
with left:
    st.markdown("**Per class**")
    st.dataframe(pd.DataFrame(out["per_class"]), hide_index=True, width="stretch", key="slices_cohort_classes")
with right:
    if out["gaps"]:
        st.markdown("**Fairness gaps within the cohort**")
        st.dataframe(pd.DataFrame(out["gaps"]), hide_index=True, width="stretch", key="slices_cohort_gaps")
        st.caption("Between groups large enough to judge (fairness's min_group_size and min_count); interval: "
                   "Newcombe's square-and-add from the two groups' exact intervals.")
