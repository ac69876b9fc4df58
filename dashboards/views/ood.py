"""Does the model know what it does not know? AUROC per detector and shift, score distributions,
selective prediction per group, and live scores for a picked test row or an uploaded input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from audit import ood
from audit.errors import AuditInputError
from audit.render.figures import ood as ofig
from dashboards import _live, _state, _upload, _widgets


@st.cache_resource(show_spinner="Fitting the detectors on the training rows...", max_entries=2)
def _fitted_scorer(_model, _data, key, detectors, k, max_train, features, seed):
    """Detectors fitted once per (model, data, settings), as the audit fitted them."""
    return ood.scorer(_model, _data, detectors=detectors, k=k, max_train=max_train, features=features, seed=seed)

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
    settings = result.provenance.settings
    live = [d for d in ood.LIVE_DETECTORS if d in result.inlier_scores]
    chosen = settings.get("features")
    score = _fitted_scorer(model, data, _live.key_of(model, data), tuple(live), int(settings.get("k", 10)),
                           int(settings.get("max_train", 5000)), chosen if chosen in ("auto", "penultimate", "logits") else None,
                           result.provenance.seed or 0)
    source = st.radio("Input", ["a test row", "an upload"], horizontal=True, key="ood_source")
    x, label = None, ""
    if source == "a test row":
        proba = _live.probabilities(model, data, _live.key_of(model, data))  # cached: no pass per rerun
        row = _widgets.pick_example(model, data, proba, key="ood_pick")
        if row is not None:
            x, label = _live.split_of(data).X[row:row + 1], f"test row {row}"
    else:
        kinds = ["csv"] if data.kind == "tabular" else ["png", "jpg", "jpeg"]
        upload = st.file_uploader("A CSV with the raw columns (the first row is scored)" if data.kind == "tabular"
                                  else "An image (resized to the model's input)", type=kinds, key="ood_upload")
        invert = data.kind == "image" and st.checkbox("Dark strokes on a light background (invert)", key="ood_invert")
        if upload is not None:
            try:
                if data.kind == "tabular":
                    x, raw = _upload.table_inputs(upload.getvalue(), data.encoding, max_rows=1)
                    st.dataframe(raw, hide_index=True)
                else:
                    x = _upload.image_input(upload.getvalue(), model.input_shape, low=float(data.train.X.min()),
                                            high=float(data.train.X.max()), invert=invert)
                    st.image(np.clip((x[0] - x.min()) / max(float(x.max() - x.min()), 1e-9), 0, 1), width=112,
                             caption="as the model sees it")
                label = upload.name
            except AuditInputError as exc:
                st.error(str(exc))
    if x is not None:
        scores = score(x)
        predicted = model.class_names[int(model.predict(x)[0])]
        st.caption(f"{label}: predicted {predicted}. Each detector's score (higher = more unusual) and the share of "
                   f"the audited test inputs it exceeds; detectors fitted on the same training rows as the audit.")
        cols = st.columns(len(live))
        for col, name in zip(cols, live):
            value = float(scores[name][0])
            share = float(np.mean(result.inlier_scores[name] < value))
            col.metric(f"{name}", f"{value:.3g}", help="higher = more unusual")
            col.caption(f"more unusual than {share:.0%} of audited inputs" + (" ⚠" if share >= 0.99 else ""))

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
