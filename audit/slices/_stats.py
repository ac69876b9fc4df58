"""Statistics for cohort search: one-sided Fisher exact test, Wilson intervals, multiple-test corrections."""

from __future__ import annotations

import numpy as np
from scipy import stats


def fisher_greater(errors: np.ndarray, size: np.ndarray, *, total_errors: int, total: int) -> np.ndarray:
    """One-sided Fisher exact p-value that a cohort of `size` rows holding `errors` of the split's
    `total_errors` errors (out of `total` rows) has a higher error rate than the rest (vectorised:
    the hypergeometric upper tail, which is what `scipy.stats.fisher_exact(alternative="greater")` computes)."""
    return stats.hypergeom.sf(np.asarray(errors) - 1, total, total_errors, np.asarray(size))


def wilson_interval(k: np.ndarray, n: np.ndarray, *, confidence: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval for k successes in n trials (vectorised; Wilson 1927)."""
    k, n = np.asarray(k, np.float64), np.asarray(n, np.float64)
    z = stats.norm.ppf(1 - (1 - confidence) / 2)
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return np.clip(centre - half, 0.0, 1.0), np.clip(centre + half, 0.0, 1.0)


def holm(p: np.ndarray) -> np.ndarray:
    """Holm's step-down adjusted p-values (controls the family-wise error rate; Holm 1979)."""
    p = np.asarray(p, np.float64)
    m = len(p)
    if m == 0:
        return p.copy()
    order = np.argsort(p, kind="stable")
    stepped = np.maximum.accumulate(np.minimum(1.0, (m - np.arange(m)) * p[order]))
    out = np.empty(m)
    out[order] = stepped
    return out


def benjamini_hochberg(p: np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values (controls the false discovery rate)."""
    p = np.asarray(p, np.float64)
    return stats.false_discovery_control(p, method="bh") if len(p) else p.copy()


CORRECTIONS = {"holm": holm, "bh": benjamini_hochberg}
