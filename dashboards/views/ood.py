"""Does the model know what it does not know? AUROC per detector and shift, score distributions,
selective prediction per group, and a live score for a picked test input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from audit.ood import energy_score, msp_score
from audit.render.figures import ood as ofig
from dashboards import _live, _state, _widgets

report = _state.require_report()
st.title("Does it know what it does not know?")
result = _widgets.section_result(report, "ood")
if result is None:
    st.stop()

st.caption(f"Detectors fitted on training rows; {result.n_inliers} test rows are the inliers; each shift is "
           f"made from the same rows. Mahalanobis and kNN read the model's {result.features} features.")
_widgets.findings_list(result.findings)

if result.shifts:
    st.pyplot(ofig.auroc_heatmap(result))
    table = pd.DataFrame([{"detector": s.detector, "shift": s.shift, "AUROC": s.auroc,
                           "interval": f"[{s.low:.3f}, {s.high:.3f}]", "FPR at 95% TPR": s.fpr95}
                          for s in result.separations])
    st.dataframe(table, hide_index=True, width="stretch")
    hardest = min(result.shifts, key=lambda s: result.best(s).auroc)
    shift = st.selectbox("Score distributions on the shift", result.shifts, index=result.shifts.index(hardest),
                         key="ood_shift")
    st.pyplot(ofig.score_histograms(result, shift=shift))

st.subheader("Selective prediction")
st.pyplot(ofig.risk_coverage_curves(result))
msp = next((a for a in result.abstention if a.detector == "msp"), None)
if msp is not None and msp.attribute_rejection:
    rows = [{"attribute": attr, "group": g, "rows": msp.attribute_sizes[attr][g], "rejected": rate,
             "judged": msp.attribute_sizes[attr][g] >= result.min_group_size}
            for attr, rates in msp.attribute_rejection.items() for g, rate in rates.items()]
    st.markdown(f"**Rejected per group** when abstaining on the least confident {1 - result.coverage:.0%} (MSP); "
                f"groups under {result.min_group_size} rows are too small to judge.")
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")

st.subheader("Score one input")
ctx = _state.live_context(report)
if ctx.live:
    model, data = ctx.model, ctx.data
    proba = _live.probabilities(model, data, _live.key_of(model, data))
    row = _widgets.pick_example(model, data, proba, key="ood_pick")
    if row is not None:
        logits = model.logits(_live.split_of(data).X[row:row + 1])
        cols = st.columns(2)
        for col, (name, score) in zip(cols, (("msp", msp_score(logits)[0]), ("energy", energy_score(logits)[0]))):
            if name in result.inlier_scores:
                share = float(np.mean(result.inlier_scores[name] < score))
                col.metric(f"{name} score", f"{score:.3f}", help="higher = more unusual")
                col.caption(f"more unusual than {share:.0%} of the audited test inputs")

drift = report.sections.get("drift")
if drift is not None and drift.result is not None:
    d = drift.result
    st.subheader(f"Drift: training rows vs {d.current}")
    _widgets.findings_list(d.findings)
    if d.columns:
        st.pyplot(ofig.drift_psi(d))
        st.dataframe(pd.DataFrame([{"column": c.column, "test": c.test, "statistic": c.statistic,
                                    "p (Holm)": c.p_adjusted, "PSI": c.psi, "drifted": c.p_adjusted < d.alpha}
                                   for c in d.columns]), hide_index=True, width="stretch")

detection = report.sections.get("adversarial_detection")
if detection is not None and detection.result is not None:
    r = detection.result
    st.subheader("Adversarial-input detection")
    st.caption("A detector's rate on plain PGD examples means little without its rate against an attack that "
               "also lowers the detector's score; both are shown.")
    _widgets.findings_list(r.findings)
    st.pyplot(ofig.detection_bars(r))
