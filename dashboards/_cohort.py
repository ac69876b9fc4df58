"""The cohort builder's arithmetic: rows picked by raw-column filters, and every metric the
report has recomputed on those rows (accuracy and error against the rest, per-class recall,
calibration, fairness gaps per sensitive attribute), each with an interval and a "too small to
judge" guard. Pure numpy over cached model outputs; the metric definitions are the analyzers'
own (`audit.fairness.assess`, `audit.imbalance.reliability`), so the numbers are the report's.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping, Sequence

import numpy as np

from audit.slices import wilson_interval

GAPS = ("demographic_parity_difference", "equal_opportunity_difference", "equalized_odds_difference")
MIN_GROUP_SIZE = 30  # fairness's defaults: smaller groups (or denominators) are too small to judge
MIN_COUNT = 10


@dataclasses.dataclass(frozen=True)
class Filter:
    """One raw-column condition: `levels` kept for a categorical column, or `low <= value <= high`."""

    column: str
    levels: tuple[str, ...] | None = None
    low: float | None = None
    high: float | None = None


def filter_mask(raw: np.ndarray, encoding, filters: Sequence[Filter]) -> np.ndarray:
    """Rows of `raw` (n, raw columns, in `encoding`'s column order) meeting every filter."""
    names = list(encoding.raw_names)
    mask = np.ones(len(raw), bool)
    for f in filters:
        j = names.index(f.column)
        column, values = encoding.columns[j], raw[:, j]
        if column.kind == "categorical":
            codes = np.clip(np.rint(np.nan_to_num(values, nan=-1)), -1, column.width - 1).astype(int)
            keep = np.isin(np.arange(column.width), [list(column.categories).index(v) for v in (f.levels or ())
                                                    if v in column.categories])
            mask &= (codes >= 0) & keep[np.maximum(codes, 0)]
        else:
            if f.low is not None:
                mask &= values >= f.low
            if f.high is not None:
                mask &= values <= f.high
    return mask


def _newcombe(p_hi, lo_hi, hi_hi, p_lo, lo_lo, hi_lo) -> tuple[float, float]:
    """Newcombe's square-and-add interval for a difference of two proportions from each one's
    own interval (Newcombe 1998, method 10, here with the groups' exact intervals)."""
    d = p_hi - p_lo
    return (float(d - np.sqrt((p_hi - lo_hi) ** 2 + (hi_lo - p_lo) ** 2)),
            float(d + np.sqrt((hi_hi - p_hi) ** 2 + (p_lo - lo_lo) ** 2)))


def gap_rows(result) -> list[dict[str, Any]]:
    """The headline of each gap in GAPS for one attribute's `audit.fairness.assess` result (worst
    over analysed classes, between groups large enough to judge), with Newcombe's interval from
    the two groups' exact intervals: an interval without a bootstrap, so a what-if answers at once."""
    tables = {t.class_name: t for t in result.tables}
    rows = []
    for name in GAPS:
        judged = [d for d in result.disparities if d.name == name and np.isfinite(d.value)]
        if not judged:
            rows.append({"attribute": result.name, "disparity": name, "value": None, "low": None, "high": None,
                         "between": "fewer than two groups large enough", "too small to judge": True})
            continue
        d = max(judged, key=lambda d: d.value)
        t = tables[d.class_name]
        i, j = t.groups.index(d.high_group), t.groups.index(d.low_group)
        v, a, b = t.values[d.metric], t.ci_low[d.metric], t.ci_high[d.metric]
        low, high = _newcombe(v[i], a[i], b[i], v[j], a[j], b[j])
        rows.append({"attribute": result.name, "disparity": name, "value": float(d.value), "low": low, "high": high,
                     "between": f"{d.high_group} vs {d.low_group} ({d.metric})", "too small to judge": False,
                     "small groups": ", ".join(d.small_groups)})
    return rows


def cohort_metrics(y: np.ndarray, proba: np.ndarray, mask: np.ndarray, *, class_names: Sequence[str],
                   groupings: Mapping[str, Any] | None = None, min_group_size: int = MIN_GROUP_SIZE,
                   min_count: int = MIN_COUNT, n_bins: int = 10) -> dict[str, Any]:
    """Every metric on the rows `mask` picks (argmax decisions, as the audit).

    Returns {"rows", "accuracy", "accuracy_low", "accuracy_high", "error", "rest_error", "rest_rows",
    "too_small", "per_class": [{class, rows, recall, low, high, predicted share, too small}], "ece",
    "mce", "gaps": [{attribute, disparity, value, low, high, between, too small to judge}]}; values a
    guard withholds are None."""
    from audit.data._groups import subset
    from audit.fairness import assess
    from audit.imbalance._calibration import reliability

    y, proba, mask = np.asarray(y), np.asarray(proba, np.float64), np.asarray(mask, bool)
    pred = proba.argmax(axis=1)
    wrong = pred != y
    n, rest = int(mask.sum()), int((~mask).sum())
    k = len(class_names)
    out: dict[str, Any] = {"rows": n, "rest_rows": rest, "too_small": n < min_group_size,
                           "rest_error": float(wrong[~mask].mean()) if rest else None}
    if n == 0:
        return {**out, "accuracy": None, "accuracy_low": None, "accuracy_high": None, "error": None,
                "per_class": [], "ece": None, "mce": None, "gaps": []}
    correct = int(n - wrong[mask].sum())
    low, high = wilson_interval(np.array([correct]), np.array([n]))
    out.update(accuracy=correct / n, accuracy_low=float(low[0]), accuracy_high=float(high[0]), error=1 - correct / n)
    yc, pc = y[mask], pred[mask]
    support = np.bincount(yc, minlength=k)
    found = np.bincount(yc[pc == yc], minlength=k)
    predicted = np.bincount(pc, minlength=k)
    lo, hi = wilson_interval(found, np.maximum(support, 1))
    out["per_class"] = [{"class": str(class_names[c]), "rows": int(support[c]),
                         "recall": float(found[c] / support[c]) if support[c] >= min_count else None,
                         "low": float(lo[c]) if support[c] >= min_count else None,
                         "high": float(hi[c]) if support[c] >= min_count else None,
                         "predicted share": float(predicted[c] / n), "too small to judge": bool(support[c] < min_count)}
                        for c in range(k)]
    if n >= min_group_size:
        rel = reliability(yc, proba[mask], n_bins=n_bins)
        out.update(ece=rel.ece, mce=rel.mce)
    else:
        out.update(ece=None, mce=None)
    gaps = []
    for attribute, grouping in (groupings or {}).items():
        part = subset(grouping, np.flatnonzero(mask))
        if len(part.labels) < 2:
            gaps += [{"attribute": attribute, "disparity": g, "value": None, "low": None, "high": None,
                      "between": f"one group only ({', '.join(part.labels)})", "too small to judge": True}
                     for g in GAPS]
            continue
        res = assess(yc, pc, part, scores=proba[mask], class_names=tuple(map(str, class_names)), name=attribute,
                     n_bootstrap=0, min_group_size=min_group_size, min_count=min_count)
        gaps += gap_rows(res)
    out["gaps"] = gaps
    return out
