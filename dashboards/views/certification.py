"""Certified robustness: what attacks found (upper bounds) next to what IBP and randomized
smoothing prove (lower bounds), the per-eps table as the report has it, certified accuracy at any
eps from the saved smoothing radii, and certified accuracy per sensitive group."""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from dashboards import _charts, _derived, _state, _widgets

CERTIFIED = ("ibp", "smoothing")

report = _state.require_report()
st.title("Certified robustness")
result = _widgets.section_result(report, "certify")
if result is None:
    st.stop()

st.markdown(f"{result.n} test examples, norm **{result.norm}**; certificates: **{', '.join(result.methods)}**; "
            f"attacks: {', '.join(result.attacks) or 'none'}. Certified accuracy is a lower bound on robust "
            "accuracy, every attack's an upper bound: certified must stay at or below empirical.")
_widgets.findings_list(_widgets.section_findings(report, "certify"))

table = pd.DataFrame(result.table())
long = table.melt(id_vars="eps", var_name="column", value_name="accuracy")
long["bound"] = np.where(long["column"].isin(CERTIFIED), "certified (lower bound)", "empirical (upper bound)")
long = long[long["column"] != "clean"]
st.altair_chart(_charts.lines(long, x="eps", y="accuracy", color="column", dash="bound",
                              x_title=f"eps ({result.norm})", y_title="accuracy",
                              y_domain=(max(0.0, float(np.floor(long["accuracy"].min() * 10) / 10) - 0.1), 1.0),
                              title="Robust accuracy under attack vs certified accuracy"), width="stretch")
st.markdown("**The report's table**, one row per eps")
st.dataframe(table, hide_index=True, width="stretch", key="cert_table")

if "smoothing" in result.methods and result.smoothing_radius.size:
    st.subheader("Randomized smoothing at any eps")
    top = float(max(result.eps.max(), 1e-6))
    eps = st.slider(f"eps ({result.norm})", 0.0, 2.0 * top, float(result.eps[-1]), top / 100, key="cert_eps")
    acc = float(_derived.smoothing_certified(result, eps)[0])
    c1, c2 = st.columns(2)
    c1.metric(f"Smoothing certified accuracy at eps {eps:.4g}", f"{acc:.3f}")
    c2.metric("L2 radius this eps needs", f"{eps * result.radius_scale:.4g}",
              help=f"eps x {result.radius_scale:.4g} (sqrt of the number of inputs) for linf" if result.norm == "linf"
              else None)
    grid = np.linspace(0.0, 2.0 * top, 81)
    curve = pd.DataFrame({"eps": grid, "certified accuracy": _derived.smoothing_certified(result, grid),
                          "curve": "smoothing (certified)"})
    st.altair_chart(_charts.lines(curve, x="eps", y="certified accuracy", color="curve",
                                  x_title=f"eps ({result.norm})", title=f"Smoothed classifier, sigma "
                                  f"{result.smoothing['sigma']:g}"), width="stretch")
    st.caption(f"From the saved per-example radii (sigma {result.smoothing['sigma']:g}, {result.smoothing['n']} "
               f"noise draws, failure probability {result.smoothing['alpha']:g}); abstentions and wrong "
               "predictions are never certified.")

st.subheader("Certified accuracy per group")
ctx = _state.live_context(report)
if ctx.live and ctx.data.sensitive and any(m in result.methods for m in CERTIFIED):
    data = ctx.data
    c1, c2 = st.columns(2)
    attribute = c1.selectbox("Sensitive attribute", sorted(data.sensitive), key="cert_attr")
    grid = [float(e) for e in result.eps]
    at = c2.select_slider("eps (the audit's grid)", options=grid, value=grid[min(1, len(grid) - 1)],
                          key="cert_grid_eps")
    rows = _derived.certified_by_group(result, data, attribute, grid.index(at))
    if rows is None:
        st.info("The data re-created from the config do not give the certified rows' labels, so per-group "
                "numbers are off.")
    else:
        frame = pd.DataFrame(rows)
        judged = frame[~frame["too small to judge"]]
        if len(judged):
            st.altair_chart(_charts.bars(judged, category="group", value="certified accuracy", color="method",
                                         low="low", high="high", value_title=f"certified accuracy at eps {at:g}",
                                         title=f"Certified accuracy by {attribute} (95% Wilson intervals)"),
                            width="stretch")
        st.dataframe(frame, hide_index=True, width="stretch", key="cert_groups")
        if frame["too small to judge"].any():
            st.caption(f"Groups under {_derived.MIN_GROUP_SIZE} certified rows are too small to judge: no value "
                       "is shown for them.")
elif ctx.live:
    st.caption("The data have no sensitive attributes, or no certificate ran.")
