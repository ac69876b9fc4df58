"""Reliability curve and expected calibration error (Naeini et al. 2015; Guo et al. 2017).

Top-label calibration: each row's confidence is its largest class probability, and it is
correct when that class is the label. Rows fall in `n_bins` equal-width confidence bins;
ECE = sum_b (n_b / n) |accuracy_b - confidence_b|, MCE = max_b |accuracy_b - confidence_b|.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import numpy.typing as npt

from audit.results import Result


@dataclasses.dataclass(frozen=True, eq=False)
class Reliability(Result):
    """Per-bin counts, mean confidence and accuracy (NaN for empty bins) on [0, 1]."""

    edges: np.ndarray
    counts: npt.NDArray[np.int64]
    confidence: np.ndarray
    accuracy: np.ndarray
    ece: float
    mce: float


def reliability_sums(y_true, proba, *, n_bins: int = 10) -> np.ndarray:
    """(3, n_bins) per-bin row counts, confidence sums and correct counts: sums over rows, so a
    streamed audit adds them chunk by chunk."""
    y_true, proba = np.asarray(y_true), np.asarray(proba, np.float64)
    conf = proba.max(axis=1)
    correct = (proba.argmax(axis=1) == y_true).astype(np.float64)
    b = np.minimum((conf * n_bins).astype(np.int64), n_bins - 1)
    return np.stack([np.bincount(b, minlength=n_bins).astype(np.float64),
                     np.bincount(b, weights=conf, minlength=n_bins),
                     np.bincount(b, weights=correct, minlength=n_bins)])


def from_sums(sums: np.ndarray) -> Reliability:
    """The reliability curve, ECE and MCE from `reliability_sums` (added over any rows)."""
    n_bins = sums.shape[1]
    counts = np.rint(sums[0]).astype(np.int64)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_conf = sums[1] / counts
        acc = sums[2] / counts
    gap = np.abs(acc - mean_conf)
    filled = counts > 0
    return Reliability(edges=np.linspace(0.0, 1.0, n_bins + 1), counts=counts,
                       confidence=mean_conf, accuracy=acc,
                       ece=float((counts[filled] / counts.sum() * gap[filled]).sum()),
                       mce=float(gap[filled].max()))


def reliability(y_true, proba, *, n_bins: int = 10) -> Reliability:
    """Top-label reliability curve, ECE and MCE of class probabilities `proba` (n, K)."""
    return from_sums(reliability_sums(y_true, proba, n_bins=n_bins))
