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
               "precision": "predicted", "calibration_error": "size", "base_rate": "size",
               "accuracy": "size", "fnr": "positives"}


@dataclasses.dataclass(frozen=True, eq=False)
class Gap(Result):
    """The gap in one group metric between the two judged groups that realise it."""

    metric: str
    value: float
    high_group: str | None
    low_group: str | None


@dataclasses.dataclass(frozen=True, eq=False)
class Disparity(Result):
    """One disparity for one attribute and class, with its interval and caveats.

    `value` (the headline) and its interval are computed over the groups large enough to judge
    (`small_groups` are not); `all_groups_value` is the same disparity over every group where the
    metric is defined, as fairlearn computes it. `gaps` holds the judged gap of each compared
    metric (two for equalized odds: TPR and FPR); `metric` names the one that realises `value`.
    """

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
    all_groups_value: float = float("nan")
    gaps: tuple[Gap, ...] = ()

    @property
    def significant(self) -> bool:
        """True when the interval excludes no-disparity (0 for differences, 1 for ratios)."""
        if not np.isfinite(self.ci_low) or not np.isfinite(self.ci_high):
            return False
        return self.ci_low > 0 if self.kind == "difference" else self.ci_high < 1


def judged(counts: Mapping[str, np.ndarray], metric: str, *, min_group_size: int, min_count: int) -> np.ndarray:
    """Per group: is it large enough to judge `metric`? (rows >= min_group_size and the metric's
    denominator, e.g. positives for TPR, >= min_count)."""
    return (counts["size"] >= min_group_size) & (counts[DENOMINATOR[metric]] >= max(min_count, 1))


def _one(kind: str, point: np.ndarray, reps: np.ndarray | None, keep: np.ndarray):
    """(value, hi index, lo index, replicate values) over the groups in `keep` where the metric is
    defined; NaN when fewer than two."""
    defined = np.isfinite(point) & keep
    if defined.sum() < 2:
        return float("nan"), None, None, None
    masked = np.where(defined, point, np.nan)
    hi, lo = int(np.nanargmax(masked)), int(np.nanargmin(masked))
    if hi == lo:  # all equal: still name two different groups
        lo = int(next(g for g in np.flatnonzero(defined) if g != hi))
    if kind == "difference":
        value = point[hi] - point[lo]
        rep = None if reps is None else reps[:, hi] - reps[:, lo]
    else:
        value = 1.0 if point[hi] == 0 else point[lo] / point[hi]
        rep = None if reps is None else np.where(reps[:, hi] == 0, np.where(reps[:, lo] == 0, 1.0, np.nan),
                                                 reps[:, lo] / np.where(reps[:, hi] == 0, 1.0, reps[:, hi]))
    return float(value), hi, lo, rep


def _worse(kind: str, a: float, b: float) -> bool:
    """Is `a` a worse disparity than `b` (NaN never is)?"""
    if not np.isfinite(a):
        return False
    return not np.isfinite(b) or (a > b if kind == "difference" else a < b)


def compute(name: str, *, attribute: str, class_name: str, labels: tuple[str, ...],
            point: Mapping[str, np.ndarray], reps: Mapping[str, np.ndarray] | None,
            counts: Mapping[str, np.ndarray], confidence: float, min_group_size: int,
            min_count: int) -> Disparity:
    """The disparity `name` (see DISPARITIES) from group metrics `point` (G,) and `reps` (B, G).

    The headline uses only groups large enough to judge each metric (see `judged`); the value
    over all defined groups is kept as `all_groups_value`.
    """
    metrics, kind = DISPARITIES[name]
    everyone = np.ones(len(labels), bool)
    best, all_value, gaps = None, float("nan"), []
    for metric in metrics:
        keep = judged(counts, metric, min_group_size=min_group_size, min_count=min_count)
        value, hi, lo, rep = _one(kind, point[metric], None if reps is None else reps[metric], keep)
        gaps.append(Gap(metric=metric, value=value, high_group=None if hi is None else labels[hi],
                        low_group=None if lo is None else labels[lo]))
        if best is None or _worse(kind, value, best[1]):
            best = (metric, value, hi, lo, rep)
        full = _one(kind, point[metric], None, everyone)[0]
        if _worse(kind, full, all_value):
            all_value = full
    metric, value, hi, lo, rep = best
    ci_low = ci_high = float("nan")
    nan_fraction = 0.0
    if rep is not None:
        finite = np.isfinite(rep)
        nan_fraction = float(1.0 - finite.mean())
        if finite.any():
            alpha = (1.0 - confidence) / 2
            ci_low, ci_high = (float(q) for q in np.quantile(rep[finite], [alpha, 1 - alpha]))
    denominators = [counts[DENOMINATOR[m]] for m in metrics]
    small = tuple(lab for g, lab in enumerate(labels)
                  if counts["size"][g] < min_group_size or any(0 < d[g] < min_count for d in denominators))
    undefined = tuple(lab for g, lab in enumerate(labels) if any(d[g] == 0 for d in denominators))
    return Disparity(name=name, attribute=attribute, class_name=class_name, value=value,
                     ci_low=ci_low, ci_high=ci_high,
                     high_group=None if hi is None else labels[hi],
                     low_group=None if lo is None else labels[lo], metric=metric, kind=kind,
                     small_groups=small, undefined_groups=undefined, nan_fraction=nan_fraction,
                     all_groups_value=all_value, gaps=tuple(gaps))
