"""Imbalance: class distribution, per-class metrics, PR curve with a threshold slider,
confusion matrix and calibration."""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from audit.render.figures import imbalance as ifig
from dashboards import _charts, _live, _state, _widgets

report = _state.require_report()
st.title("Class balance, thresholds and calibration")
result = _widgets.section_result(report, "imbalance")
if result is None:
    st.stop()

s = result.summary
cols = st.columns(5)
cols[0].metric("Accuracy", f"{s['accuracy']:.3f}", help=f"majority class alone: {s.get('majority_accuracy', float('nan')):.3f}")
cols[1].metric("Balanced accuracy", f"{s['balanced_accuracy']:.3f}")
cols[2].metric("Macro F1", f"{s['macro_f1']:.3f}")
cols[3].metric("Imbalance ratio", f"{result.imbalance_ratio:.1f} : 1")
cols[4].metric("ECE", f"{result.reliability.ece:.3f}")

c1, c2 = st.columns(2)
with c1:
    _widgets.figure("imb_classes", lambda: ifig.class_distribution(result))
with c2:
    st.markdown("**Per-class metrics** (audited rows)")
    st.dataframe(pd.DataFrame({"class": result.class_names, **{m: np.asarray(v, np.float64)
                                                                for m, v in result.per_class.items()}}),
                 hide_index=True, width="stretch")
    _widgets.findings_list(result.findings)

ctx = _state.live_context(report)
th = result.thresholds
confusion = result.confusion
if th is not None:
    st.subheader("Decision threshold")
    points = {p.name: p.threshold for p in th.points}
    st.caption("Operating points the audit chose (on the " + th.chosen_on + " split): " +
               ", ".join(f"{k} {v:.2f}" for k, v in points.items()) + ".")
    threshold = st.slider(f"Decide {th.positive_class!r} when its probability is at least", 0.01, 0.99, 0.5, 0.01,
                          key="imb_threshold")
    if ctx.live:
        model, data = ctx.model, ctx.data
        at = _live.binary_at(model, data, _live.key_of(model, data), float(threshold))
        precision, recall, fpr, confusion = at["precision"], at["recall"], at["fpr"], at["confusion"]
        summary = {"balanced_accuracy": at["balanced_accuracy"]}
        source = "recomputed on the audited rows with the model"
    else:  # nearest point of the saved curves
        i = int(np.argmin(np.abs(th.pr_thresholds - threshold)))
        precision, recall = float(th.precision[i]), float(th.recall[i])
        fpr = float(th.fpr[int(np.argmin(np.abs(th.roc_thresholds - threshold)))])
        summary = None
        source = "nearest point of the saved curves (open the model for exact numbers)"
    m = st.columns(4)
    m[0].metric("Precision", f"{precision:.3f}")
    m[1].metric("Recall", f"{recall:.3f}")
    m[2].metric("False positive rate", f"{fpr:.3f}")
    if summary is not None:
        m[3].metric("Balanced accuracy", f"{summary['balanced_accuracy']:.3f}",
                    delta=f"{summary['balanced_accuracy'] - s['balanced_accuracy']:+.3f} vs argmax")
    st.caption(f"At threshold {threshold:.2f}: {source}.")
    st.altair_chart(_charts.pr_roc(th, float(threshold), precision, recall, fpr), width="stretch")
    with st.expander("The audit's PR and ROC curves with its operating points"):
        _widgets.figure("imb_pr_roc", lambda: ifig.pr_roc_curves(result))

c1, c2 = st.columns(2)
with c1:
    normalize = st.toggle("Row-normalised", value=True, key="imb_normalize")
    st.altair_chart(_charts.confusion(np.asarray(confusion), result.class_names, normalize=normalize),
                    width="stretch")
with c2:
    _widgets.figure("imb_reliability", lambda: ifig.reliability_diagram(result))

mitigation = report.sections.get("imbalance_mitigation")
if mitigation is not None and mitigation.result is not None:
    st.subheader("Mitigations (retrained)")
    _widgets.figure("imb_mitigation", lambda: ifig.mitigation_bars(mitigation.result))
