"""Confidence intervals for proportions, shared by every analyzer that reports a rate with its
uncertainty (error analysis's cohorts, missing-data rates): one owner for the rule."""

from __future__ import annotations

import numpy as np


def wilson_interval(k: np.ndarray, n: np.ndarray, *, confidence: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval for `k` successes in `n` trials (Wilson 1927), vectorised; NaN where n
    is 0; bounds clipped to [0, 1] against rounding. Equals scipy's `binomtest(...).proportion_ci(
    method="wilson")` (tests)."""
    from scipy.stats import norm  # scipy.stats costs ~0.5 s to import: only when an interval is asked for

    k, n = np.asarray(k, np.float64), np.asarray(n, np.float64)
    z = norm.ppf(0.5 + confidence / 2)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = k / n
        denom = 1 + z * z / n
        centre = (p + z * z / (2 * n)) / denom
        half = z / denom * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return np.clip(centre - half, 0.0, 1.0), np.clip(centre + half, 0.0, 1.0)
