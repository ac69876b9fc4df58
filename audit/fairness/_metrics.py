"""Fairness metrics with fairlearn's and scikit-learn's call shape, for arrays a user already has.

`f(y_true, y_pred, *, sensitive_features, method="between_groups", sample_weight=None,
pos_label=1)`: the same numbers as `fairlearn.metrics.<same name>` (tested against it), plus
`pos_label` for string labels ("yes"/"no"). `sensitive_features` is one column (array, list or
Series) or several (a DataFrame, a 2-D array or a dict of columns), intersected row by row as
fairlearn does. `by_group` returns the per-group table as a pandas DataFrame.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

import numpy as np
import pandas as pd

from audit.errors import AuditInputError

METHODS = ("between_groups", "to_overall")


def _binary(values: Any, pos_label: Any, name: str, n: int | None = None) -> np.ndarray:
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise AuditInputError(f"{name} must be one label per row (1-D), got shape {arr.shape}.")
    if n is not None and len(arr) != n:
        raise AuditInputError(f"{name} has {len(arr)} rows; y_true has {n}.")
    labels = set(np.unique(arr).tolist())
    if arr.dtype.kind in "OUS" and pos_label not in labels and labels:
        raise AuditInputError(f"{name} holds labels {sorted(map(str, labels))}; pass pos_label= naming the "
                              "positive (favourable) one, e.g. pos_label='yes'.")
    return (arr == pos_label).astype(np.float64)


def _groups(sensitive_features: Any, n: int) -> tuple[np.ndarray, list[str], list[str]]:
    """Group code per row (one code per combination for several columns), the group labels
    (values joined by ',') indexed by code, and the column names."""
    if sensitive_features is None:
        raise AuditInputError("sensitive_features is required: one column of group labels per row, "
                              "or a DataFrame of several (intersected).")
    if isinstance(sensitive_features, Mapping):
        sensitive_features = pd.DataFrame(dict(sensitive_features))
    if isinstance(sensitive_features, pd.Series):
        columns, names = [sensitive_features.to_numpy()], [str(sensitive_features.name or "sensitive_feature_0")]
    elif isinstance(sensitive_features, pd.DataFrame):
        columns = [sensitive_features.iloc[:, j].to_numpy() for j in range(sensitive_features.shape[1])]
        names = [str(c) for c in sensitive_features.columns]
    else:
        arr = np.asarray(sensitive_features)
        if arr.ndim == 1:
            columns, names = [arr], ["sensitive_feature_0"]
        elif arr.ndim == 2:
            columns, names = [arr[:, j] for j in range(arr.shape[1])], [f"sensitive_feature_{j}" for j in range(arr.shape[1])]
        else:
            raise AuditInputError(f"sensitive_features has shape {arr.shape}; give one or two dimensions.")
    for c in columns:
        if len(c) != n:
            raise AuditInputError(f"sensitive_features has {len(c)} rows; y_true has {n}.")
    codes = np.zeros(n, dtype=np.int64)
    levels: list[np.ndarray] = []
    for c in columns:  # factorize each column, then combine the codes (no per-row Python loop)
        try:  # hashing, not sorting rows
            inverse, values = pd.factorize(c, sort=True)
        except TypeError:  # mixed types that do not sort: compare them as text
            inverse, values = pd.factorize(np.asarray(c).astype(str), sort=True)
        values = np.asarray(values)
        codes = codes * len(values) + inverse
        levels.append(values)
    used, codes = np.unique(codes, return_inverse=True)
    labels = []
    for combined in used:
        parts = []
        for values in reversed(levels):
            combined, k = divmod(int(combined), len(values))
            parts.append(str(values[k]))
        labels.append(",".join(reversed(parts)))
    return codes, labels, names


def _rates(y_true: np.ndarray, y_pred: np.ndarray, w: np.ndarray, codes: np.ndarray, k: int) -> dict[str, np.ndarray]:
    """Weighted rates per group code (k groups) in one pass each (np.bincount), and overall
    (the last entry)."""
    def sums(values):
        per = np.bincount(codes, weights=values, minlength=k)
        return np.append(per, values.sum())

    def ratio(num, den):
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(den > 0, num / np.where(den > 0, den, 1), np.nan)
    neg = 1.0 - y_true
    total = sums(w)
    return {"selection_rate": ratio(sums(w * y_pred), total),
            "true_positive_rate": ratio(sums(w * y_pred * y_true), sums(w * y_true)),
            "false_positive_rate": ratio(sums(w * y_pred * neg), sums(w * neg)),
            "accuracy": ratio(sums(w * (y_pred == y_true)), total),
            "count": np.append(np.bincount(codes, minlength=k), len(codes)).astype(np.float64)}


def _prepare(y_true, y_pred, sensitive_features, sample_weight, pos_label):
    t = _binary(y_true, pos_label, "y_true")
    p = _binary(y_pred, pos_label, "y_pred", len(t))
    w = np.ones(len(t)) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
    if w.shape != t.shape or not np.all(np.isfinite(w)) or (w < 0).any():
        raise AuditInputError(f"sample_weight must be {len(t)} finite non-negative numbers.")
    codes, labels, names = _groups(sensitive_features, len(t))
    return t, p, w, codes, labels, names


def by_group(y_true, y_pred, *, sensitive_features, sample_weight=None, pos_label=1) -> pd.DataFrame:
    """Selection rate, TPR, FPR, accuracy and row count per group (rows: groups; for several
    sensitive columns, their intersections), like fairlearn's `MetricFrame.by_group`."""
    t, p, w, codes, labels, names = _prepare(y_true, y_pred, sensitive_features, sample_weight, pos_label)
    rates = _rates(t, p, w, codes, len(labels))
    table = pd.DataFrame({m: v[:-1] for m, v in rates.items()}, index=pd.Index(labels, name=",".join(names)))
    table["count"] = table["count"].astype(int)
    return table


def _aggregate(metric: str, kind: str) -> Callable[..., float]:
    def fn(y_true, y_pred, *, sensitive_features, method: str = "between_groups", sample_weight=None,
           pos_label=1) -> float:
        if method not in METHODS:
            raise AuditInputError(f"method={method!r} must be one of {list(METHODS)}.")
        t, p, w, codes, labels, _ = _prepare(y_true, y_pred, sensitive_features, sample_weight, pos_label)
        metrics = [metric] if metric != "equalized_odds" else ["true_positive_rate", "false_positive_rate"]
        rates = _rates(t, p, w, codes, len(labels))
        results = []
        for m in metrics:
            values, overall = rates[m][:-1], rates[m][-1]
            if method == "between_groups":
                hi, lo = np.nanmax(values), np.nanmin(values)
                results.append(hi - lo if kind == "difference" else (lo / hi if hi > 0 else float("nan")))
            else:
                results.append(np.nanmax(np.abs(values - overall)) if kind == "difference" else
                               np.nanmin(np.where(values > overall, overall / values, values / overall)))
        return float(max(results) if kind == "difference" else min(results))
    name = {"selection_rate": "demographic_parity", "true_positive_rate": "equal_opportunity"}.get(metric, metric)
    fn.__name__ = f"{name}_{kind}"
    fn.__doc__ = (f"fairlearn's `{fn.__name__}`: the {kind} of the group "
                  f"{'TPR and FPR (the worse of the two)' if metric == 'equalized_odds' else metric.replace('_', ' ')} "
                  f"({'largest minus smallest' if kind == 'difference' else 'smallest over largest'}, or against the "
                  "overall value with method='to_overall'); `pos_label` names the positive label.")
    return fn


demographic_parity_difference = _aggregate("selection_rate", "difference")
demographic_parity_ratio = _aggregate("selection_rate", "ratio")
equalized_odds_difference = _aggregate("equalized_odds", "difference")
equalized_odds_ratio = _aggregate("equalized_odds", "ratio")
equal_opportunity_difference = _aggregate("true_positive_rate", "difference")
equal_opportunity_ratio = _aggregate("true_positive_rate", "ratio")
