"""`evaluate(model, data)`: class-imbalance audit of a model on one split."""

from __future__ import annotations

import numpy as np

from audit.errors import AuditInputError
from audit.data._checks import check_model_data, check_predictions
from audit.imbalance import _threshold
from audit.imbalance._calibration import reliability
from audit.imbalance._report import ImbalanceReport
from audit.results import Finding, Provenance, timer


def class_metrics(y, pred, proba, n_classes: int) -> tuple[dict[str, np.ndarray], dict[str, float], np.ndarray]:
    """(per-class metrics, summary metrics, confusion matrix) with scikit-learn's definitions."""
    from sklearn import metrics as skm

    labels = np.arange(n_classes)
    precision, recall, f1, support = skm.precision_recall_fscore_support(
        y, pred, labels=labels, zero_division=0.0)
    present = np.bincount(y, minlength=n_classes) > 0
    recall = np.where(present, recall, np.nan)
    auc = np.full(n_classes, np.nan)
    ap = np.full(n_classes, np.nan)
    for k in np.flatnonzero(present & (np.bincount(y, minlength=n_classes) < len(y))):
        auc[k] = skm.roc_auc_score(y == k, proba[:, k])
        ap[k] = skm.average_precision_score(y == k, proba[:, k])
    per_class = {"precision": precision, "recall": recall, "f1": f1, "support": support.astype(np.float64),
                 "roc_auc": auc, "pr_auc": ap}
    counts = np.bincount(y, minlength=n_classes)
    summary = {"accuracy": float(skm.accuracy_score(y, pred)),
               "majority_accuracy": float(counts.max() / len(y)),
               "balanced_accuracy": float(skm.balanced_accuracy_score(y, pred)),
               "macro_f1": float(skm.f1_score(y, pred, labels=labels, average="macro", zero_division=0.0)),
               "weighted_f1": float(skm.f1_score(y, pred, labels=labels, average="weighted", zero_division=0.0)),
               "mcc": float(skm.matthews_corrcoef(y, pred)),
               "brier": float(skm.brier_score_loss(y, proba if n_classes > 2 else proba[:, 1], labels=labels))}
    return per_class, summary, skm.confusion_matrix(y, pred, labels=labels)


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
        counts = np.bincount(y, minlength=K)
        per_class, summary, confusion = class_metrics(y, pred, proba, K)
        rel = reliability(y, proba, n_bins=n_bins)
        thresholds = None
        if K == 2 and counts.min() > 0:
            fit_rows = data.splits.get(threshold_split, np.arange(0)) if threshold_split else np.arange(0)
            if len(fit_rows) and len(np.unique(data.y[fit_rows])) == 2:
                score_fit = model.predict_proba(data.X[fit_rows]).astype(np.float64)[:, 1]
                if not np.isfinite(score_fit).all():
                    raise AuditInputError(f"the model's scores on split {threshold_split!r} are NaN or infinite.")
                y_fit, chosen_on = data.y[fit_rows], threshold_split
            else:
                score_fit, y_fit, chosen_on = proba[:, 1], y, split
            thresholds = _threshold.analyse(y, proba[:, 1], y_fit=y_fit, score_fit=score_fit, chosen_on=chosen_on,
                                            positive_class=model.class_names[1], fp_cost=fp_cost,
                                            fn_cost=fn_cost, max_points=max_points)
        findings = _findings((per_class, summary, rel, thresholds), class_names=model.class_names,
                             train_counts=train_counts, counts=counts, min_recall=min_recall,
                             max_recall_gap=max_recall_gap, max_ece=max_ece,
                             max_accuracy_gap=max_accuracy_gap)
    settings = {"n_bins": n_bins, "threshold_split": threshold_split, "fp_cost": fp_cost, "fn_cost": fn_cost,
                "min_recall": min_recall, "max_recall_gap": max_recall_gap, "max_ece": max_ece, "max_points": max_points,
                "max_accuracy_gap": max_accuracy_gap}
    return ImbalanceReport(class_names=tuple(model.class_names), split=split, train_counts=train_counts,
                           counts=counts, per_class=per_class, summary=summary, confusion=confusion,
                           reliability=rel, thresholds=thresholds, findings=findings,
                           provenance=Provenance(method="imbalance.evaluate", settings=settings, seed=seed,
                                                 seconds=t[0]))
