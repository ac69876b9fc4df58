"""Separation statistics for OOD scores: AUROC and FPR at 95% TPR, with bootstrap intervals;
risk-coverage curves for selective prediction. Outliers are the positive class (pytorch-ood's
convention): AUROC is the probability that an outlier scores above an inlier."""

from __future__ import annotations

import numpy as np
from scipy.stats import rankdata


def auroc(inlier: np.ndarray, outlier: np.ndarray) -> float:
    """Mann-Whitney AUROC with ties counted half (equals sklearn's roc_auc_score)."""
    ranks = rankdata(np.concatenate([inlier, outlier]))
    n0, n1 = len(inlier), len(outlier)
    return float((ranks[n0:].sum() - n1 * (n1 + 1) / 2) / (n0 * n1))


def fpr_at_tpr(inlier: np.ndarray, outlier: np.ndarray, tpr: float = 0.95) -> float:
    """Share of inliers flagged at the highest threshold that flags `tpr` of the outliers."""
    threshold = np.sort(outlier)[::-1][int(np.ceil(tpr * len(outlier))) - 1]
    return float(np.mean(inlier >= threshold))


def weighted_auroc(inlier: np.ndarray, outlier: np.ndarray, w: np.ndarray, v: np.ndarray) -> np.ndarray:
    """AUROC of each row of resampling counts (w: (B, n0) for inliers, v: (B, n1) for outliers),
    from one sort of the inliers: sum_j v_j (W(< s_j) + W(= s_j) / 2) / (sum w * sum v)."""
    order = np.argsort(inlier, kind="stable")
    sorted_in = inlier[order]
    w = np.asarray(w, np.float64)[:, order]
    cum = np.concatenate([np.zeros((len(w), 1)), np.cumsum(w, axis=1)], axis=1)
    left = np.searchsorted(sorted_in, outlier, side="left")
    right = np.searchsorted(sorted_in, outlier, side="right")
    below, equal = cum[:, left], cum[:, right] - cum[:, left]
    return np.sum(v * (below + 0.5 * equal), axis=1) / (w.sum(axis=1) * np.sum(v, axis=1))


def bootstrap_auroc(inlier: np.ndarray, outlier: np.ndarray, *, n_bootstrap: int, confidence: float,
                    rng: np.random.Generator) -> tuple[float, float]:
    """Percentile interval of AUROC, inliers and outliers resampled separately (all replicates at once)."""
    n0, n1 = len(inlier), len(outlier)
    w = rng.multinomial(n0, np.full(n0, 1.0 / n0), size=n_bootstrap)
    v = rng.multinomial(n1, np.full(n1, 1.0 / n1), size=n_bootstrap)
    values = weighted_auroc(inlier, outlier, w, v)
    alpha = (1 - confidence) / 2
    return float(np.quantile(values, alpha)), float(np.quantile(values, 1 - alpha))


def risk_coverage(score: np.ndarray, error: np.ndarray, *, points: int = 21) -> tuple[np.ndarray, np.ndarray, float]:
    """(coverage grid, risk at each coverage, AURC): keep the least unusual rows first; risk is the
    error rate among kept rows; AURC is the mean risk over all coverages (lower is better)."""
    order = np.argsort(score, kind="stable")
    cum_err = np.cumsum(error[order]) / np.arange(1, len(score) + 1)
    coverage = np.linspace(1 / len(score), 1.0, points)
    idx = np.clip(np.ceil(coverage * len(score)).astype(int) - 1, 0, len(score) - 1)
    return coverage, cum_err[idx], float(cum_err.mean())
