"""`ImbalanceReport`: class distribution, per-class metrics, thresholds and calibration."""

from __future__ import annotations

import dataclasses
from typing import Mapping

import numpy as np
import numpy.typing as npt

from audit.imbalance._calibration import Reliability
from audit.imbalance._threshold import ThresholdAnalysis
from audit.results import Finding, MetricSpec, Provenance, Result

PER_CLASS = ("precision", "recall", "f1", "support", "roc_auc", "pr_auc")
SUMMARY = ("accuracy", "majority_accuracy", "balanced_accuracy", "macro_f1", "weighted_f1", "mcc", "brier")


@dataclasses.dataclass(frozen=True, eq=False)
class ImbalanceReport(Result):
    """Does the model see the minority class? Everything measured on the `split` rows.

    `train_counts` / `counts`: class counts in the training and audited rows; `per_class[m][k]`
    for m in PER_CLASS; `summary[m]` for m in SUMMARY; `confusion[i, j]`: rows of true class i
    predicted j; `thresholds` only for binary models.
    """

    SCHEMA = "audit.imbalance/1"
    METRICS = (
        MetricSpec("accuracy", "higher", "Accuracy",
                   "Share of the audited rows classified correctly."),
        MetricSpec("majority_accuracy", "info", "Majority-class accuracy",
                   "Accuracy of always predicting the most frequent class of the audited rows (a baseline)."),
        MetricSpec("balanced_accuracy", "higher", "Balanced accuracy",
                   "Mean recall over classes on the audited rows."),
        MetricSpec("macro_f1", "higher", "Macro F1",
                   "Unweighted mean of the per-class F1 scores on the audited rows."),
        MetricSpec("weighted_f1", "higher", "Weighted F1",
                   "Mean of the per-class F1 scores weighted by class support."),
        MetricSpec("mcc", "higher", "Matthews correlation",
                   "Matthews correlation coefficient between labels and predictions (1 perfect, 0 chance)."),
        MetricSpec("brier", "lower", "Brier score",
                   "Mean squared error of the predicted probabilities."),
        MetricSpec("ece", "lower", "Expected calibration error",
                   "Mean gap between confidence and accuracy over confidence bins."),
        MetricSpec("mce", "lower", "Maximum calibration error",
                   "Largest gap between confidence and accuracy over confidence bins."),
        MetricSpec("imbalance_ratio", "info", "Imbalance ratio",
                   "Largest over smallest class count in the training rows."),
        MetricSpec("min_class_recall", "higher", "Worst class recall",
                   "Recall of the class the model finds least often, on the audited rows."),
        MetricSpec("minority_recall", "higher", "Minority class recall",
                   "Recall of the smallest class in training, on the audited rows."),
        MetricSpec("recall_gap", "lower", "Recall gap between classes",
                   "Best-served minus worst-served class recall on the audited rows."),
        MetricSpec("accuracy_gap", "lower", "What accuracy hides",
                   "Accuracy minus balanced accuracy: how much the large classes flatter accuracy."),
        MetricSpec("precision:<class>", "higher", "Precision of <class>",
                   "Share of predictions of <class> that are right, on the audited rows."),
        MetricSpec("recall:<class>", "higher", "Recall of <class>",
                   "Share of <class> rows the model finds, on the audited rows."),
        MetricSpec("f1:<class>", "higher", "F1 of <class>",
                   "Harmonic mean of precision and recall of <class>."),
        MetricSpec("support:<class>", "info", "Rows of <class>",
                   "Audited rows whose true class is <class>."),
        MetricSpec("roc_auc:<class>", "higher", "ROC-AUC of <class>",
                   "ROC-AUC of the score of <class>, one-vs-rest."),
        MetricSpec("pr_auc:<class>", "higher", "PR-AUC of <class>",
                   "Average precision of the score of <class>, one-vs-rest."),
        MetricSpec("threshold:<point>", "info", "Threshold <point>",
                   "The decision threshold of operating point <point> on P(positive class)."),
        MetricSpec("recall@<point>", "higher", "Recall at <point>",
                   "Recall of the positive class at operating point <point>."),
        MetricSpec("precision@<point>", "higher", "Precision at <point>",
                   "Precision of the positive class at operating point <point>."),
    )

    class_names: tuple[str, ...]
    split: str
    train_counts: npt.NDArray[np.int64]
    counts: npt.NDArray[np.int64]
    per_class: Mapping[str, np.ndarray]
    summary: Mapping[str, float]
    confusion: npt.NDArray[np.int64]
    reliability: Reliability
    thresholds: ThresholdAnalysis | None
    findings: tuple[Finding, ...]
    provenance: Provenance

    @property
    def imbalance_ratio(self) -> float:
        """Largest over smallest class count in the training rows (inf if a class is absent)."""
        c = self.train_counts.astype(np.float64)
        return float(c.max() / c.min()) if c.min() > 0 else float("inf")

    @property
    def minority_class(self) -> str:
        return self.class_names[int(np.argmin(self.train_counts))]

    def metrics(self) -> dict[str, float]:
        """"accuracy", "majority_accuracy", "balanced_accuracy", "macro_f1", "weighted_f1", "mcc",
        "brier", "ece", "mce", "imbalance_ratio", "min_class_recall", "minority_recall", "recall_gap"
        (best minus worst class recall), "accuracy_gap" (accuracy minus balanced accuracy),
        "<m>:<class>" for m in precision, recall, f1, support, roc_auc, pr_auc; for binary models
        "threshold:<point>", "recall@<point>", "precision@<point>" for the operating points.
        Undefined values (a class absent from the audited rows) are left out."""
        out = {k: float(v) for k, v in self.summary.items() if np.isfinite(v)}
        out["ece"] = self.reliability.ece
        out["mce"] = self.reliability.mce
        if np.isfinite(self.imbalance_ratio):
            out["imbalance_ratio"] = self.imbalance_ratio
        present = self.counts > 0
        out["min_class_recall"] = float(np.min(self.per_class["recall"][present]))
        if present.sum() >= 2:
            out["recall_gap"] = float(np.max(self.per_class["recall"][present]) - out["min_class_recall"])
        if "accuracy" in out and "balanced_accuracy" in out:
            out["accuracy_gap"] = out["accuracy"] - out["balanced_accuracy"]
        minority = int(np.argmin(self.train_counts))
        if present[minority]:
            out["minority_recall"] = float(self.per_class["recall"][minority])
        for m in PER_CLASS:
            for c, v in zip(self.class_names, self.per_class[m]):
                if np.isfinite(v):
                    out[f"{m}:{c}"] = float(v)
        if self.thresholds is not None:
            for p in self.thresholds.points:
                out[f"threshold:{p.name}"] = p.threshold
                out[f"recall@{p.name}"] = p.recall
                out[f"precision@{p.name}"] = p.precision
        return out
