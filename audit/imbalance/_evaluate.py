"""`evaluate(model, data)`: class-imbalance audit of a model on one split."""

from __future__ import annotations

import numpy as np

from audit.errors import AuditInputError
from audit.data._checks import check_model_data, check_predictions
from audit.imbalance import _threshold
from audit.imbalance._calibration import from_sums, reliability_sums
from audit.imbalance._report import ImbalanceReport
from audit.results import Finding, Provenance, timer


def brier_sum(y, proba, n_classes: int) -> float:
    """Sum over rows of the Brier loss, scikit-learn's `brier_score_loss` times the row count:
    (P(class 1) - y)^2 for a binary model, sum_k (p_k - [y == k])^2 otherwise."""
    proba = np.asarray(proba, np.float64)
    if n_classes == 2:
        return float(((proba[:, 1] - (np.asarray(y) == 1)) ** 2).sum())
    return float(((proba - np.eye(n_classes)[np.asarray(y)]) ** 2).sum())


def confusion_matrix(y, pred, n_classes: int) -> np.ndarray:
    """(K, K) counts of rows of true class i predicted j (scikit-learn's layout)."""
    return np.bincount(np.asarray(y, np.int64) * n_classes + np.asarray(pred, np.int64),
                       minlength=n_classes * n_classes).reshape(n_classes, n_classes)


def count_metrics(confusion: np.ndarray, brier_total: float) -> tuple[dict[str, np.ndarray], dict[str, float]]:
    """Per-class precision, recall, F1, support and the summary metrics, from the confusion matrix
    (and the summed Brier loss) alone, with scikit-learn's definitions (zero_division=0; recall NaN
    for a class absent from the rows; balanced accuracy over the classes present): the one owner of
    these rules, for rows in memory and for a streamed file alike."""
    c = np.asarray(confusion, np.float64)
    n = c.sum()
    tp, support, predicted = np.diag(c), c.sum(axis=1), c.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(predicted > 0, tp / np.where(predicted > 0, predicted, 1), 0.0)
        recall = np.where(support > 0, tp / np.where(support > 0, support, 1), np.nan)
        f1_den = 2 * tp + (predicted - tp) + (support - tp)
        f1 = np.where(f1_den > 0, 2 * tp / np.where(f1_den > 0, f1_den, 1), 0.0)
    present = support > 0
    cov_tp = tp.sum() * n - support @ predicted
    cov_pp, cov_tt = n * n - predicted @ predicted, n * n - support @ support
    mcc = 0.0 if cov_pp * cov_tt == 0 else cov_tp / np.sqrt(cov_tt * cov_pp)
    summary = {"accuracy": float(tp.sum() / n), "majority_accuracy": float(support.max() / n),
               "balanced_accuracy": float(recall[present].mean()), "macro_f1": float(f1.mean()),
               "weighted_f1": float((f1 * support).sum() / n), "mcc": float(mcc),
               "brier": float(brier_total / n)}
    return {"precision": precision, "recall": recall, "f1": f1, "support": support}, summary


def score_metrics(y, proba, n_classes: int) -> dict[str, np.ndarray]:
    """Per-class one-vs-rest ROC-AUC and average precision (NaN for a class absent or alone)."""
    from sklearn import metrics as skm

    counts = np.bincount(y, minlength=n_classes)
    auc = np.full(n_classes, np.nan)
    ap = np.full(n_classes, np.nan)
    for k in np.flatnonzero((counts > 0) & (counts < len(y))):
        auc[k] = skm.roc_auc_score(y == k, proba[:, k])
        ap[k] = skm.average_precision_score(y == k, proba[:, k])
    return {"roc_auc": auc, "pr_auc": ap}


def class_metrics(y, pred, proba, n_classes: int) -> tuple[dict[str, np.ndarray], dict[str, float], np.ndarray]:
    """(per-class metrics, summary metrics, confusion matrix) with scikit-learn's definitions."""
    confusion = confusion_matrix(y, pred, n_classes)
    per_class, summary = count_metrics(confusion, brier_sum(y, proba, n_classes))
    return {**per_class, **score_metrics(y, proba, n_classes)}, summary, confusion


def _recall_at(thresholds, class_names, k: int, point) -> float:
    """Recall of class k at a binary operating point on P(positive class)."""
    positive = list(class_names).index(thresholds.positive_class)
    return point.recall if k == positive else 1.0 - point.false_positive_rate


def _findings(report_parts, *, class_names, train_counts, counts, min_recall, max_recall_gap, max_ece,
              max_accuracy_gap) -> tuple[Finding, ...]:
    """Findings that name the class they are about (the minority by training counts, the
    worst-served by recall), each with the rule it applies: the printed threshold is the one used."""
    per_class, summary, rel, thresholds = report_parts
    out = []
    minority = int(np.argmin(train_counts))
    name = class_names[minority]
    recall = per_class["recall"][minority]
    ratio = train_counts.max() / max(train_counts.min(), 1)
    if counts[minority] == 0:
        out.append(Finding(id="imbalance.minority_absent", status="warn", title="Minority class absent",
                           message=f"No audited row is of the minority class {name!r}; its recall is undefined."))
    else:
        low = recall < min_recall
        out.append(Finding(
            id="imbalance.minority_recall", status="fail" if low else "pass",
            title=f"Recall of the minority class {name!r}",
            message=(f"The model finds {recall:.1%} of {name!r} rows, the smallest class in training "
                     f"(class ratio {ratio:.1f}:1); the rule fails below {min_recall:.0%}."),
            metric=f"recall:{name}", value=float(recall), threshold=min_recall))
    present = np.flatnonzero(counts > 0)
    if len(present) >= 2:
        worst = int(present[np.argmin(per_class["recall"][present])])
        best = int(present[np.argmax(per_class["recall"][present])])
        gap = float(per_class["recall"][best] - per_class["recall"][worst])
        behind = gap > max_recall_gap
        out.append(Finding(
            id="imbalance.recall_gap", status="warn" if behind else "pass",
            title=f"Worst-served class {class_names[worst]!r}",
            message=(f"Recall of {class_names[worst]!r} is {per_class['recall'][worst]:.1%} against "
                     f"{per_class['recall'][best]:.1%} for {class_names[best]!r}: a gap of {gap:.3f}; the rule "
                     f"warns above {max_recall_gap}."),
            metric="recall_gap", value=gap, threshold=max_recall_gap))
    for k in np.flatnonzero((counts > 0) & (per_class["recall"] < min_recall)):
        if k != minority:
            out.append(Finding(id=f"imbalance.low_recall:{class_names[k]}", status="warn",
                               title=f"Low recall for {class_names[k]!r}",
                               message=f"Recall of {class_names[k]!r} is {per_class['recall'][k]:.1%}, below "
                                       f"{min_recall:.0%}.",
                               metric=f"recall:{class_names[k]}", value=float(per_class["recall"][k]),
                               threshold=min_recall))
    never = [class_names[k] for k in np.flatnonzero(per_class["support"] > 0)
             if per_class["precision"][k] == 0 and per_class["recall"][k] == 0]
    if never:
        out.append(Finding(id="imbalance.never_predicted", status="fail", title="Classes never found",
                           message=f"The model never correctly predicts {never}; precision and F1 are 0 there."))
    gap = summary["accuracy"] - summary["balanced_accuracy"]
    hides = gap > max_accuracy_gap
    msg = (f"Accuracy {summary['accuracy']:.3f} against {summary['majority_accuracy']:.3f} for always predicting "
           f"the majority class; balanced accuracy (mean recall over classes) {summary['balanced_accuracy']:.3f}, "
           f"{gap:.3f} below accuracy; the rule warns when the gap exceeds {max_accuracy_gap}")
    if hides and len(present) >= 2:
        msg += f": accuracy hides {class_names[worst]!r}, found at {per_class['recall'][worst]:.1%}"
    if thresholds is not None and counts[minority] > 0:
        d, f = thresholds.point("default"), thresholds.point("f1_optimal")
        msg += (f". Recall of the minority class {name!r} is {_recall_at(thresholds, class_names, minority, d):.1%} "
                f"at the default threshold and {_recall_at(thresholds, class_names, minority, f):.1%} at the "
                f"F1-optimal threshold {f.threshold:.2f} on P({thresholds.positive_class!r})")
    out.append(Finding(id="imbalance.accuracy_hides", status="warn" if hides else "pass",
                       title="What accuracy hides", message=msg + ".", metric="accuracy_gap",
                       value=float(gap), threshold=max_accuracy_gap))
    out.append(Finding(id="imbalance.calibration", status="warn" if rel.ece > max_ece else "pass",
                       title="Calibration", message=f"Expected calibration error {rel.ece:.3f} (Brier "
                       f"{summary['brier']:.3f}); the rule warns above {max_ece}.", metric="ece", value=rel.ece,
                       threshold=max_ece))
    return tuple(out)


def _check_settings(*, n_bins, fp_cost, fn_cost, min_recall, max_recall_gap, max_ece, max_points,
                    max_accuracy_gap) -> None:
    """One clear error for impossible settings, before any work."""
    def number(v) -> bool:
        return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool) and np.isfinite(v)

    problems = []
    for name, v in (("n_bins", n_bins), ("max_points", max_points)):
        if not (isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v >= 1):
            problems.append(f"{name}={v!r} must be a positive integer")
    if not (number(fp_cost) and fp_cost > 0):
        problems.append(f"fp_cost={fp_cost!r} must be a positive number")
    if fn_cost is not None and not (number(fn_cost) and fn_cost > 0):
        problems.append(f"fn_cost={fn_cost!r} must be a positive number or None (class-ratio default)")
    for name, v in (("min_recall", min_recall), ("max_recall_gap", max_recall_gap), ("max_ece", max_ece),
                    ("max_accuracy_gap", max_accuracy_gap)):
        if not (number(v) and 0 <= v <= 1):
            problems.append(f"{name}={v!r} must be a number in [0, 1]")
    if problems:
        raise AuditInputError("imbalance.evaluate: " + "; ".join(problems) + ".")


def evaluate(model, data, *, split: str = "test", seed: int = 0, n_bins: int = 10,
             threshold_split: str | None = "val", fp_cost: float = 1.0, fn_cost: float | None = None,
             min_recall: float = 0.5, max_recall_gap: float = 0.2, max_ece: float = 0.1, max_points: int = 256,
             max_accuracy_gap: float = 0.05) -> ImbalanceReport:
    """Class distribution, per-class and summary metrics, confusion matrix, calibration and, for
    binary models, threshold analysis (thresholds chosen on `threshold_split` when it has rows of
    both classes, else on the audited rows). The minority class's recall (by training counts)
    fails below `min_recall`; the worst-served class (lowest recall) warns when it trails the
    best-served by more than `max_recall_gap`; "what accuracy hides" warns when accuracy exceeds
    balanced accuracy by more than `max_accuracy_gap`; ECE warns above `max_ece`. `seed` is
    recorded; the analysis itself draws no random numbers.
    """
    _check_settings(n_bins=n_bins, fp_cost=fp_cost, fn_cost=fn_cost, min_recall=min_recall,
                    max_recall_gap=max_recall_gap, max_ece=max_ece, max_points=max_points,
                    max_accuracy_gap=max_accuracy_gap)
    with timer() as t:
        rows = check_model_data(model, data, split)
        proba = model.predict_proba(data.X[rows]).astype(np.float64)
        y, pred, proba = check_predictions(data.y[rows], proba.argmax(-1), proba, model.n_classes,
                                           f"{data.name}[{split}]")
        K = model.n_classes
        train_rows = data.splits.get("train", np.arange(0))
        train_counts = np.bincount(data.y[train_rows], minlength=K) if len(train_rows) else np.bincount(y, minlength=K)
        fit = None
        if K == 2 and np.bincount(y, minlength=K).min() > 0:
            fit_rows = data.splits.get(threshold_split, np.arange(0)) if threshold_split else np.arange(0)
            if len(fit_rows) and len(np.unique(data.y[fit_rows])) == 2:
                score_fit = model.predict_proba(data.X[fit_rows]).astype(np.float64)[:, 1]
                if not np.isfinite(score_fit).all():
                    raise AuditInputError(f"the model's scores on split {threshold_split!r} are NaN or infinite.")
                fit = (data.y[fit_rows], score_fit, threshold_split)
            else:
                fit = (y, proba[:, 1], split)
        parts = assemble(class_names=model.class_names, confusion=confusion_matrix(y, pred, K),
                         brier_total=brier_sum(y, proba, K), rel_sums=reliability_sums(y, proba, n_bins=n_bins),
                         ranked=(y, proba), fit=fit, train_counts=train_counts, fp_cost=fp_cost, fn_cost=fn_cost,
                         max_points=max_points, min_recall=min_recall, max_recall_gap=max_recall_gap,
                         max_ece=max_ece, max_accuracy_gap=max_accuracy_gap)
    settings = {"n_bins": n_bins, "threshold_split": threshold_split, "fp_cost": fp_cost, "fn_cost": fn_cost,
                "min_recall": min_recall, "max_recall_gap": max_recall_gap, "max_ece": max_ece, "max_points": max_points,
                "max_accuracy_gap": max_accuracy_gap}
    return ImbalanceReport(split=split, **parts, provenance=Provenance(method="imbalance.evaluate", settings=settings,
                                                                       seed=seed, seconds=t[0]))


def assemble(*, class_names, confusion, brier_total, rel_sums, ranked, fit, train_counts, fp_cost, fn_cost,
             max_points, min_recall, max_recall_gap, max_ece, max_accuracy_gap) -> dict:
    """The ImbalanceReport's fields (but split and provenance) from counts and sums over the audited
    rows (`confusion`, `brier_total`, `rel_sums`), the rows `ranked` = (y, proba) for the rank-based
    metrics (ROC-AUC, PR-AUC, operating points: every audited row, or a streamed file's sample), and
    `fit` = (y, P(class 1), split name) where binary thresholds are chosen (None: no threshold
    analysis). Shared by `evaluate` and the streamed audit, so both apply one set of rules."""
    K = len(class_names)
    counts = np.asarray(confusion).sum(axis=1).astype(np.int64)
    per_class, summary = count_metrics(confusion, brier_total)
    per_class = {**per_class, **score_metrics(ranked[0], ranked[1], K)}
    rel = from_sums(rel_sums)
    thresholds = None
    y_rank, proba_rank = ranked
    if fit is not None and K == 2 and np.bincount(y_rank, minlength=K).min() > 0:
        y_fit, score_fit, chosen_on = fit
        thresholds = _threshold.analyse(y_rank, proba_rank[:, 1], y_fit=y_fit, score_fit=score_fit,
                                        chosen_on=chosen_on, positive_class=class_names[1], fp_cost=fp_cost,
                                        fn_cost=fn_cost, max_points=max_points)
    findings = _findings((per_class, summary, rel, thresholds), class_names=tuple(class_names),
                         train_counts=train_counts, counts=counts, min_recall=min_recall,
                         max_recall_gap=max_recall_gap, max_ece=max_ece, max_accuracy_gap=max_accuracy_gap)
    return {"class_names": tuple(class_names), "train_counts": np.asarray(train_counts, np.int64),
            "counts": counts, "per_class": per_class, "summary": summary,
            "confusion": np.asarray(confusion, np.int64), "reliability": rel, "thresholds": thresholds,
            "findings": findings}
