"""Named disparities between groups, each with a bootstrap percentile interval.

A difference is `max_g m_g - min_g m_g` and a ratio `min_g m_g / max_g m_g` over the groups where
the metric is defined (fairlearn's "between_groups" method). The interval is for the gap between
the two groups that realise the point estimate (the oriented, signed gap `m_hi - m_lo`, or the
ratio `m_lo / m_hi`), so it can cross zero (or one) when the gap could be chance: an interval
excluding zero means those two groups really differ (Efron & Tibshirani 1993, percentile method).
"""

from __future__ import annotations

import dataclasses
from typing import Mapping

import numpy as np

from audit.results import Result

# name -> (group metrics compared, "difference" | "ratio"); equalized odds takes the worse of two
DISPARITIES: Mapping[str, tuple[tuple[str, ...], str]] = {
    "demographic_parity_difference": (("selection_rate",), "difference"),
    "demographic_parity_ratio": (("selection_rate",), "ratio"),
    "disparate_impact": (("selection_rate",), "ratio"),
    "equal_opportunity_difference": (("tpr",), "difference"),
    "equalized_odds_difference": (("tpr", "fpr"), "difference"),
    "predictive_parity_difference": (("precision",), "difference"),
    "calibration_gap": (("calibration_error",), "difference"),
}

# which count a group metric is a fraction of (for "too small to judge")
DENOMINATOR = {"selection_rate": "size", "tpr": "positives", "fpr": "negatives",
               "precision": "predicted", "calibration_error": "size"}


@dataclasses.dataclass(frozen=True, eq=False)
class Disparity(Result):
    """One disparity for one attribute and class, with its interval and caveats."""

    name: str
    attribute: str
    class_name: str
    value: float
    ci_low: float
    ci_high: float
    high_group: str | None
    low_group: str | None
    metric: str
    kind: str
    small_groups: tuple[str, ...] = ()
    undefined_groups: tuple[str, ...] = ()
    nan_fraction: float = 0.0

    @property
    def significant(self) -> bool:
        """True when the interval excludes no-disparity (0 for differences, 1 for ratios)."""
        if not np.isfinite(self.ci_low) or not np.isfinite(self.ci_high):
            return False
        return self.ci_low > 0 if self.kind == "difference" else self.ci_high < 1


def _one(metric: str, kind: str, point: np.ndarray, reps: np.ndarray | None):
    """(value, hi index, lo index, replicate values) for one metric; NaN when < 2 groups defined."""
    defined = np.isfinite(point)
    if defined.sum() < 2:
        return float("nan"), None, None, None
    masked = np.where(defined, point, np.nan)
    hi, lo = int(np.nanargmax(masked)), int(np.nanargmin(masked))
    if kind == "difference":
        value = point[hi] - point[lo]
        rep = None if reps is None else reps[:, hi] - reps[:, lo]
    else:
        value = 1.0 if point[hi] == 0 else point[lo] / point[hi]
        rep = None if reps is None else np.where(reps[:, hi] == 0, np.where(reps[:, lo] == 0, 1.0, np.nan),
                                                 reps[:, lo] / np.where(reps[:, hi] == 0, 1.0, reps[:, hi]))
    return float(value), hi, lo, rep


def compute(name: str, *, attribute: str, class_name: str, labels: tuple[str, ...],
            point: Mapping[str, np.ndarray], reps: Mapping[str, np.ndarray] | None,
            counts: Mapping[str, np.ndarray], confidence: float, min_group_size: int,
            min_count: int) -> Disparity:
    """The disparity `name` (see DISPARITIES) from group metrics `point` (G,) and `reps` (B, G)."""
    metrics, kind = DISPARITIES[name]
    best = None
    for metric in metrics:
        value, hi, lo, rep = _one(metric, kind, point[metric], None if reps is None else reps[metric])
        if best is None or (np.isfinite(value) and not value <= best[1]):
            best = (metric, value, hi, lo, rep)
    metric, value, hi, lo, rep = best
    ci_low = ci_high = float("nan")
    nan_fraction = 0.0
    if rep is not None:
        finite = np.isfinite(rep)
        nan_fraction = float(1.0 - finite.mean())
        if finite.any():
            alpha = (1.0 - confidence) / 2
            ci_low, ci_high = (float(q) for q in np.quantile(rep[finite], [alpha, 1 - alpha]))
    used = [m for m in metrics]
    denominators = [counts[DENOMINATOR[m]] for m in used]
    small = tuple(lab for g, lab in enumerate(labels)
                  if counts["size"][g] < min_group_size or any(0 < d[g] < min_count for d in denominators))
    undefined = tuple(lab for g, lab in enumerate(labels) if any(d[g] == 0 for d in denominators))
    return Disparity(name=name, attribute=attribute, class_name=class_name, value=value,
                     ci_low=ci_low, ci_high=ci_high,
                     high_group=None if hi is None else labels[hi],
                     low_group=None if lo is None else labels[lo], metric=metric, kind=kind,
                     small_groups=small, undefined_groups=undefined, nan_fraction=nan_fraction)
