"""Per-group sufficient statistics, the group metrics computed from them, and a stratified bootstrap.

Every group metric here is a ratio of per-group sums of per-row statistics (counts of positives,
predicted positives, true positives, calibration-bin sums). A bootstrap replicate only changes
how often each row is counted, so all replicates come from one matrix product
`counts (B, n_g) @ stats (n_g, S)` per group: no Python loop over rows or replicates.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import beta, rankdata

# columns of the per-row statistics matrix
ONE, POS, SEL, TP, FP, CORRECT = range(6)
N_FIXED = 6

GROUP_METRICS = ("size", "base_rate", "selection_rate", "accuracy", "tpr", "fpr", "fnr",
                 "precision", "roc_auc", "calibration_error")


def row_stats(y_pos: np.ndarray, pred_pos: np.ndarray, correct: np.ndarray, score: np.ndarray,
              *, n_bins: int) -> np.ndarray:
    """(n, 6 + 3 * n_bins) float64: 1, y, yhat, y*yhat, (1-y)*yhat, correct, then per
    calibration bin (equal width on [0, 1]): in-bin, in-bin * score, in-bin * y."""
    y = y_pos.astype(np.float64)
    s = pred_pos.astype(np.float64)
    b = np.minimum((score * n_bins).astype(np.int64), n_bins - 1)
    onehot = np.zeros((len(y), n_bins))
    onehot[np.arange(len(y)), b] = 1.0
    return np.concatenate([np.stack([np.ones_like(y), y, s, y * s, (1 - y) * s,
                                     correct.astype(np.float64)], axis=1),
                           onehot, onehot * score[:, None], onehot * y[:, None]], axis=1)


def group_sums(stats: np.ndarray, codes: np.ndarray, n_groups: int) -> np.ndarray:
    """(n_groups, S) sums of the statistics per group."""
    out = np.empty((n_groups, stats.shape[1]))
    for j in range(stats.shape[1]):  # one bincount per statistic: in row order, like np.add.at, and far faster
        out[:, j] = np.bincount(codes, weights=stats[:, j], minlength=n_groups)
    return out


def weighted_group_sums(stats: np.ndarray, codes: np.ndarray, n_groups: int, weights: np.ndarray) -> np.ndarray:
    """(B, n_groups, S) group sums of the statistics with row weights `weights` (n, B), one replicate
    per column: the Poisson bootstrap's replicate sums. The statistics are sparse (six counts and
    three calibration-bin entries per row), so one sparse product does every group and replicate."""
    from scipy import sparse

    n, S = stats.shape
    rows, cols = np.nonzero(stats)
    placed = sparse.csr_matrix((stats[rows, cols], (rows, codes[rows] * S + cols)), shape=(n, n_groups * S))
    return np.ascontiguousarray((placed.T @ weights).reshape(n_groups, S, -1).transpose(2, 0, 1))


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)


def rates(sums: np.ndarray, n_bins: int) -> dict[str, np.ndarray]:
    """Group metrics from sums of shape (..., S); undefined ones (0 denominators) are NaN."""
    n, pos, sel, tp, fp = (sums[..., k] for k in (ONE, POS, SEL, TP, FP))
    neg = n - pos
    tpr = _ratio(tp, pos)
    binned = sums[..., N_FIXED:]
    in_bin, score_sum, y_sum = (binned[..., k * n_bins:(k + 1) * n_bins] for k in range(3))
    return {
        "size": n,
        "base_rate": _ratio(pos, n),
        "selection_rate": _ratio(sel, n),
        "accuracy": _ratio(sums[..., CORRECT], n),
        "tpr": tpr,
        "fpr": _ratio(fp, neg),
        "fnr": _ratio(pos - tp, pos),
        "precision": _ratio(tp, sel),
        "calibration_error": _ratio(np.abs(score_sum - y_sum).sum(-1), n),
    }


# rate metrics: name -> (numerator, denominator) as functions of the group sums
def fractions(sums: np.ndarray) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """(successes, trials) per group for every group metric that is a binomial proportion."""
    n, pos, sel, tp, fp = (sums[..., k] for k in (ONE, POS, SEL, TP, FP))
    return {"base_rate": (pos, n), "selection_rate": (sel, n), "accuracy": (sums[..., CORRECT], n),
            "tpr": (tp, pos), "fpr": (fp, n - pos), "fnr": (pos - tp, pos), "precision": (tp, sel)}


def exact_interval(k: np.ndarray, n: np.ndarray, *, confidence: float) -> tuple[np.ndarray, np.ndarray]:
    """Clopper-Pearson ("exact") interval for a proportion k/n, vectorised; NaN where n == 0.

    Unlike a bootstrap, it is as wide as a small group really is: one row gives about [0.025, 1]
    at 95%, not the zero-width interval that resampling a single row yields (Clopper & Pearson 1934).
    """
    k, n = np.asarray(k, np.float64), np.asarray(n, np.float64)
    alpha = (1.0 - confidence) / 2
    ok = n > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        low = np.where(k > 0, beta.ppf(alpha, k, n - k + 1), 0.0)
        high = np.where(k < n, beta.ppf(1 - alpha, k + 1, n - k), 1.0)
    return np.where(ok, low, np.nan), np.where(ok, high, np.nan)


def roc_auc(y_pos: np.ndarray, score: np.ndarray) -> float:
    """ROC-AUC by the rank (Mann-Whitney) formula, ties counted half; NaN for a single class."""
    pos = y_pos.astype(bool)
    n_pos, n_neg = int(pos.sum()), int((~pos).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = rankdata(score)
    return float((ranks[pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def bootstrap_sums(stats: np.ndarray, codes: np.ndarray, n_groups: int, *, n_bootstrap: int,
                   rng: np.random.Generator, max_cells: int = 4_000_000) -> np.ndarray:
    """(n_bootstrap, n_groups, S) group sums over replicates resampled within each group
    (group sizes fixed: a stratified bootstrap), in chunks of at most `max_cells` draws."""
    out = np.zeros((n_bootstrap, n_groups, stats.shape[1]))
    for g in range(n_groups):
        rows = np.flatnonzero(codes == g)
        m = len(rows)
        if m == 0:
            continue
        chunk = max(1, max_cells // m)
        for start in range(0, n_bootstrap, chunk):
            b = min(chunk, n_bootstrap - start)
            draws = rng.integers(0, m, size=(b, m))
            flat = (draws + m * np.arange(b)[:, None]).ravel()
            counts = np.bincount(flat, minlength=b * m).reshape(b, m).astype(np.float64)
            out[start:start + b, g] = counts @ stats[rows]
    return out
