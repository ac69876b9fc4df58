"""Explanation quality: faithfulness curves, agreement between methods, stability under noise.

- Deletion / insertion curves (Petsiuk et al. 2018, "RISE"; Samek et al. 2017): remove (or
  insert) features in order of attribution and follow the model's probability of the explained
  class. A faithful attribution makes the deletion curve fall fast (low AUC) and the insertion
  curve rise fast (high AUC). A random order is measured alongside as the reference.
- Rank agreement between two methods: Spearman correlation of the attributions and overlap of
  their top-k features by magnitude.
- Stability (Alvarez-Melis & Jaakkola 2018, "On the robustness of interpretability methods";
  Yeh et al. 2019 "max-sensitivity"): explain Gaussian-noised copies of each input and report
  the rank correlation with the original attribution and the relative L2 change.
"""

from __future__ import annotations

import dataclasses
import warnings
from typing import Any, Callable, Sequence

import numpy as np

from audit.errors import AuditInputError
from audit.explain._attribution import probabilities
from audit.explain._saliency import targets
from audit.results import Result

MAX_CELLS = 1 << 22  # input values evaluated per model call when building curves


@dataclasses.dataclass(frozen=True, eq=False)
class Curves(Result):
    """Deletion and insertion curves: probability of the explained class (n, steps + 1) after
    removing / inserting the top `fractions` of features; AUCs are trapezoid means over [0, 1].
    `*_random` are the same curves for one seeded random order per example (the reference)."""

    fractions: np.ndarray
    deletion: np.ndarray
    insertion: np.ndarray
    deletion_random: np.ndarray
    insertion_random: np.ndarray

    @staticmethod
    def _auc(curve: np.ndarray, fractions: np.ndarray) -> np.ndarray:
        return np.trapezoid(curve, fractions, axis=-1)

    @property
    def deletion_auc(self) -> np.ndarray:
        return self._auc(self.deletion, self.fractions)

    @property
    def insertion_auc(self) -> np.ndarray:
        return self._auc(self.insertion, self.fractions)

    @property
    def deletion_auc_random(self) -> np.ndarray:
        return self._auc(self.deletion_random, self.fractions)

    @property
    def insertion_auc_random(self) -> np.ndarray:
        return self._auc(self.insertion_random, self.fractions)


def _units(groups: Sequence[Sequence[int]] | None, n_units: int, n_inputs: int) -> np.ndarray:
    """(units, flat inputs) 0/1 matrix; identity when groups is None."""
    if groups is None:
        if n_units != n_inputs:
            raise AuditInputError(f"attributions have {n_units} features per example but the model "
                                  f"has {n_inputs} inputs; pass `groups` mapping features to inputs.")
        return np.eye(n_inputs, dtype=bool)
    if len(groups) != n_units:
        raise AuditInputError(f"{len(groups)} groups for {n_units} attributed features.")
    G = np.zeros((n_units, n_inputs), bool)
    for j, g in enumerate(groups):
        G[j, list(g)] = True
    return G


def _curve(model, X: np.ndarray, base: np.ndarray, order: np.ndarray, counts: np.ndarray,
           G: np.ndarray, t: np.ndarray, *, insert: bool) -> np.ndarray:
    """Probability of class t after swapping the first counts[s] units of `order` per example."""
    n, D = len(X), G.shape[1]
    rank = np.empty_like(order)
    np.put_along_axis(rank, order, np.arange(order.shape[1])[None].repeat(n, 0), axis=1)
    out = np.zeros((n, len(counts)))
    per = max(1, MAX_CELLS // (len(counts) * D))
    # units own disjoint inputs (pixels, one-hot blocks): an input is swapped when its unit is, a
    # gather instead of a (units x inputs) matrix product (784 x 784 per image); overlapping
    # groups keep the product
    disjoint = bool((G.sum(axis=0) <= 1).all())
    owner = np.where(G.any(axis=0), G.argmax(axis=0), G.shape[0])  # G.shape[0]: no unit (never swapped)
    Gf = None if disjoint else G.astype(np.float32)
    for i in range(0, n, per):  # chunks of examples bound memory; all steps in one call
        sl = slice(i, i + per)
        chosen = rank[sl, None, :] < counts[None, :, None]  # (m, S, U)
        if disjoint:
            mask = np.concatenate([chosen, np.zeros(chosen.shape[:2] + (1,), bool)], axis=2)[:, :, owner]
        else:
            mask = (chosen.astype(np.float32) @ Gf) > 0  # (m, S, D)
        x, b = X[sl].reshape(-1, 1, D), base[sl].reshape(-1, 1, D)
        rows = np.where(mask, x, b) if insert else np.where(mask, b, x)
        prob = probabilities(model, rows.reshape((-1,) + model.input_shape))
        m = rows.shape[0]
        prob = prob.reshape(m, len(counts), -1)
        out[sl] = prob[np.arange(m)[:, None], np.arange(len(counts))[None], t[sl, None]]
    return out


def faithfulness_curves(model, X: Any, attributions: Any, *, target: Any, baseline: Any = 0.0,
                        groups: Sequence[Sequence[int]] | None = None, steps: int = 20,
                        seed: int = 0) -> Curves:
    """Deletion and insertion curves of `attributions` (n, *features) for inputs X.

    Features are ordered by signed attribution, largest first (evidence for the explained
    class). Deleting sets a feature's inputs to `baseline` (broadcast to one input, or one
    per example); inserting starts from the baseline. `groups[j]` lists the flat inputs of
    feature j (e.g. a raw column's one-hot block); identity when None. `steps` + 1 points.
    """
    X = np.asarray(X, np.float32)
    if X.ndim == len(model.input_shape):
        X = X[None]
    if X.shape[1:] != tuple(model.input_shape):
        raise AuditInputError(f"inputs have shape {X.shape}; the model takes (n, {model.input_shape}).")
    A = np.asarray(attributions, np.float64)
    if A.ndim < 2 or len(A) != len(X) or A[0].size == 0:
        raise AuditInputError(f"attributions of shape {A.shape} need one row per input ({len(X)}).")
    A = A.reshape(len(X), -1)
    n, D = len(X), int(np.prod(model.input_shape))
    G = _units(groups, A.shape[1], D)
    t = targets(model, X, target)
    try:
        base = np.broadcast_to(np.asarray(baseline, np.float32), X.shape).reshape(n, D)
    except ValueError:
        raise AuditInputError(f"baseline of shape {np.shape(baseline)} does not broadcast to the "
                              f"inputs {X.shape}.") from None
    if int(steps) < 1:
        raise AuditInputError(f"steps must be >= 1, got {steps}.")
    U = A.shape[1]
    fractions = np.linspace(0.0, 1.0, min(int(steps), U) + 1)
    counts = np.rint(fractions * U).astype(np.int64)
    fractions = counts / U
    order = np.argsort(-A, axis=1, kind="stable")
    rng = np.random.default_rng(seed)
    random_order = np.argsort(rng.random(A.shape), axis=1)
    flat = X.reshape(n, D)
    curves = [_curve(model, flat, base, o, counts, G, t, insert=ins)
              for o, ins in ((order, False), (order, True), (random_order, False), (random_order, True))]
    return Curves(fractions=fractions, deletion=curves[0], insertion=curves[1],
                  deletion_random=curves[2], insertion_random=curves[3])


def _ranks(a: np.ndarray) -> np.ndarray:
    """Average ranks (1-based, ties share their mean rank) per row, like scipy's rankdata."""
    n, m = a.shape
    order = np.argsort(a, axis=1, kind="stable")
    s = np.take_along_axis(a, order, axis=1)
    pos = np.broadcast_to(np.arange(m), (n, m))
    starts = np.ones((n, m), bool)
    starts[:, 1:] = s[:, 1:] != s[:, :-1]
    ends = np.ones((n, m), bool)
    ends[:, :-1] = starts[:, 1:]
    first = np.maximum.accumulate(np.where(starts, pos, 0), axis=1)
    last = np.minimum.accumulate(np.where(ends, pos, m - 1)[:, ::-1], axis=1)[:, ::-1]
    ranks = np.empty((n, m))
    np.put_along_axis(ranks, order, (first + last) / 2 + 1, axis=1)
    return ranks


def _row_corr(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a, b = a - a.mean(1, keepdims=True), b - b.mean(1, keepdims=True)
    den = np.sqrt((a ** 2).sum(1) * (b ** 2).sum(1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, (a * b).sum(1) / np.where(den > 0, den, 1), np.nan)


def spearman(a: Any, b: Any) -> np.ndarray:
    """Spearman rank correlation per row (average ranks for ties; NaN for a constant row)."""
    a = np.asarray(a, np.float64).reshape(len(a), -1)
    b = np.asarray(b, np.float64).reshape(len(b), -1)
    if a.shape != b.shape:
        raise AuditInputError(f"attributions to compare have shapes {a.shape} and {b.shape}.")
    return _row_corr(_ranks(a), _ranks(b))


def top_k_overlap(a: Any, b: Any, *, k: int) -> np.ndarray:
    """Share of the k largest-magnitude features that two attributions have in common, per row."""
    a = np.abs(np.asarray(a, np.float64).reshape(len(a), -1))
    b = np.abs(np.asarray(b, np.float64).reshape(len(b), -1))
    if a.shape != b.shape or not 1 <= k <= a.shape[1]:
        raise AuditInputError(f"top-k overlap needs equal shapes and 1 <= k <= {a.shape[1]}; got "
                              f"{a.shape}, {b.shape}, k={k}.")
    ta = np.argsort(-a, axis=1, kind="stable")[:, :k]
    tb = np.argsort(-b, axis=1, kind="stable")[:, :k]
    hits = (ta[:, :, None] == tb[:, None, :]).any(axis=2).sum(axis=1)
    return hits / k


def default_k(n_features: int) -> int:
    """Top-k size: a tenth of the features, at least 3 (at most all)."""
    return int(min(n_features, max(3, -(-n_features // 10))))


@dataclasses.dataclass(frozen=True, eq=False)
class Agreement(Result):
    """Per-example agreement of two methods: Spearman of values, top-k overlap of magnitudes."""

    spearman: np.ndarray
    top_k: np.ndarray
    k: int


def rank_agreement(a: Any, b: Any, *, k: int | None = None) -> Agreement:
    """Spearman correlation and top-k overlap between two attributions of the same examples."""
    a = np.asarray(a, np.float64).reshape(len(a), -1)
    k = default_k(a.shape[1]) if k is None else int(k)
    return Agreement(spearman=spearman(a, b), top_k=top_k_overlap(a, b, k=k), k=k)


@dataclasses.dataclass(frozen=True, eq=False)
class Stability(Result):
    """Per-example stability: mean Spearman between the attribution of x and of noisy copies
    (1 = the ranking does not move) and mean relative L2 change ||a(x') - a(x)|| / ||a(x)||."""

    spearman: np.ndarray
    relative_change: np.ndarray
    n_samples: int


def stability(explain: Callable[[np.ndarray], np.ndarray], X: Any, *, sigma: Any,
              n_samples: int = 4, seed: int = 0, reference: Any = None) -> Stability:
    """Explain `n_samples` noisy copies x + N(0, sigma^2) of each row of X in one call.

    explain: rows -> attributions (rows, ...); called once on the stacked noisy copies (and once
        on X unless `reference`, the attributions of X, is given).
    sigma: noise std, broadcast to one row (zero where a feature must not move, e.g. category codes).
    """
    X = np.asarray(X, np.float64)
    if int(n_samples) < 1:
        raise AuditInputError(f"n_samples must be >= 1, got {n_samples}.")
    try:
        sig = np.broadcast_to(np.asarray(sigma, np.float64), X.shape[1:])
    except ValueError:
        raise AuditInputError(f"sigma of shape {np.shape(sigma)} does not broadcast to one row "
                              f"{X.shape[1:]}.") from None
    if not (np.isfinite(sig).all() and (sig >= 0).all()):
        raise AuditInputError("sigma must be finite and non-negative.")
    rng = np.random.default_rng(seed)
    noisy = X[:, None] + rng.normal(size=(len(X), int(n_samples)) + X.shape[1:]) * sig
    ref = np.asarray(explain(X) if reference is None else reference, np.float64).reshape(len(X), -1)
    out = np.asarray(explain(noisy.reshape((-1,) + X.shape[1:])), np.float64).reshape(len(X), n_samples, -1)
    rho = np.stack([spearman(ref, out[:, s]) for s in range(n_samples)], axis=1)
    norm = np.linalg.norm(ref, axis=1, keepdims=True)
    change = np.linalg.norm(out - ref[:, None], axis=2) / np.where(norm > 0, norm, np.nan)
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a constant attribution has no ranking
        rho_mean = np.nanmean(rho, axis=1)
    return Stability(spearman=rho_mean, relative_change=change.mean(axis=1), n_samples=int(n_samples))
