"""Error analysis: the cohorts where the model errs more than on the rest, and a cohort builder that
recomputes the model's metrics on any rows picked by raw-column filters."""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from audit.render.figures import slices as sfig
from audit import slices as slices_api
from audit.slices import wilson_interval
from dashboards import _live, _state, _widgets

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
_widgets.findings_list(result.findings)

st.subheader("Cohorts")
table = pd.DataFrame({
    "cohort": [c.name for c in result.cohorts], "rows": [c.size for c in result.cohorts],
    "error": [c.error for c in result.cohorts], "interval low": [c.error_low for c in result.cohorts],
    "interval high": [c.error_high for c in result.cohorts], "rest's error": [c.rest_error for c in result.cohorts],
    "ratio": [c.error_ratio for c in result.cohorts], "corrected p": [c.p_adjusted for c in result.cohorts],
    "significant": [c.significant for c in result.cohorts]})
st.dataframe(table, hide_index=True, width="stretch", key="slices_table")
if result.cohorts:
    st.pyplot(sfig.cohort_chart(result))

st.subheader("Cohort builder")
ctx = _state.live_context(report)
if not ctx.live:  # live_context has said why
    st.stop()
model, data = ctx.model, ctx.data
rows = _live.split_of(data, result.split)
if rows.encoding is None or rows.raw is None:
    st.info("The cohort builder needs tabular data with raw columns.")
    st.stop()
proba = _live.probabilities(model, data, _live.key_of(model, data), result.split)
wrong = proba.argmax(1) != rows.y
names = list(rows.encoding.raw_names)
start = st.selectbox("Start from", ["the whole split"] + [c.name for c in result.cohorts], key="slices_start")
mask = np.ones(len(rows.y), bool)
if start != "the whole split":
    cohort = next(c for c in result.cohorts if c.name == start)
    mask = slices_api.cohort_rows(data, cohort.conditions, split=result.split,
                                  n_bins=int(result.provenance.settings.get("n_bins", 4)))
picked = st.multiselect("Narrow it with filters on raw columns", names, key="slices_columns")
for name in picked:
    j = names.index(name)
    column, values = rows.encoding.columns[j], rows.raw[:, j]
    if column.kind == "categorical":
        codes = np.clip(np.rint(values), 0, column.width - 1).astype(int)
        levels = st.multiselect(f"{name} is one of", list(column.categories), default=list(column.categories),
                                key=f"slices_levels:{name}")
        mask &= np.isin(np.asarray(column.categories, dtype=object)[codes], levels)
    else:
        lo, hi = float(np.nanmin(values)), float(np.nanmax(values))
        if lo == hi:
            continue
        low, high = st.slider(f"{name} between", lo, hi, (lo, hi), key=f"slices_range:{name}")
        mask &= (values >= low) & (values <= high)
n = int(mask.sum())
if n == 0:
    st.warning("No rows match these filters.")
    st.stop()
errors, rest_n = int(wrong[mask].sum()), int((~mask).sum())
low, high = wilson_interval(np.array([errors]), np.array([n]))
rest_error = float(wrong[~mask].mean()) if rest_n else float("nan")
pred = proba.argmax(1)
c = st.columns(4)
c[0].metric("Rows", f"{n}", help=f"of {len(mask)} in the {result.split} split")
c[1].metric("Accuracy", f"{1 - errors / n:.3f}")
c[2].metric("Error", f"{errors / n:.3f}", delta=None if not rest_n else f"{errors / n - rest_error:+.3f} vs rest",
            delta_color="inverse")
c[3].metric("Rest's error", "-" if not rest_n else f"{rest_error:.3f}")
st.caption(f"Error 95% Wilson interval {low[0]:.3f} to {high[0]:.3f}; recomputed with the model on the "
           f"cohort's rows.")
per_class = pd.DataFrame({
    "class": list(rows.class_names),
    "rows": [int((rows.y[mask] == k).sum()) for k in range(len(rows.class_names))],
    "recall": [float((pred[mask] == k)[rows.y[mask] == k].mean()) if (rows.y[mask] == k).any() else np.nan
               for k in range(len(rows.class_names))],
    "predicted share": [float((pred[mask] == k).mean()) for k in range(len(rows.class_names))]})
st.dataframe(per_class, hide_index=True, width="stretch", key="slices_cohort_classes")
