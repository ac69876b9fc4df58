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


def _groups(sensitive_features: Any, n: int) -> tuple[np.ndarray, list[str]]:
    """Group label per row (tuples joined for several columns) and the column names."""
    if sensitive_features is None:
        raise AuditInputError("sensitive_features is required: one column of group labels per row, "
                              "or a DataFrame of several (intersected).")
    if isinstance(sensitive_features, Mapping):
        sensitive_features = pd.DataFrame(dict(sensitive_features))
    if isinstance(sensitive_features, pd.Series):
        columns, names = [sensitive_features.to_numpy()], [str(sensitive_features.name or "sensitive_feature_0")]
    elif isinstance(sensitive_features, pd.DataFrame):
        columns = [sensitive_features[c].to_numpy() for c in sensitive_features.columns]
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
    if len(columns) == 1:
        return np.asarray(columns[0]).astype(str), names
    return np.array([",".join(map(str, row)) for row in zip(*columns)]), names


def _rates(y_true: np.ndarray, y_pred: np.ndarray, w: np.ndarray) -> dict[str, float]:
    def ratio(num, den):
        return float(num / den) if den > 0 else float("nan")
    pos, neg = y_true == 1, y_true == 0
    return {"selection_rate": ratio((w * y_pred).sum(), w.sum()),
            "true_positive_rate": ratio((w * y_pred * pos).sum(), (w * pos).sum()),
            "false_positive_rate": ratio((w * y_pred * neg).sum(), (w * neg).sum()),
            "accuracy": ratio((w * (y_pred == y_true)).sum(), w.sum()),
            "count": float(len(y_true))}


def _prepare(y_true, y_pred, sensitive_features, sample_weight, pos_label):
    t = _binary(y_true, pos_label, "y_true")
    p = _binary(y_pred, pos_label, "y_pred", len(t))
    w = np.ones(len(t)) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
    if w.shape != t.shape or not np.all(np.isfinite(w)) or (w < 0).any():
        raise AuditInputError(f"sample_weight must be {len(t)} finite non-negative numbers.")
    groups, names = _groups(sensitive_features, len(t))
    return t, p, w, groups, names


def by_group(y_true, y_pred, *, sensitive_features, sample_weight=None, pos_label=1) -> pd.DataFrame:
    """Selection rate, TPR, FPR, accuracy and row count per group (rows: groups; for several
    sensitive columns, their intersections), like fairlearn's `MetricFrame.by_group`."""
    t, p, w, groups, names = _prepare(y_true, y_pred, sensitive_features, sample_weight, pos_label)
    levels = sorted(np.unique(groups))
    table = pd.DataFrame([_rates(t[groups == g], p[groups == g], w[groups == g]) for g in levels],
                         index=pd.Index(levels, name=",".join(names)))
    table["count"] = table["count"].astype(int)
    return table


def _aggregate(metric: str, kind: str) -> Callable[..., float]:
    def fn(y_true, y_pred, *, sensitive_features, method: str = "between_groups", sample_weight=None,
           pos_label=1) -> float:
        if method not in METHODS:
            raise AuditInputError(f"method={method!r} must be one of {list(METHODS)}.")
        t, p, w, groups, _ = _prepare(y_true, y_pred, sensitive_features, sample_weight, pos_label)
        metrics = [metric] if metric != "equalized_odds" else ["true_positive_rate", "false_positive_rate"]
        results = []
        for m in metrics:
            values = np.array([_rates(t[groups == g], p[groups == g], w[groups == g])[m] for g in np.unique(groups)])
            if method == "between_groups":
                hi, lo = np.nanmax(values), np.nanmin(values)
                results.append(hi - lo if kind == "difference" else (lo / hi if hi > 0 else float("nan")))
            else:
                overall = _rates(t, p, w)[m]
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
