"""Threshold analysis for binary models: PR and ROC curves, F1-optimal and cost-weighted cut-offs.

Thresholds are chosen on one set of rows (the validation split when there is one, so the choice
is not tuned on the rows it is judged on) and their precision, recall and accuracy are reported
on the audited rows. The cost-weighted threshold minimises `fp_cost * FP + fn_cost * FN`; with
`fn_cost = n_negative / n_positive` (the default) that is the balanced-error threshold
(Elkan 2001, "The foundations of cost-sensitive learning").
"""

from __future__ import annotations

import dataclasses

import numpy as np

from audit.results import Result


@dataclasses.dataclass(frozen=True, eq=False)
class OperatingPoint(Result):
    """A threshold on P(positive) and what it gives on the audited rows."""

    name: str
    threshold: float
    precision: float
    recall: float
    f1: float
    accuracy: float
    false_positive_rate: float


@dataclasses.dataclass(frozen=True, eq=False)
class ThresholdAnalysis(Result):
    """Curves on the audited rows (subsampled to at most `max_points`) and operating points."""

    positive_class: str
    precision: np.ndarray
    recall: np.ndarray
    pr_thresholds: np.ndarray
    fpr: np.ndarray
    tpr: np.ndarray
    roc_thresholds: np.ndarray
    points: tuple[OperatingPoint, ...]
    chosen_on: str
    fp_cost: float
    fn_cost: float

    def point(self, name: str) -> OperatingPoint:
        return next(p for p in self.points if p.name == name)


def _subsample(n: int, max_points: int) -> np.ndarray:
    return np.arange(n) if n <= max_points else np.unique(np.linspace(0, n - 1, max_points).round().astype(int))


def f1_optimal_threshold(y, score) -> float:
    """The threshold t (predict positive when score >= t) with the highest F1 on these rows."""
    from sklearn.metrics import precision_recall_curve

    p, r, t = precision_recall_curve(y, score)
    with np.errstate(invalid="ignore", divide="ignore"):
        f1 = np.where(p[:-1] + r[:-1] > 0, 2 * p[:-1] * r[:-1] / (p[:-1] + r[:-1]), 0.0)
    return float(t[int(np.argmax(f1))])


def cost_threshold(y, score, *, fp_cost: float, fn_cost: float) -> float:
    """The threshold t (positive when score >= t) with the least `fp_cost*FP + fn_cost*FN`."""
    order = np.argsort(-score, kind="stable")
    s, yy = score[order], y[order].astype(np.float64)
    last = np.r_[np.flatnonzero(np.diff(s) != 0), len(s) - 1]  # end of each distinct-score run
    tp = np.cumsum(yy)[last]
    fp = np.cumsum(1 - yy)[last]
    fn = yy.sum() - tp
    cost = np.r_[fn_cost * yy.sum(), fp_cost * fp + fn_cost * fn]  # first entry: predict none positive
    best = int(np.argmin(cost))
    return float(np.nextafter(s[0], np.inf)) if best == 0 else float(s[last[best - 1]])


def operating_point(name: str, y, score, threshold: float) -> OperatingPoint:
    pred = score >= threshold
    tp = float(np.sum(pred & (y == 1)))
    fp = float(np.sum(pred & (y == 0)))
    fn = float(np.sum(~pred & (y == 1)))
    tn = float(np.sum(~pred & (y == 0)))
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return OperatingPoint(name=name, threshold=float(threshold), precision=precision, recall=recall, f1=f1,
                          accuracy=(tp + tn) / len(y), false_positive_rate=fp / (fp + tn) if fp + tn else 0.0)


def analyse(y, score, *, y_fit, score_fit, chosen_on: str, positive_class: str, fp_cost: float,
            fn_cost: float | None, max_points: int = 256) -> ThresholdAnalysis:
    """Curves and operating points ("default" 0.5, "f1_optimal", "cost_weighted")."""
    from sklearn.metrics import precision_recall_curve, roc_curve

    if fn_cost is None:
        fn_cost = float(np.sum(y_fit == 0) / max(np.sum(y_fit == 1), 1)) * fp_cost
    p, r, pt = precision_recall_curve(y, score)
    fpr, tpr, rt = roc_curve(y, score)
    i, j = _subsample(len(pt), max_points), _subsample(len(rt), max_points)
    points = (operating_point("default", y, score, 0.5),
              operating_point("f1_optimal", y, score, f1_optimal_threshold(y_fit, score_fit)),
              operating_point("cost_weighted", y, score,
                              cost_threshold(y_fit, score_fit, fp_cost=fp_cost, fn_cost=fn_cost)))
    return ThresholdAnalysis(positive_class=positive_class, precision=p[i], recall=r[i], pr_thresholds=pt[i],
                             fpr=fpr[j], tpr=tpr[j], roc_thresholds=np.minimum(rt[j], 1.0), points=points,
                             chosen_on=chosen_on, fp_cost=float(fp_cost), fn_cost=float(fn_cost))
