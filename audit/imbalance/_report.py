"""`ImbalanceReport`: class distribution, per-class metrics, thresholds and calibration."""

from __future__ import annotations

import dataclasses
from typing import Mapping

import numpy as np
import numpy.typing as npt

from audit.imbalance._calibration import Reliability
from audit.imbalance._threshold import ThresholdAnalysis
from audit.results import Finding, Provenance, Result

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
        "brier", "ece", "mce", "imbalance_ratio", "min_class_recall", "minority_recall",
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
