"""The space counterfactuals live in: raw columns, their costs and their hard constraints.

A counterfactual is a raw row (numeric columns as numbers, categoricals as level codes). Its
cost is the L1 distance over numeric columns scaled by each column's median absolute deviation
on the training rows (Wachter et al. 2017), plus `categorical_cost` per changed categorical
column. Constraints: immutable (and sensitive) columns never change, monotone columns move one
way, numeric values stay inside the training range (widened to hold the original), integer
columns stay whole and categoricals stay one level of their block.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping, Sequence

import numpy as np

from audit.errors import AuditInputError

COSTS = ("mad", "std")
DIRECTIONS = {"increase": 1, "decrease": -1}


@dataclasses.dataclass(frozen=True, eq=False)
class Space:
    """Raw columns with their cost scale, domain and constraints (arrays over raw columns)."""

    names: tuple[str, ...]
    categories: Mapping[str, tuple[str, ...]]  # categorical column -> level names
    is_cat: np.ndarray      # (d,) bool
    integer: np.ndarray     # (d,) bool: numeric columns whose training values are all whole
    scale: np.ndarray       # (d,) numeric: MAD (or std); categorical: 1
    lo: np.ndarray          # (d,) training minimum (categorical: 0)
    hi: np.ndarray          # (d,) training maximum (categorical: levels - 1)
    mutable: np.ndarray     # (d,) bool
    direction: np.ndarray   # (d,) +1 increase only, -1 decrease only, 0 either way
    categorical_cost: float
    # model-input layout: input i reads raw column col_of_input[i] (one-hot level level_of_input[i])
    col_of_input: np.ndarray
    level_of_input: np.ndarray
    mean_in: np.ndarray
    std_in: np.ndarray

    @property
    def d(self) -> int:
        return len(self.names)

    @property
    def blocks(self) -> tuple[tuple[int, int, int], ...]:
        """(raw column, first input, width) per categorical column."""
        out = []
        for j in np.flatnonzero(self.is_cat):
            inputs = np.flatnonzero(self.col_of_input == j)
            out.append((int(j), int(inputs[0]), len(inputs)))
        return tuple(out)

    # ---- raw <-> model inputs -------------------------------------------------------------
    def encode(self, raw: np.ndarray) -> np.ndarray:
        """Raw rows (..., d) -> model inputs (..., n_inputs), float32."""
        raw = np.asarray(raw, dtype=np.float64)
        cols = raw[..., self.col_of_input]
        onehot = (np.rint(cols) == self.level_of_input).astype(np.float64)
        return np.where(self.level_of_input >= 0, onehot, (cols - self.mean_in) / self.std_in).astype(np.float32)

    def decode(self, X: np.ndarray) -> np.ndarray:
        """Model inputs (n, n_inputs) -> raw rows (n, d); integer columns rounded."""
        X = np.asarray(X, dtype=np.float64)
        raw = np.zeros((len(X), self.d))
        for j in range(self.d):
            inputs = np.flatnonzero(self.col_of_input == j)
            if self.is_cat[j]:
                raw[:, j] = X[:, inputs].argmax(axis=1)
            else:
                i = inputs[0]
                raw[:, j] = X[:, i] * self.std_in[i] + self.mean_in[i]
        raw[:, self.integer] = np.rint(raw[:, self.integer])
        return raw

    # ---- cost and constraints ---------------------------------------------------------------
    def contributions(self, raw0: np.ndarray, raw: np.ndarray) -> np.ndarray:
        """Per-column cost of moving from raw0 to raw (broadcasting over leading axes)."""
        diff = np.abs(raw - raw0)
        return np.where(self.is_cat, (diff > 0.5) * self.categorical_cost, diff / self.scale)

    def cost(self, raw0: np.ndarray, raw: np.ndarray) -> np.ndarray:
        return self.contributions(raw0, raw).sum(axis=-1)

    def changed(self, raw0: np.ndarray, raw: np.ndarray) -> np.ndarray:
        """Per-column changed mask (relative tolerance for float noise)."""
        return np.abs(raw - raw0) > 1e-6 * np.maximum(1.0, np.abs(raw0))

    def bounds(self, raw0: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per-row reachable [low, high] for each column: domain, monotone and immutability."""
        lo = np.minimum(self.lo, raw0)
        hi = np.maximum(self.hi, raw0)
        lo = np.where(self.direction > 0, raw0, lo)
        hi = np.where(self.direction < 0, raw0, hi)
        keep = ~self.mutable
        return np.where(keep, raw0, lo), np.where(keep, raw0, hi)

    def round_integers(self, raw0: np.ndarray, raw: np.ndarray) -> np.ndarray:
        """Integer columns rounded away from the original (a move never shrinks to nothing),
        then clipped to the row's bounds (whole numbers too)."""
        delta = raw - raw0
        whole = raw0 + np.sign(delta) * np.ceil(np.abs(delta) - 1e-6)
        out = np.where(self.integer, whole, raw)
        lo, hi = self.bounds(raw0)
        return np.clip(out, lo, hi)

    def satisfied(self, raw0: np.ndarray, raw: np.ndarray) -> np.ndarray:
        """Per-row: does `raw` meet every hard constraint relative to `raw0`? (for tests and checks)"""
        lo, hi = self.bounds(raw0)
        tol = 1e-9 * np.maximum(1.0, np.abs(raw0))
        ok = (raw >= lo - tol) & (raw <= hi + tol)
        ok &= ~self.integer | (raw == np.rint(raw))
        ok &= ~self.is_cat | (raw == np.rint(raw))
        return ok.all(axis=-1)


def _mad(values: np.ndarray) -> float:
    return float(np.median(np.abs(values - np.median(values))))


def build_space(data, *, immutable: Sequence[str] = (), monotone: Mapping[str, str] | None = None,
                cost: str = "mad", categorical_cost: float = 1.0) -> Space:
    """The counterfactual space of a tabular Dataset; sensitive columns that are model inputs are
    immutable too. Statistics come from the training split."""
    if data.kind != "tabular":
        raise AuditInputError(f"counterfactuals are defined for tabular data; {data.name!r} is {data.kind} "
                              "data (a pixel-level counterfactual is an adversarial example: use "
                              "audit.robustness for images).")
    if cost not in COSTS:
        raise AuditInputError(f"cost {cost!r} must be one of {list(COSTS)} (L1 over numeric columns scaled "
                              "by median absolute deviation or by standard deviation).")
    if not (isinstance(categorical_cost, (int, float)) and categorical_cost > 0):
        raise AuditInputError(f"categorical_cost must be a positive number, got {categorical_cost!r}.")
    train_rows = data.splits.get("train", np.arange(len(data)))
    train_rows = train_rows if len(train_rows) else np.arange(len(data))
    if data.encoding is not None:
        columns = data.encoding.columns
        names = tuple(c.name for c in columns)
        raw_train = data.raw[train_rows] if data.raw is not None else None
        col_of_input = np.concatenate([np.full(c.width, j) for j, c in enumerate(columns)])
        level_of_input = np.concatenate([np.arange(c.width) if c.kind == "categorical" else [-1]
                                         for c in columns])
        mean_in = np.concatenate([np.zeros(c.width) if c.kind == "categorical" else [c.mean] for c in columns])
        std_in = np.concatenate([np.ones(c.width) if c.kind == "categorical" else [c.std] for c in columns])
        is_cat = np.array([c.kind == "categorical" for c in columns])
        categories = {c.name: tuple(c.categories) for c in columns if c.kind == "categorical"}
        levels = np.array([c.width for c in columns], dtype=np.float64)
    else:
        names = tuple(data.feature_names)
        d = len(names)
        col_of_input, level_of_input = np.arange(d), np.full(d, -1)
        mean_in, std_in = np.zeros(d), np.ones(d)
        is_cat, categories, levels = np.zeros(d, bool), {}, np.ones(d)
        raw_train = None
    space_probe = Space(names=names, categories=categories, is_cat=is_cat, integer=np.zeros(len(names), bool),
                        scale=np.ones(len(names)), lo=np.zeros(len(names)), hi=np.zeros(len(names)),
                        mutable=np.ones(len(names), bool), direction=np.zeros(len(names), int),
                        categorical_cost=float(categorical_cost), col_of_input=col_of_input,
                        level_of_input=level_of_input, mean_in=mean_in, std_in=std_in)
    if raw_train is None:
        raw_train = space_probe.decode(data.X[train_rows])
    raw_train = np.asarray(raw_train, dtype=np.float64)
    d = len(names)
    integer = np.array([not is_cat[j] and bool(np.all(raw_train[:, j] == np.rint(raw_train[:, j])))
                        for j in range(d)])
    scale = np.ones(d)
    for j in np.flatnonzero(~is_cat):
        s = _mad(raw_train[:, j]) if cost == "mad" else 0.0
        s = s if s > 0 else float(raw_train[:, j].std())
        scale[j] = s if s > 0 else 1.0
    lo = np.where(is_cat, 0.0, raw_train.min(axis=0))
    hi = np.where(is_cat, levels - 1, raw_train.max(axis=0))
    mutable = np.ones(d, bool)
    index = {n: j for j, n in enumerate(names)}
    fixed = list(immutable) + [s for s in data.sensitive if s in index]
    for name in fixed:
        if name not in index:
            raise AuditInputError(f"immutable column {name!r} is not a raw column of {data.name!r}; "
                                  f"columns: {list(names)}.")
        mutable[index[name]] = False
    direction = np.zeros(d, int)
    for name, way in dict(monotone or {}).items():
        if name not in index:
            raise AuditInputError(f"monotone column {name!r} is not a raw column of {data.name!r}; "
                                  f"columns: {list(names)}.")
        if way not in DIRECTIONS:
            raise AuditInputError(f"monotone[{name!r}] = {way!r}: use 'increase' or 'decrease'.")
        if is_cat[index[name]]:
            raise AuditInputError(f"monotone column {name!r} is categorical; monotone constraints apply to "
                                  "numeric columns (list it in immutable=[...] to fix it instead).")
        direction[index[name]] = DIRECTIONS[way]
    return dataclasses.replace(space_probe, integer=integer, scale=scale, lo=lo, hi=hi, mutable=mutable,
                               direction=direction)


def raw_rows(space: Space, data, X: Any) -> np.ndarray:
    """Rows to explain as raw rows: model inputs (n, n_inputs) or a DataFrame of raw columns."""
    import pandas as pd

    if isinstance(X, pd.DataFrame):
        missing = [n for n in space.names if n not in X.columns]
        if missing:
            raise AuditInputError(f"the rows lack raw column(s) {missing}; expected {list(space.names)}.")
        if data.encoding is None:
            return X[list(space.names)].to_numpy(np.float64)
        return data.encoding.raw_matrix(X[list(space.names)].astype(
            {n: str for n in space.categories}))
    X = np.asarray(X, dtype=np.float32)
    if X.ndim == 1:
        X = X[None]
    if X.ndim == 2 and len(X) == 0:
        raise AuditInputError("no rows to explain (X is empty); pass at least one row.")
    if X.ndim != 2 or X.shape[1] != len(space.col_of_input):
        raise AuditInputError(f"rows have shape {X.shape}; expected (n, {len(space.col_of_input)}) model "
                              "inputs (like data.X), or a DataFrame of raw columns.")
    if not np.isfinite(X).all():
        raise AuditInputError("rows contain NaN or infinite values; impute them first.")
    return space.decode(X)
