"""Statistics for cohort search: one-sided Fisher exact test and multiple-test corrections (Wilson
intervals: `audit.intervals`)."""

from __future__ import annotations

import numpy as np
from scipy import stats


def fisher_greater(errors: np.ndarray, size: np.ndarray, *, total_errors: int, total: int) -> np.ndarray:
    """One-sided Fisher exact p-value that a cohort of `size` rows holding `errors` of the split's
    `total_errors` errors (out of `total` rows) has a higher error rate than the rest (vectorised:
    the hypergeometric upper tail, which is what `scipy.stats.fisher_exact(alternative="greater")` computes)."""
    return stats.hypergeom.sf(np.asarray(errors) - 1, total, total_errors, np.asarray(size))


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
