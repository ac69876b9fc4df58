"""The class-imbalance audit of a file larger than memory, accumulated chunk by chunk.

The confusion matrix, the summed Brier loss and the calibration-bin sums are sums over rows: each
chunk adds its own, and `assemble` (the same code `evaluate` uses) turns the totals into the
report, so the counts-based numbers equal the in-memory ones. The rank-based parts (ROC-AUC,
PR-AUC, the binary operating points) need every score at once: they are measured on the stream's
seeded sample, and the report's provenance says so.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from audit.data._checks import check_predictions
from audit.data._stream import STREAM_SPLIT, unsupported
from audit.errors import AuditInputError
from audit.imbalance._calibration import reliability_sums
from audit.imbalance._evaluate import _check_settings, assemble, brier_sum, confusion_matrix
from audit.imbalance._report import ImbalanceReport
from audit.results import Provenance, timer

_NOT_STREAMED = ("split", "threshold_split")


class ImbalanceSink:
    """Adds one chunk's counts at a time (`update`), then builds the ImbalanceReport (`result`)."""

    def __init__(self, model, stream, *, seed: int = 0, n_bins: int = 10, fp_cost: float = 1.0,
                 fn_cost: float | None = None, min_recall: float = 0.5, max_recall_gap: float = 0.2,
                 max_ece: float = 0.1, max_points: int = 256, max_accuracy_gap: float = 0.05, **other: Any):
        unsupported(other, _NOT_STREAMED, "imbalance")
        if other.keys() - set(_NOT_STREAMED):
            raise AuditInputError(f"imbalance: unknown setting(s) {sorted(other.keys() - set(_NOT_STREAMED))}.")
        self.settings = {"n_bins": n_bins, "fp_cost": fp_cost, "fn_cost": fn_cost, "min_recall": min_recall,
                         "max_recall_gap": max_recall_gap, "max_ece": max_ece, "max_points": max_points,
                         "max_accuracy_gap": max_accuracy_gap}
        _check_settings(**self.settings)
        self.model, self.stream, self.seed = model, stream, seed
        K = model.n_classes
        self.confusion = np.zeros((K, K), np.int64)
        self.brier = 0.0
        self.rel = np.zeros((3, n_bins))
        self.seconds = 0.0

    def update(self, chunk, proba: np.ndarray) -> None:
        with timer() as t:
            K = self.model.n_classes
            y, pred, proba = check_predictions(chunk.y, proba.argmax(-1), proba, K,
                                               f"{self.stream.name} rows {chunk.start}..{chunk.start + len(chunk.y) - 1}")
            self.confusion += confusion_matrix(y, pred, K)
            self.brier += brier_sum(y, proba, K)
            self.rel += reliability_sums(y, proba, n_bins=self.settings["n_bins"])
        self.seconds += t[0]

    def result(self, sample_proba: np.ndarray) -> ImbalanceReport:
        """The report; `sample_proba` are the model's probabilities on the stream's sample rows."""
        with timer() as t:
            s = self.settings
            sample = self.stream.sample
            y_s, _, p_s = check_predictions(sample.y, sample_proba.argmax(-1), sample_proba,
                                            self.model.n_classes, f"{sample.name} (sample)")
            counts = self.confusion.sum(axis=1)
            fit = (y_s, p_s[:, 1], "sample") if self.model.n_classes == 2 else None
            parts = assemble(class_names=self.model.class_names, confusion=self.confusion,
                             brier_total=self.brier, rel_sums=self.rel, ranked=(y_s, p_s), fit=fit,
                             train_counts=counts, fp_cost=s["fp_cost"], fn_cost=s["fn_cost"],
                             max_points=s["max_points"], min_recall=s["min_recall"],
                             max_recall_gap=s["max_recall_gap"], max_ece=s["max_ece"],
                             max_accuracy_gap=s["max_accuracy_gap"])
        settings = {**s, "stream": {**self.stream.summary(),
                                    "counted_on": "every row (confusion, per-class and summary metrics, calibration)",
                                    "sampled": "ROC-AUC, PR-AUC and thresholds on the seeded sample rows"}}
        return ImbalanceReport(split=STREAM_SPLIT, **parts,
                               provenance=Provenance(method="imbalance.evaluate_stream", settings=settings,
                                                     seed=self.seed, seconds=self.seconds + t[0]))


def evaluate_stream(model, stream, *, seed: int = 0, **settings: Any) -> ImbalanceReport:
    """`imbalance.evaluate` over every row of a `TabularStream` (audit.data.open_stream), one chunk
    in memory at a time: class counts, per-class and summary metrics, confusion matrix and
    calibration from counts over all rows (equal to the in-memory numbers); ROC-AUC, PR-AUC and the
    binary operating points on the stream's seeded sample. "Training" counts are the file's own
    counts (the file is audited whole). Same settings as `evaluate` but the split ones."""
    sink = ImbalanceSink(model, stream, seed=seed, **settings)
    stream.score(model, [sink])
    return sink.result(stream.sample_proba(model))
