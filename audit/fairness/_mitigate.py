"""Fairness mitigations with before/after numbers and their accuracy cost.

- Reweighing (Kamiran & Calders 2012): training rows weighted by P(g) P(y) / P(g, y), so that
  group and label are independent in the weighted training data; the model is retrained.
- Group-balanced weights: every group gets the same total weight; retrained.
- Per-group thresholds (Hardt, Price & Srebro 2016), fitted with fairlearn's
  `ThresholdOptimizer` on the validation rows and applied to the audited rows (binary models).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping, Sequence

import numpy as np

from audit.errors import AuditInputError
from audit.fairness._assess import assess
from audit.fairness._disparity import Disparity
from audit.data._checks import check_model_data
from audit.data._groups import attribute_groups
from audit.results import Finding, MetricSpec, Provenance, Result, timer

METHODS = ("reweighing", "group_balanced", "thresholds")
CONSTRAINTS = ("equalized_odds", "demographic_parity", "selection_rate_parity", "true_positive_rate_parity",
               "false_positive_rate_parity", "true_negative_rate_parity", "false_negative_rate_parity")
# fairlearn's ThresholdOptimizer constraints
TRACKED = ("demographic_parity_difference", "equal_opportunity_difference", "equalized_odds_difference")


def reweighing_weights(y, groups) -> np.ndarray:
    """Kamiran & Calders reweighing: w(g, y) = n_g n_y / (n n_gy), mean weight 1."""
    y, groups = np.asarray(y), np.asarray(groups)
    if y.shape != groups.shape:
        raise AuditInputError(f"y {y.shape} and groups {groups.shape} must have the same length.")
    _, g = np.unique(groups, return_inverse=True)
    _, c = np.unique(y, return_inverse=True)
    joint = np.zeros((g.max() + 1, c.max() + 1))
    np.add.at(joint, (g, c), 1.0)
    n = len(y)
    expected = joint.sum(1, keepdims=True) * joint.sum(0, keepdims=True) / n
    return (expected[g, c] / joint[g, c]).astype(np.float64)


def group_balanced_weights(groups) -> np.ndarray:
    """Each group gets the same total weight (n / n_groups); mean weight 1."""
    _, g, counts = np.unique(np.asarray(groups), return_inverse=True, return_counts=True)
    return len(g) / (len(counts) * counts[g])


@dataclasses.dataclass(frozen=True, eq=False)
class MitigationArm(Result):
    """One model variant measured on the audited rows."""

    name: str
    accuracy: float
    balanced_accuracy: float
    disparities: tuple[Disparity, ...]
    settings: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def value(self, disparity: str) -> float:
        return next(d.value for d in self.disparities if d.name == disparity)


@dataclasses.dataclass(frozen=True, eq=False)
class FairnessMitigation(Result):
    """Before ("baseline") and after numbers for each mitigation of one attribute."""

    SCHEMA = "audit.fairness.mitigation/1"
    METRICS = (
        MetricSpec("<arm>:accuracy", "higher", "Accuracy, <arm>",
                   "Share of the audited rows classified correctly by the <arm> model."),
        MetricSpec("<arm>:balanced_accuracy", "higher", "Balanced accuracy, <arm>",
                   "Mean recall over classes of the <arm> model on the audited rows."),
        MetricSpec("<arm>:accuracy_cost", "lower", "Accuracy cost of <arm>",
                   "Baseline accuracy minus the <arm> model's accuracy on the audited rows."),
        MetricSpec("<arm>:demographic_parity_difference:<attribute>", "lower",
                   "Demographic parity difference by <attribute>, <arm>",
                   "Demographic parity difference of the <arm> model between groups of <attribute> large "
                   "enough to judge, on the audited rows."),
        MetricSpec("<arm>:equal_opportunity_difference:<attribute>", "lower",
                   "Equal opportunity difference by <attribute>, <arm>",
                   "Equal opportunity difference of the <arm> model between groups of <attribute> large "
                   "enough to judge, on the audited rows."),
        MetricSpec("<arm>:equalized_odds_difference:<attribute>", "lower",
                   "Equalized odds difference by <attribute>, <arm>",
                   "Equalized odds difference of the <arm> model between groups of <attribute> large enough "
                   "to judge, on the audited rows."),
    )

    attribute: str
    arms: tuple[MitigationArm, ...]
    findings: tuple[Finding, ...]
    provenance: Provenance

    def arm(self, name: str) -> MitigationArm:
        for a in self.arms:
            if a.name == name:
                return a
        raise KeyError(f"no arm {name!r}; have {[a.name for a in self.arms]}")

    def metrics(self) -> dict[str, float]:
        """"<arm>:accuracy", "<arm>:balanced_accuracy", "<arm>:accuracy_cost" (baseline minus
        arm), "<arm>:<disparity>:<attribute>" for the tracked disparities."""
        base = self.arm("baseline").accuracy
        out: dict[str, float] = {}
        for a in self.arms:
            out[f"{a.name}:accuracy"] = a.accuracy
            out[f"{a.name}:balanced_accuracy"] = a.balanced_accuracy
            out[f"{a.name}:accuracy_cost"] = base - a.accuracy
            for d in a.disparities:
                if np.isfinite(d.value):
                    out[f"{a.name}:{d.name}:{self.attribute}"] = d.value
        return out


def _prefit(model):
    """A fitted scikit-learn classifier around an audit.Model (for ThresholdOptimizer)."""
    from sklearn.base import BaseEstimator, ClassifierMixin

    class Prefit(ClassifierMixin, BaseEstimator):
        def __init__(self, model=None):
            self.model = model
            self.classes_ = np.arange(model.n_classes) if model is not None else None

        def fit(self, X, y, **kwargs):
            return self

        def predict_proba(self, X):
            X = np.asarray(X, np.float32).reshape(-1, *self.model.input_shape)
            return self.model.predict_proba(X).astype(np.float64)  # fairlearn writes float64 into it

        def predict(self, X):
            return self.predict_proba(X).argmax(-1)

    return Prefit(model)


def _arm(name, y, pred, grouping, *, n_bootstrap, seed, class_names, settings) -> MitigationArm:
    from sklearn.metrics import balanced_accuracy_score

    result = assess(y, pred, grouping, class_names=class_names, name=grouping.name,
                    n_bootstrap=n_bootstrap, seed=seed)
    return MitigationArm(name=name, accuracy=float(np.mean(y == pred)),
                         balanced_accuracy=float(balanced_accuracy_score(y, pred)),
                         disparities=tuple(d for d in result.disparities if d.name in TRACKED),
                         settings=settings)


def _thresholds(model, data, fit_rows, rows, g_fit, g_eval, *, constraint, seed):
    from fairlearn.postprocessing import ThresholdOptimizer

    if model.n_classes != 2:
        raise AuditInputError("per-group thresholds need a binary model; use reweighing for "
                              f"{model.n_classes} classes.")
    flat = lambda r: data.X[r].reshape(len(r), -1)  # noqa: E731
    opt = ThresholdOptimizer(estimator=_prefit(model), constraints=constraint, objective="accuracy_score",
                             prefit=True, predict_method="predict_proba")
    labels = lambda g: np.asarray(g.labels)[g.codes]  # noqa: E731
    opt.fit(flat(fit_rows), data.y[fit_rows], sensitive_features=labels(g_fit))
    return np.asarray(opt.predict(flat(rows), sensitive_features=labels(g_eval), random_state=seed)).astype(np.int64)


def mitigate(model, data, *, attribute: str | Sequence[str], methods: Sequence[str] = ("reweighing", "thresholds"),
             constraint: str = "equalized_odds", split: str = "test", fit_split: str = "val",
             architecture: Any = None, train_options: Mapping[str, Any] | None = None,
             n_bootstrap: int = 200, seed: int = 0) -> FairnessMitigation:
    """Apply each mitigation in `methods` and measure accuracy and disparities before and after.

    Retraining methods ("reweighing", "group_balanced") train the same architecture with the
    same settings and seed as `model` (see `audit.imbalance.compare_mitigations` for how the
    architecture is found; `architecture` and `train_options` override). "thresholds" keeps
    `model` and fits per-group thresholds under `constraint` on the `fit_split` rows.
    """
    from audit.models import retrainer

    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise AuditInputError(f"unknown fairness mitigation(s) {unknown}; choose from {list(METHODS)}.")
    if "thresholds" in methods and constraint not in CONSTRAINTS:
        raise AuditInputError(f"constraint={constraint!r} is not one that fairlearn's ThresholdOptimizer "
                              f"supports; choose from {list(CONSTRAINTS)}.")
    with timer() as t:
        rows = check_model_data(model, data, split)
        key = (attribute,) if isinstance(attribute, str) else tuple(attribute)
        for name in key:
            if name not in data.sensitive:
                raise AuditInputError(f"{data.name} has no sensitive attribute {name!r}; it has "
                                      f"{sorted(data.sensitive)}.")
        def groups_of(r):
            return attribute_groups(data, "&".join(key), r)

        g_eval = groups_of(rows)
        y = data.y[rows].astype(np.int64)
        common = dict(n_bootstrap=n_bootstrap, seed=seed, class_names=model.class_names)
        arms = [_arm("baseline", y, model.predict(data.X[rows]).astype(np.int64), g_eval, settings={}, **common)]
        fit_options: dict[str, Any] = {}
        if any(m in ("reweighing", "group_balanced") for m in methods):
            fit, fit_options = retrainer(model, architecture=architecture, train_options=train_options, seed=seed)
            train_rows = data.splits["train"]
            g_train = groups_of(train_rows)
            labels = np.asarray(g_train.labels)[g_train.codes]
        for method in methods:
            if method in ("reweighing", "group_balanced"):
                w = (reweighing_weights(data.y[train_rows], labels) if method == "reweighing"
                     else group_balanced_weights(labels))
                retrained = fit(data, sample_weight=w)
                pred = retrained.predict(data.X[rows]).astype(np.int64)
                arms.append(_arm(method, y, pred, g_eval, settings={"train": fit_options}, **common))
            else:
                fit_rows = check_model_data(model, data, fit_split)
                pred = _thresholds(model, data, fit_rows, rows, groups_of(fit_rows), g_eval,
                                   constraint=constraint, seed=seed)
                arms.append(_arm(method, y, pred, g_eval,
                                 settings={"constraint": constraint, "fit_split": fit_split}, **common))
        findings = _findings(g_eval.name, arms)
    settings = {"attribute": g_eval.name, "methods": list(methods), "constraint": constraint, "split": split,
                "fit_split": fit_split, "n_bootstrap": n_bootstrap, "train_options": fit_options}
    return FairnessMitigation(attribute=g_eval.name, arms=tuple(arms), findings=findings,
                              provenance=Provenance(method="fairness.mitigate", settings=settings, seed=seed,
                                                    seconds=t[0]))


def _findings(attribute: str, arms: Sequence[MitigationArm]) -> tuple[Finding, ...]:
    base = arms[0]
    out = []
    for arm in arms[1:]:
        before, after = base.value("equalized_odds_difference"), arm.value("equalized_odds_difference")
        better = after < before
        out.append(Finding(
            id=f"fairness.mitigation.{arm.name}:{attribute}", status="pass" if better else "warn",
            title=f"{arm.name} on {attribute}",
            message=(f"Equalized-odds gap {before:.3f} -> {after:.3f}; accuracy {base.accuracy:.3f} -> "
                     f"{arm.accuracy:.3f} (cost {base.accuracy - arm.accuracy:+.3f})."),
            metric=f"{arm.name}:equalized_odds_difference:{attribute}", value=after, threshold=before))
    return tuple(out)
