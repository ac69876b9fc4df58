"""Data drift: has the data the model now scores moved away from its training data?

Per raw column: Kolmogorov-Smirnov (numeric) or chi-squared (categorical) tests, Holm-corrected for
the number of columns, plus the population stability index (PSI, 10 reference-quantile bins).
Multivariate: maximum mean discrepancy (RBF kernel, median-heuristic bandwidth) on the model's
penultimate features with a permutation p-value. Then whether the model's outputs moved with the
data (KS test on the favourable-class score / chi-squared on predicted classes) and, when the
current rows carry labels, accuracy per sensitive group before and after.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any, Callable, Mapping

import numpy as np
import pandas as pd
from scipy import stats

from audit.errors import AuditInputError
from audit.ood._features import feature_function
from audit.results import Finding, MetricSpec, Provenance, Result, timer


@dataclasses.dataclass(frozen=True, eq=False)
class ColumnDrift(Result):
    """One raw column: the test, its statistic, raw and Holm-adjusted p-values, PSI."""

    column: str
    test: str
    statistic: float
    p_value: float
    p_adjusted: float
    psi: float


@dataclasses.dataclass(frozen=True, eq=False)
class DriftReport(Result):
    """Training rows (reference) against the current rows the config names."""

    SCHEMA = "audit.drift/1"
    METRICS = (
        MetricSpec("drifted_columns", "lower", "Columns that drifted",
                   "Raw columns whose distribution differs from the training rows (Holm-adjusted p < alpha)."),
        MetricSpec("max_psi", "lower", "Largest population stability index",
                   "PSI of the most shifted raw column (above 0.25 is usually read as a major shift)."),
        MetricSpec("psi:<column>", "lower", "PSI of <column>", "Population stability index of the column."),
        MetricSpec("mmd", "lower", "MMD on model features",
                   "Maximum mean discrepancy between training and current rows in the model's feature space."),
        MetricSpec("mmd_p_value", "info", "MMD permutation p-value",
                   "Share of label permutations with an MMD at least as large (small: the feature distributions differ)."),
        MetricSpec("prediction_shift_p_value", "info", "Prediction shift p-value",
                   "p-value of the test that the model's outputs have the same distribution on both row sets."),
        MetricSpec("accuracy_change", "higher", "Accuracy change",
                   "Accuracy on the current rows minus accuracy on the reference test rows (labelled current rows only)."),
        MetricSpec("accuracy_change:<attribute>=<group>", "higher", "Accuracy change, <attribute> = <group>",
                   "The same for one sensitive group large enough to judge."),
    )

    current: str
    n_reference: int
    n_current: int
    alpha: float
    columns: tuple[ColumnDrift, ...]
    mmd: float
    mmd_p_value: float
    prediction_test: str
    prediction_p_value: float
    accuracy_reference: float | None
    accuracy_current: float | None
    group_accuracy: dict[str, dict[str, tuple[float, float, int]]]
    findings: tuple[Finding, ...]
    provenance: Provenance

    @property
    def drifted(self) -> tuple[str, ...]:
        return tuple(c.column for c in self.columns if c.p_adjusted < self.alpha)

    def metrics(self) -> dict[str, float]:
        out = {"drifted_columns": float(len(self.drifted)), "mmd": self.mmd, "mmd_p_value": self.mmd_p_value,
               "prediction_shift_p_value": self.prediction_p_value}
        if self.columns:
            out["max_psi"] = max(c.psi for c in self.columns)
            out.update({f"psi:{c.column}": c.psi for c in self.columns})
        if self.accuracy_current is not None and self.accuracy_reference is not None:
            out["accuracy_change"] = self.accuracy_current - self.accuracy_reference
        for attribute, groups in self.group_accuracy.items():
            for group, (before, after, _) in groups.items():
                out[f"accuracy_change:{attribute}={group}"] = after - before
        return out


def psi(reference: np.ndarray, current: np.ndarray, *, bins: int = 10, categorical: bool = False) -> float:
    """Population stability index: sum (c - r) ln(c / r) over bins (reference quantiles, or levels)."""
    if categorical:
        levels = np.union1d(reference, current)
        r = np.array([np.mean(reference == v) for v in levels])
        c = np.array([np.mean(current == v) for v in levels])
    else:
        edges = np.unique(np.quantile(reference, np.linspace(0, 1, bins + 1))[1:-1])
        r = np.bincount(np.searchsorted(edges, reference, side="right"), minlength=len(edges) + 1) / len(reference)
        c = np.bincount(np.searchsorted(edges, current, side="right"), minlength=len(edges) + 1) / len(current)
    r, c = np.maximum(r, 1e-4), np.maximum(c, 1e-4)
    return float(np.sum((c - r) * np.log(c / r)))


def holm(p: np.ndarray) -> np.ndarray:
    """Holm-Bonferroni adjusted p-values (step-down, monotone, capped at 1)."""
    p = np.asarray(p, np.float64)
    order = np.argsort(p)
    adjusted = np.maximum.accumulate((len(p) - np.arange(len(p))) * p[order])
    out = np.empty_like(p)
    out[order] = np.minimum(adjusted, 1.0)
    return out


def mmd_test(a: np.ndarray, b: np.ndarray, *, n_permutations: int, rng: np.random.Generator) -> tuple[float, float]:
    """(MMD^2 biased estimate, permutation p-value) with an RBF kernel at the median pairwise distance."""
    z = np.concatenate([a, b]).astype(np.float64)
    sq = np.sum(z * z, axis=1)
    d2 = np.maximum(sq[:, None] + sq[None] - 2 * z @ z.T, 0.0)
    bandwidth = np.median(d2[np.triu_indices(len(z), 1)]) or 1.0
    k = np.exp(-d2 / bandwidth)
    labels = np.r_[np.ones(len(a)) / len(a), -np.ones(len(b)) / len(b)]
    w = np.stack([labels] + [rng.permutation(labels) for _ in range(n_permutations)])
    values = np.einsum("pi,ij,pj->p", w, k, w)  # w^T K w for every permutation at once
    return float(values[0]), float((1 + np.sum(values[1:] >= values[0])) / (1 + n_permutations))


def _raw_frame(data) -> pd.DataFrame:
    """A tabular Dataset's raw columns as the user's data has them (categoricals by level name)."""
    frame = {}
    for j, c in enumerate(data.encoding.columns):
        values = data.raw[:, j]
        frame[c.name] = np.asarray(c.categories, dtype=object)[values.astype(int)] if c.kind == "categorical" else values
    return pd.DataFrame(frame)


def _load_current(data, current: Mapping[str, Any] | None, seed: int):
    """(name, X, raw matrix or None, labels or None, sensitive dict) of the current rows, in the reference encoding."""
    if current is None:
        test = data.test
        return "the test split", test.X, test.raw, test.y, dict(test.sensitive)
    from audit.data import load

    if "dataset" in current:
        other = load(current["dataset"], seed=int(current.get("seed", seed)), **dict(current.get("options") or {}))
        if data.kind == "image":
            if other.input_shape != data.input_shape:
                raise AuditInputError(f"drift: current data {current['dataset']!r} has inputs {other.input_shape}, "
                                      f"the model takes {data.input_shape}.")
            return current["dataset"], other.X, None, other.y, dict(other.sensitive)
        frame, labels = _raw_frame(other), other.y if tuple(other.class_names) == tuple(data.class_names) else None
        name, sensitive = current["dataset"], dict(other.sensitive)
    elif "csv" in current:
        path = os.fspath(current["csv"])
        if not os.path.isfile(path):
            raise AuditInputError(f"drift: current CSV {path!r} does not exist (drift.current.csv).")
        frame = pd.read_csv(path)
        target = current.get("target")
        labels = None
        if target is not None:
            if target not in frame:
                raise AuditInputError(f"drift: the current CSV has no target column {target!r}.")
            index = {c: i for i, c in enumerate(data.class_names)}
            values = frame[target].astype(str)
            unknown = sorted(set(values) - set(index))
            if unknown:
                raise AuditInputError(f"drift: target values {unknown[:5]} are not the model's classes {list(index)}.")
            labels = values.map(index).to_numpy()
        sensitive = {a: frame[a].to_numpy() for a in data.sensitive if a in frame}
        name = os.path.basename(path)
    else:
        raise AuditInputError("drift.current must name a bundled dataset ({dataset: credit, options: {...}}) or a "
                              "CSV file ({csv: path, target: column}).")
    if data.kind != "tabular":
        raise AuditInputError("drift: image data compares against a bundled image dataset (drift.current.dataset).")
    missing = [c for c in data.encoding.raw_names if c not in frame]
    if missing:
        raise AuditInputError(f"drift: the current rows lack the model's raw columns {missing}.")
    raw = data.encoding.raw_matrix(frame)
    return name, data.encoding.encode(raw), raw, labels, sensitive


def evaluate(model, data, *, current: Mapping[str, Any] | None = None, alpha: float = 0.05,
             n_permutations: int = 200, max_rows: int = 1000, min_group_size: int = 30,
             features: str | Callable | None = None, seed: int = 0) -> DriftReport:
    """Compare the training rows with `current` (default: the test split, a no-drift baseline).
    The multivariate test compares the model's `features` (as in `audit.ood.feature_function`)."""
    if not 0 < alpha < 1:
        raise AuditInputError(f"drift.alpha must be between 0 and 1, got {alpha!r}.")
    for key, value, low in (("n_permutations", n_permutations, 1), ("max_rows", max_rows, 10),
                            ("min_group_size", min_group_size, 1)):
        if not isinstance(value, int) or isinstance(value, bool) or value < low:
            raise AuditInputError(f"drift.{key} must be an integer >= {low}, got {value!r}.")
    rng = np.random.default_rng(seed)
    with timer() as t:
        name, x_cur, raw_cur, y_cur, sens_cur = _load_current(data, current, seed)
        ref = data.train
        columns = []
        if raw_cur is not None:
            p_values, rows = [], []
            for j, c in enumerate(data.encoding.columns):
                r, k = ref.raw[:, j], raw_cur[:, j]
                if c.kind == "categorical":
                    levels = np.union1d(r, k)
                    table = np.array([[np.sum(r == v) for v in levels], [np.sum(k == v) for v in levels]])
                    statistic, p, _, _ = stats.chi2_contingency(table) if len(levels) > 1 else (0.0, 1.0, 0, 0)
                    test = "chi-squared"
                else:
                    statistic, p = stats.ks_2samp(r, k)
                    test = "Kolmogorov-Smirnov"
                p_values.append(float(p))
                rows.append((c.name, test, float(statistic), psi(r, k, categorical=c.kind == "categorical")))
            adjusted = holm(np.array(p_values))
            columns = [ColumnDrift(n, tst, s, p, pa, ps) for (n, tst, s, ps), p, pa in zip(rows, p_values, adjusted)]
        feature_of, _ = feature_function(model, features=features)
        a_rows = rng.choice(len(ref), size=min(max_rows, len(ref)), replace=False)
        b_rows = rng.choice(len(x_cur), size=min(max_rows, len(x_cur)), replace=False)
        mmd, mmd_p = mmd_test(feature_of(ref.X[a_rows]), feature_of(x_cur[b_rows]), n_permutations=n_permutations, rng=rng)
        proba_ref, proba_cur = model.predict_proba(ref.X), model.predict_proba(x_cur)
        if model.n_classes == 2:
            prediction_test, prediction_p = "Kolmogorov-Smirnov on P(class 1)", float(
                stats.ks_2samp(proba_ref[:, 1], proba_cur[:, 1]).pvalue)
        else:
            counts = np.stack([np.bincount(proba_ref.argmax(1), minlength=model.n_classes),
                               np.bincount(proba_cur.argmax(1), minlength=model.n_classes)])
            counts = counts[:, counts.sum(0) > 0]
            prediction_test = "chi-squared on predicted classes"
            prediction_p = float(stats.chi2_contingency(counts)[1]) if counts.shape[1] > 1 else 1.0
        acc_ref = acc_cur = None
        groups: dict[str, dict[str, tuple[float, float, int]]] = {}
        if y_cur is not None:
            test = data.test
            correct_ref = model.predict(test.X) == test.y
            correct_cur = proba_cur.argmax(1) == y_cur
            acc_ref, acc_cur = float(correct_ref.mean()), float(correct_cur.mean())
            for attribute, values in sens_cur.items():
                if attribute not in test.sensitive:
                    continue
                before_values, after_values = np.asarray(test.sensitive[attribute]), np.asarray(values)
                if before_values.dtype.kind in "fiu" and len(np.unique(before_values)) > 10:
                    continue  # continuous attributes are binned by the fairness section, not here
                for g in np.unique(after_values.astype(str)):
                    b_mask, a_mask = before_values.astype(str) == g, after_values.astype(str) == g
                    if b_mask.sum() >= min_group_size and a_mask.sum() >= min_group_size:
                        groups.setdefault(attribute, {})[str(g)] = (float(correct_ref[b_mask].mean()),
                                                                     float(correct_cur[a_mask].mean()), int(a_mask.sum()))
    report = DriftReport(current=name, n_reference=len(ref), n_current=len(x_cur), alpha=alpha, columns=tuple(columns),
                         mmd=mmd, mmd_p_value=mmd_p, prediction_test=prediction_test, prediction_p_value=prediction_p,
                         accuracy_reference=acc_ref, accuracy_current=acc_cur, group_accuracy=groups, findings=(),
                         provenance=Provenance("drift", {"current": dict(current or {}), "alpha": alpha,
                                                         "n_permutations": n_permutations, "max_rows": max_rows},
                                               seed=seed, seconds=t[0]))
    return dataclasses.replace(report, findings=_findings(report))


def _findings(r: DriftReport) -> tuple[Finding, ...]:
    out = []
    moved = sorted((c for c in r.columns if c.p_adjusted < r.alpha), key=lambda c: c.p_adjusted)
    if moved:
        out.append(Finding("columns", "warn", f"{len(moved)} column(s) drifted",
                           f"Against the training rows, {r.current} differs on " + ", ".join(
                               f"{c.column} (PSI {c.psi:.2f}, adjusted p {c.p_adjusted:.1g})" for c in moved[:6])
                           + f" ({'Holm-adjusted' if len(r.columns) > 1 else ''} p < {r.alpha}).",
                           metric="drifted_columns", value=float(len(moved)), threshold=0.0))
    elif r.columns:
        out.append(Finding("columns", "pass", "No column drifted",
                           f"No raw column of {r.current} differs from the training rows (Holm-adjusted p >= {r.alpha} "
                           f"for all {len(r.columns)}).", metric="drifted_columns", value=0.0, threshold=0.0))
    if r.mmd_p_value < r.alpha:
        out.append(Finding("features", "warn", "The model sees different inputs",
                           f"In the model's feature space the two row sets differ (MMD permutation p = "
                           f"{r.mmd_p_value:.3g} < {r.alpha}).", metric="mmd_p_value", value=r.mmd_p_value,
                           threshold=r.alpha))
    if r.prediction_p_value < r.alpha:
        out.append(Finding("predictions", "warn", "The model's outputs moved",
                           f"{r.prediction_test}: p = {r.prediction_p_value:.3g} < {r.alpha}: the model scores "
                           f"{r.current} differently from its training rows.", metric="prediction_shift_p_value",
                           value=r.prediction_p_value, threshold=r.alpha))
    if r.accuracy_current is not None and r.accuracy_reference is not None:
        change = r.accuracy_current - r.accuracy_reference
        worst = min(((a, g, v[1] - v[0]) for a, gs in r.group_accuracy.items() for g, v in gs.items()),
                    key=lambda t: t[2], default=None)
        extra = f" Largest group drop: {worst[0]} = {worst[1]} ({worst[2]:+.3f})." if worst and worst[2] < 0 else ""
        out.append(Finding("accuracy", "warn" if change < -0.02 else "pass", "Accuracy on the current rows",
                           f"Accuracy {r.accuracy_current:.3f} on {r.current} vs {r.accuracy_reference:.3f} on the "
                           f"test split ({change:+.3f}; warn below -0.02).{extra}", metric="accuracy_change",
                           value=change, threshold=-0.02))
    return tuple(out)
