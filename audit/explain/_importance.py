"""Permutation importance with intervals (Breiman 2001; Fisher, Rudin & Dominici 2019).

The importance of a feature is how much a score gets worse when that feature's column (a raw
column's whole one-hot block, or an image patch) is shuffled across rows, breaking its link
with the label. Repeated shuffles give a mean and a t-interval; the interval covers the
randomness of the shuffles on this evaluation set (not the sampling of the set itself).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Sequence

import numpy as np

from audit.errors import AuditInputError
from audit.explain._attribution import probabilities
from audit.results import Finding, Provenance, Result, timer

SCORES = ("log_loss", "accuracy", "balanced_accuracy")
MAX_CELLS = 1 << 23  # input values per model call


def _loss(metric: str, proba: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Loss (lower is better) over the last-but-one axis: proba (..., n, C), y (n,)."""
    if metric == "log_loss":
        p = np.take_along_axis(proba, np.broadcast_to(y[:, None], proba.shape[:-1] + (1,)), axis=-1)[..., 0]
        return -np.log(np.clip(p, 1e-15, 1.0)).mean(axis=-1)
    correct = proba.argmax(axis=-1) == y
    if metric == "accuracy":
        return 1.0 - correct.mean(axis=-1)
    classes = np.unique(y)
    recalls = [correct[..., y == c].mean(axis=-1) for c in classes]
    return 1.0 - np.mean(recalls, axis=0)


@dataclasses.dataclass(frozen=True, eq=False)
class PermutationImportance(Result):
    """Increase of the loss (`metric`; for accuracy, the drop in accuracy) per feature and
    shuffle: `drops` (features, repeats); `baseline` the unshuffled score."""

    SCHEMA = "audit.explain.permutation/1"
    LEGACY_SCHEMAS = (1,)  # same fields; files written before the codec read as they are

    feature_names: tuple[str, ...]
    drops: np.ndarray
    baseline: float
    metric: str
    confidence: float
    provenance: Provenance

    @property
    def mean(self) -> np.ndarray:
        return self.drops.mean(axis=1)

    @property
    def std(self) -> np.ndarray:
        return self.drops.std(axis=1, ddof=1) if self.drops.shape[1] > 1 else np.zeros(len(self.drops))

    @property
    def interval(self) -> tuple[np.ndarray, np.ndarray]:
        """Two-sided t-interval of the mean at `confidence` (over the repeats)."""
        from scipy.special import stdtrit  # Student t quantile (lighter than scipy.stats)

        r = self.drops.shape[1]
        half = (stdtrit(r - 1, 0.5 + self.confidence / 2) * self.std / np.sqrt(r)) if r > 1 else np.zeros(len(self.drops))
        return self.mean - half, self.mean + half

    def ranking(self) -> list[str]:
        return [self.feature_names[i] for i in np.argsort(-self.mean, kind="stable")]

    def metrics(self) -> dict[str, float]:
        out = {f"permutation_importance:{name}": float(v) for name, v in zip(self.feature_names, self.mean)}
        out["permutation_baseline_score"] = float(self.baseline)
        return out

    @property
    def findings(self) -> tuple[Finding, ...]:
        low, _ = self.interval
        used = int((low > 0).sum())
        status = "pass" if used else "warn"
        msg = (f"{used} of {len(self.feature_names)} features make the {self.metric} worse when "
               "shuffled (interval above zero)" if used else
               f"no feature changes the {self.metric} reliably when shuffled; the model may ignore its inputs")
        return (Finding(id="explain.permutation.signal", status=status, title="Permutation importance",
                        message=msg, metric=None, value=float(used), threshold=1.0),)


def permutation_importance(model, X: Any, y: Any, *, groups: Sequence[Sequence[int]] | None = None,
                           feature_names: Sequence[str] | None = None, metric: str = "log_loss",
                           n_repeats: int = 10, confidence: float = 0.95,
                           seed: int = 0) -> PermutationImportance:
    """Permutation importance of each feature (group of flat inputs) of `model` on (X, y).

    groups: flat input indices per feature (default: one per input); use
    `data.feature_groups` for raw tabular columns. metric: "log_loss" (default; the increase
    in loss), "accuracy" or "balanced_accuracy" (the drop). All shuffles of all features are
    evaluated in a few large batched calls.
    """
    if metric not in SCORES:
        raise AuditInputError(f"metric {metric!r} must be one of {SCORES}.")
    X = np.asarray(X, np.float32)
    y = np.asarray(y)
    if X.shape[1:] != tuple(model.input_shape) or y.shape != (len(X),) or len(X) < 2:
        raise AuditInputError(f"X {X.shape} and y {y.shape} must be (n, {model.input_shape}) and (n,) "
                              "with n >= 2.")
    if y.dtype.kind not in "iu" or y.min() < 0 or y.max() >= model.n_classes:
        raise AuditInputError(f"y must hold class ids in [0, {model.n_classes}).")
    if int(n_repeats) < 1 or not 0 < confidence < 1:
        raise AuditInputError(f"n_repeats must be >= 1 and confidence in (0, 1); got {n_repeats}, {confidence}.")
    n, D = len(X), int(np.prod(model.input_shape))
    groups = [(i,) for i in range(D)] if groups is None else [tuple(int(i) for i in g) for g in groups]
    if any(not g or min(g) < 0 or max(g) >= D for g in groups):
        raise AuditInputError(f"each group must list flat input indices in [0, {D}).")
    names = tuple(feature_names) if feature_names is not None else tuple(f"x{j}" for j in range(len(groups)))
    if len(names) != len(groups):
        raise AuditInputError(f"{len(names)} feature names for {len(groups)} groups.")
    R = int(n_repeats)
    flat = X.reshape(n, D)
    with timer() as clock:
        base = float(_loss(metric, probabilities(model, X), y))
        rng = np.random.default_rng(seed)
        perms = np.argsort(rng.random((len(groups), R, n)), axis=2)
        drops = np.zeros((len(groups), R))
        per = max(1, MAX_CELLS // (R * n * D))
        for f0 in range(0, len(groups), per):  # chunks of features, all repeats per call
            fs = range(f0, min(f0 + per, len(groups)))
            mask = np.zeros((len(fs), 1, 1, D), bool)
            for i, f in enumerate(fs):
                mask[i, 0, 0, list(groups[f])] = True
            shuffled = np.where(mask, flat[perms[f0:f0 + len(fs)]], flat[None, None])
            proba = probabilities(model, shuffled.reshape((-1,) + tuple(model.input_shape)))
            losses = _loss(metric, proba.reshape(len(fs), R, n, -1), y)
            drops[f0:f0 + len(fs)] = losses - base
    score = base if metric == "log_loss" else 1.0 - base
    settings = {"metric": metric, "n_repeats": R, "confidence": confidence, "rows": n}
    return PermutationImportance(feature_names=names, drops=drops, baseline=score, metric=metric,
                                 confidence=float(confidence),
                                 provenance=Provenance("permutation_importance", settings, seed, clock[0]))
