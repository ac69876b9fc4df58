"""Imbalance mitigations retrained side by side: class weights, random over/under-sampling, SMOTE.

Every arm trains the same architecture with the same settings and seed on a changed training
split (validation and test rows untouched) and is measured on the audited rows. Resamplers are
imbalanced-learn's: `RandomOverSampler`, `RandomUnderSampler`, and SMOTE (Chawla et al. 2002),
as SMOTE-NC on the raw columns of tabular data with categorical columns so that synthetic rows
keep valid one-hot blocks.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping, Sequence

import numpy as np

from audit.errors import AuditInputError
from audit.data._checks import check_model_data
from audit.imbalance._evaluate import class_metrics
from audit.models import retrainer
from audit.results import Finding, MetricSpec, Provenance, Result, timer

METHODS = ("none", "class_weight", "oversample", "undersample", "smote")
COLUMNS = ("accuracy", "balanced_accuracy", "macro_f1", "minority_recall", "minority_precision",
           "minority_pr_auc", "train_rows")


@dataclasses.dataclass(frozen=True, eq=False)
class MitigationComparison(Result):
    """`values[method][column]` for each method (COLUMNS), for the minority class `minority`."""

    SCHEMA = "audit.imbalance.mitigation/1"
    METRICS = (
        MetricSpec("<method>:accuracy", "higher", "Accuracy with <method>",
                   "Share of the test rows classified correctly by the model retrained with <method>."),
        MetricSpec("<method>:balanced_accuracy", "higher", "Balanced accuracy with <method>",
                   "Mean recall over classes of the model retrained with <method>."),
        MetricSpec("<method>:macro_f1", "higher", "Macro F1 with <method>",
                   "Unweighted mean per-class F1 of the model retrained with <method>."),
        MetricSpec("<method>:minority_recall", "higher", "Minority recall with <method>",
                   "Recall of the minority class of the model retrained with <method>."),
        MetricSpec("<method>:minority_precision", "higher", "Minority precision with <method>",
                   "Precision of the minority class of the model retrained with <method>."),
        MetricSpec("<method>:minority_pr_auc", "higher", "Minority PR-AUC with <method>",
                   "Average precision of the minority class's score, model retrained with <method>."),
        MetricSpec("<method>:train_rows", "info", "Training rows with <method>",
                   "Rows the model was trained on after <method> resampled them."),
    )

    methods: tuple[str, ...]
    minority: str
    values: Mapping[str, Mapping[str, float]]
    findings: tuple[Finding, ...]
    provenance: Provenance

    def metrics(self) -> dict[str, float]:
        """"<method>:<column>" for every method and column."""
        return {f"{m}:{c}": float(v) for m in self.methods for c, v in self.values[m].items()}


def _with_train(data, X_train, y_train, raw_train=None):
    """`data` with its training split replaced by the given rows (val/test rows unchanged)."""
    keep = np.concatenate([data.splits.get("val", np.arange(0)), data.splits.get("test", np.arange(0))])
    n = len(y_train)
    sizes = [len(data.splits.get(s, ())) for s in ("val", "test")]
    raw = None
    if data.raw is not None and raw_train is not None:
        raw = np.concatenate([raw_train, data.raw[keep]])
    return dataclasses.replace(
        data, X=np.concatenate([X_train, data.X[keep]]), y=np.concatenate([y_train, data.y[keep]]),
        sensitive={}, raw=raw, splits={"train": np.arange(n), "val": n + np.arange(sizes[0]),
                                       "test": n + sizes[0] + np.arange(sizes[1])},
        name=f"{data.name}[resampled]")


def resample(data, method: str, *, seed: int = 0):
    """`data` with a resampled training split ("oversample", "undersample" or "smote")."""
    from imblearn.over_sampling import SMOTE, SMOTENC, RandomOverSampler
    from imblearn.under_sampling import RandomUnderSampler

    rows = data.splits["train"]
    y = data.y[rows]
    if method in ("oversample", "undersample"):
        sampler = (RandomOverSampler if method == "oversample" else RandomUnderSampler)(random_state=seed)
        sampler.fit_resample(np.arange(len(rows))[:, None], y)
        picked = rows[np.sort(sampler.sample_indices_)] if method == "undersample" else rows[sampler.sample_indices_]
        raw = None if data.raw is None else data.raw[picked]
        return _with_train(data, data.X[picked], data.y[picked], raw)
    k = int(min(5, np.bincount(y)[np.bincount(y) > 0].min() - 1))
    if k < 1:
        raise AuditInputError("SMOTE needs at least two training rows of every class.")
    if data.kind == "tabular" and data.encoding is not None and data.raw is not None:
        categorical = [j for j, c in enumerate(data.encoding.columns) if c.kind == "categorical"]
        sampler = (SMOTENC(categorical_features=categorical, k_neighbors=k, random_state=seed) if categorical
                   else SMOTE(k_neighbors=k, random_state=seed))
        # neighbours on standardised numeric columns (the encoding's training statistics), so a
        # column's units do not decide which rows are near; original rows are kept bit for bit
        shift = np.array([c.mean if c.kind != "categorical" else 0.0 for c in data.encoding.columns])
        scale = np.array([c.std if c.kind != "categorical" and c.std > 0 else 1.0 for c in data.encoding.columns])
        scaled, y_new = sampler.fit_resample((data.raw[rows] - shift) / scale, y)
        raw = np.concatenate([data.raw[rows], scaled[len(rows):] * scale + shift])
        raw[len(rows):, categorical] = np.rint(raw[len(rows):, categorical])
        return _with_train(data, data.encoding.encode(raw), y_new.astype(np.int32), raw)
    flat, y_new = SMOTE(k_neighbors=k, random_state=seed).fit_resample(data.X[rows].reshape(len(rows), -1), y)
    return _with_train(data, flat.reshape(-1, *data.input_shape).astype(np.float32), y_new.astype(np.int32))


def compare_mitigations(model, data, *, methods: Sequence[str] = METHODS, split: str = "test",
                        architecture: Any = None, train_options: Mapping[str, Any] | None = None,
                        seed: int = 0) -> MitigationComparison:
    """Retrain with each imbalance mitigation and report minority recall and PR-AUC side by side.

    "none" retrains without mitigation (the fair baseline: same architecture, settings and seed);
    "class_weight" uses balanced class weights. The architecture is `architecture` (a zoo name or
    an untrained NNX module) or the architecture recorded in `model` (zoo or factory); settings are
    those recorded in `model`'s history, overridden by `train_options`.
    """
    unknown = [m for m in methods if m not in METHODS]
    if unknown or not methods:
        raise AuditInputError(f"unknown imbalance mitigation(s) {unknown}; choose from {list(METHODS)}.")
    with timer() as t:
        rows = check_model_data(model, data, split)
        fit, options = retrainer(model, architecture=architecture, train_options=train_options, seed=seed)
        train_counts = np.bincount(data.y[data.splits["train"]], minlength=data.n_classes)
        minority = int(np.argmin(train_counts))
        values = {}
        for method in methods:
            if method in ("oversample", "undersample", "smote"):
                trained_on = resample(data, method, seed=seed)
                m = fit(trained_on)
            else:
                trained_on = data
                m = fit(data, class_weight="balanced" if method == "class_weight" else None)
            proba = m.predict_proba(data.X[rows]).astype(np.float64)
            per_class, summary, _ = class_metrics(data.y[rows].astype(np.int64), proba.argmax(-1), proba,
                                                  data.n_classes)
            values[method] = {"accuracy": summary["accuracy"], "balanced_accuracy": summary["balanced_accuracy"],
                              "macro_f1": summary["macro_f1"], "minority_recall": float(per_class["recall"][minority]),
                              "minority_precision": float(per_class["precision"][minority]),
                              "minority_pr_auc": float(per_class["pr_auc"][minority]),
                              "train_rows": float(len(trained_on.splits["train"]))}
        findings = _findings(values, data.class_names[minority])
    settings = {"methods": list(methods), "split": split, "train_options": options}
    return MitigationComparison(methods=tuple(methods), minority=data.class_names[minority], values=values,
                                findings=findings,
                                provenance=Provenance(method="imbalance.compare_mitigations", settings=settings,
                                                      seed=seed, seconds=t[0]))


def _findings(values, minority: str) -> tuple[Finding, ...]:
    if "none" not in values:
        return ()
    base = values["none"]["minority_recall"]
    out = []
    for method, v in values.items():
        if method == "none":
            continue
        gain = v["minority_recall"] - base
        out.append(Finding(
            id=f"imbalance.mitigation.{method}", status="pass" if gain > 0 else "warn",
            title=f"{method} for {minority!r}",
            message=(f"Recall of {minority!r} {base:.3f} -> {v['minority_recall']:.3f}, PR-AUC "
                     f"{values['none']['minority_pr_auc']:.3f} -> {v['minority_pr_auc']:.3f}, accuracy "
                     f"{values['none']['accuracy']:.3f} -> {v['accuracy']:.3f}."),
            metric=f"{method}:minority_recall", value=v["minority_recall"], threshold=base))
    return tuple(out)
