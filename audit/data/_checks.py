"""Validators shared by the analyzers: model and data agree, labels and scores are well formed.

They live below every analyzer so that fairness and imbalance (and the rest) call one copy without
importing each other.
"""

from __future__ import annotations

import numpy as np

from audit.errors import AuditInputError


def check_model_data(model, data, split: str) -> np.ndarray:
    """Validate that model and data agree; return the split's row indices."""
    model.check_data(data)
    if split not in data.splits or len(data.splits[split]) == 0:
        raise AuditInputError(f"{data.name}: no rows in split {split!r}; have "
                              f"{ {k: len(v) for k, v in data.splits.items()} }.")
    return data.splits[split]


def check_predictions(y_true, y_pred, scores, n_classes: int, where: str) -> tuple[np.ndarray, ...]:
    """Validate labels, predictions and (optional) scores once, at the edge."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    if y_true.ndim != 1 or y_pred.shape != y_true.shape:
        raise AuditInputError(f"{where}: y_true {y_true.shape} and y_pred {y_pred.shape} must be "
                              "1-D arrays of the same length.")
    if len(y_true) == 0:
        raise AuditInputError(f"{where}: no rows to assess.")
    for label, v in (("y_true", y_true), ("y_pred", y_pred)):
        if v.dtype.kind not in "iu" or v.min() < 0 or v.max() >= n_classes:
            raise AuditInputError(f"{where}: {label} must hold integer class ids in [0, {n_classes}) "
                                  f"(the model's classes); got values {np.unique(v)[:10].tolist()}.")
    if scores is not None:
        scores = np.asarray(scores, np.float64)
        if scores.shape != (len(y_true), n_classes):
            raise AuditInputError(f"{where}: scores have shape {scores.shape}; expected "
                                  f"({len(y_true)}, {n_classes}) class probabilities.")
        bad = np.flatnonzero(~np.isfinite(scores).all(axis=1))
        if bad.size:
            raise AuditInputError(f"{where}: the model's scores are NaN or infinite for {bad.size} rows "
                                  f"(first: row {int(bad[0])}); check the model and its inputs.")
        if scores.min() < -1e-6 or scores.max() > 1 + 1e-6 or np.abs(scores.sum(1) - 1).max() > 1e-3:
            raise AuditInputError(f"{where}: scores must be class probabilities in [0, 1] summing to 1 "
                                  "per row (softmax outputs).")
        scores = np.clip(scores, 0.0, 1.0)
        scores = scores / scores.sum(1, keepdims=True)  # float32 softmax rows sum to 1 only roughly
    return y_true.astype(np.int64), y_pred.astype(np.int64), scores
