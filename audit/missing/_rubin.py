"""Rubin's rules: pool one estimate made on each of m imputed data sets (Rubin 1987, "Multiple
Imputation for Nonresponse in Surveys"; van Buuren, "Flexible Imputation of Missing Data", 2.3).

The pooled estimate is the mean of the m estimates; its total variance is the mean within-
imputation variance W plus (1 + 1/m) times the between-imputation variance B (the m estimates'
sample variance), so the interval widens by what the imputations disagree on. The interval uses
Student's t with Rubin's degrees of freedom (m - 1)(1 + W / ((1 + 1/m) B))^2 (normal when B = 0).
"""

from __future__ import annotations

import numpy as np


def rubin(estimates: np.ndarray, variances: np.ndarray, *, confidence: float = 0.95
          ) -> tuple[float, float, float, float]:
    """(pooled estimate, total variance, low, high) from m >= 2 estimates and their variances."""
    from scipy.stats import norm, t

    q, u = np.asarray(estimates, np.float64), np.asarray(variances, np.float64)
    m = q.size
    if m < 2 or u.shape != q.shape:
        raise ValueError(f"Rubin's rules need m >= 2 estimates with one variance each, got {q.shape}, {u.shape}")
    mean, within, between = float(q.mean()), float(u.mean()), float(q.var(ddof=1))
    total = within + (1 + 1 / m) * between
    if between > 0:
        df = (m - 1) * (1 + within / ((1 + 1 / m) * between)) ** 2
        z = float(t.ppf(0.5 + confidence / 2, df))
    else:
        z = float(norm.ppf(0.5 + confidence / 2))
    half = z * np.sqrt(total)
    return mean, total, mean - half, mean + half
