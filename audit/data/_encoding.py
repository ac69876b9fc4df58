"""Mapping from raw tabular columns to model inputs, kept so analyzers can report per raw column.

Numeric columns are standardised with the training rows' mean and standard deviation;
categorical columns become one-hot blocks. The raw representation used by LIME and the
dashboard is a float matrix with one column per raw column, categoricals as integer codes.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Sequence

import numpy as np
import pandas as pd

from audit.data._missing import Imputation
from audit.errors import AuditInputError
from audit.results import Result


MAX_DECIMALS = 6


def format_value(value: Any) -> str:
    """A raw value as text the way the data has it: names and integers as they are, floats in
    plain notation with at most 6 significant digits (never "6.215e+04" for an income)."""
    if isinstance(value, (str, bool)):
        return str(value)
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    try:
        v = float(value)
    except (TypeError, ValueError):
        return str(value)
    if not np.isfinite(v):
        return str(v)
    if v.is_integer() and abs(v) < 1e15:
        return str(int(v))
    return np.format_float_positional(v, precision=6, unique=True, fractional=False, trim="-")


def precision(values: np.ndarray) -> int | None:
    """The fewest decimals (0..6) that every finite value has (0: whole numbers), or None when
    the values need more (measured data in full float precision)."""
    finite = np.asarray(values, np.float64)
    finite = finite[np.isfinite(finite)]
    for d in range(MAX_DECIMALS + 1):
        if np.allclose(np.round(finite, d), finite, rtol=0, atol=1e-9 * max(1.0, float(np.abs(finite).max(initial=0)))):
            return d
    return None


@dataclasses.dataclass(frozen=True)  # its own eq and hash: no arrays inside
class Column(Result):
    """One raw column: numeric (mean/std scaling) or categorical (one-hot over `categories`)."""

    name: str
    kind: str  # "numeric" | "categorical"
    mean: float = 0.0
    std: float = 1.0
    categories: tuple[str, ...] = ()
    decimals: int | None = None  # the training values' precision (0: integers); None: unknown
    indicator: bool = False  # a 0/1 missingness mask input `<name>__missing` follows the value

    def display(self, value: float) -> Any:
        """A raw value as the user's data has it: a category's name, an int for an integer
        column, a float rounded to the column's precision (no float noise such as -1.3e-08)."""
        if self.kind == "categorical":
            return self.categories[int(np.clip(np.rint(value), 0, self.width - 1))]
        if not np.isfinite(value):
            return float(value)
        if self.decimals == 0:
            return int(np.rint(value))
        if self.decimals is not None:
            return float(np.round(value, self.decimals)) + 0.0  # + 0.0: no "-0.0"
        return float(f"{value:.6g}") + 0.0

    @property
    def width(self) -> int:
        return len(self.categories) if self.kind == "categorical" else 1 + self.indicator

    def input_names(self) -> list[str]:
        if self.kind == "categorical":
            return [f"{self.name}={c}" for c in self.categories]
        return [self.name, f"{self.name}__missing"] if self.indicator else [self.name]


@dataclasses.dataclass(frozen=True)  # its own eq and hash: no arrays inside
class TabularEncoding(Result):
    """Raw columns -> model inputs. `groups[j]` lists the input indices of raw column j (a numeric
    column's missingness mask input, when there is one, belongs to its group). `imputation` fills
    missing numeric values (NaN in the raw matrix) the way it was fitted on the training rows."""

    columns: tuple[Column, ...]
    imputation: Imputation | None = None

    @classmethod
    def fit(cls, frame: pd.DataFrame, *, categorical: Sequence[str],
            missing: dict[str, Any] | None = None) -> "TabularEncoding":
        """Fit scaling and category lists on `frame` (the training rows); with `missing` (checked
        options, see `audit.data._missing.check_options`) also the imputer, on the same rows, and
        the scaling on the imputed values."""
        imputation = None
        numeric = [c for c in frame.columns if c not in categorical]
        if missing is not None and missing["strategy"] != "drop" and numeric:
            imputation = Imputation.fit(frame[numeric], strategy=missing["strategy"],
                                        indicators=missing["indicators"], n_neighbors=missing["n_neighbors"],
                                        max_iter=missing["max_iter"], seed=missing["seed"])
            frame = frame.copy()
            frame[numeric] = imputation.transform(frame[numeric].to_numpy(dtype=np.float64))
        columns = []
        for name in frame.columns:
            values = frame[name]
            if name in categorical:
                categories = tuple(sorted(values.astype(str).unique()))
                columns.append(Column(name=str(name), kind="categorical", categories=categories))
            else:
                numeric = values.to_numpy(dtype=np.float64)
                std = float(numeric.std())
                columns.append(Column(name=str(name), kind="numeric", mean=float(numeric.mean()),
                                      std=std if std > 0 else 1.0, decimals=precision(numeric),
                                      indicator=imputation is not None and str(name) in imputation.masked))
        return cls(columns=tuple(columns), imputation=imputation)

    def impute(self, raw: np.ndarray) -> np.ndarray:
        """Raw matrix with NaN in numeric columns -> filled by the stored imputer (a copy). Without
        an imputation a NaN is an AuditInputError naming the column."""
        raw = np.array(raw, dtype=np.float64)
        holes = np.isnan(raw)
        if not holes.any():
            return raw
        if self.imputation is None:
            j = int(np.flatnonzero(holes.any(axis=0))[0])
            raise AuditInputError(f"column {self.columns[j].name!r} has missing values and the encoding "
                                  "has no imputation; load the data with missing={'strategy': ...}.")
        index = [self.raw_names.index(n) for n in self.imputation.numeric]
        raw[:, index] = self.imputation.transform(raw[:, index])
        return raw

    @property
    def raw_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    @property
    def input_names(self) -> tuple[str, ...]:
        return tuple(n for c in self.columns for n in c.input_names())

    @property
    def groups(self) -> tuple[tuple[int, ...], ...]:
        """Input indices per raw column (one-hot blocks grouped), in column order."""
        out, start = [], 0
        for c in self.columns:
            out.append(tuple(range(start, start + c.width)))
            start += c.width
        return tuple(out)

    @property
    def categorical_mask(self) -> np.ndarray:
        """Boolean per model input: True where the input is discrete, a one-hot entry or a 0/1
        missingness mask (attacks and noise leave them alone)."""
        return np.array([c.kind == "categorical" or k > 0 for c in self.columns for k in range(c.width)])

    def raw_matrix(self, frame: pd.DataFrame, *, handle_unknown: str = "ignore") -> np.ndarray:
        """Raw columns as floats: numeric values as they are, categoricals as integer codes.

        A category level not seen in the training rows gets code -1, which `encode` turns into an
        all-zero one-hot block (scikit-learn's `handle_unknown="ignore"`); `unknown_rows` counts
        them. `handle_unknown="error"` raises instead."""
        if handle_unknown not in ("ignore", "error"):
            raise AuditInputError(f"handle_unknown={handle_unknown!r} must be 'ignore' or 'error'.")
        out = np.empty((len(frame), len(self.columns)), dtype=np.float64)
        for j, c in enumerate(self.columns):
            if c.kind == "categorical":
                values = frame[c.name].astype(str).to_numpy()
                codes = pd.Index(c.categories).get_indexer(values)  # hashed lookup, -1 when unseen
                unknown = np.flatnonzero(codes < 0)
                if unknown.size and handle_unknown == "error":
                    raise AuditInputError(
                        f"column {c.name!r} row {int(unknown[0])}: category {values[unknown[0]]!r} "
                        f"was not seen in the training rows (known: {list(c.categories)}); "
                        "map it to a known category or retrain with it.")
                out[:, j] = codes
            else:
                out[:, j] = frame[c.name].to_numpy(dtype=np.float64)
        return out

    def unknown_rows(self, raw: np.ndarray) -> dict[str, int]:
        """Rows per categorical column whose level was not seen in training (encoded all-zero)."""
        raw = np.asarray(raw, dtype=np.float64)
        return {c.name: int((raw[:, j] < 0).sum()) for j, c in enumerate(self.columns)
                if c.kind == "categorical" and (raw[:, j] < 0).any()}

    def encode(self, raw: Any, *, xp: Any = np) -> Any:
        """Raw matrix (n, n_raw_columns) -> model inputs (n, n_inputs), float32.

        `xp` is the array namespace: numpy (the default), or `jax.numpy` to encode inside jitted
        code (LIME's perturbations); one map for both, so they cannot drift apart. Category codes
        are rounded and clipped to the known categories; numeric columns are standardised.
        """
        if xp is np:
            raw = np.asarray(raw, dtype=np.float64)
        if raw.ndim != 2 or raw.shape[1] != len(self.columns):
            raise AuditInputError(
                f"raw matrix has shape {raw.shape}; expected (n, {len(self.columns)}) with columns "
                f"{list(self.raw_names)}.")
        holes = xp.isnan(raw)  # missing values: masks from them, then filled (numpy only)
        if xp is np:
            raw = self.impute(raw)
        blocks = []
        for j, c in enumerate(self.columns):
            if c.kind == "categorical":
                codes = xp.rint(raw[:, j]).astype(xp.int32)
                known = codes >= 0  # unseen levels (code -1, handle_unknown="ignore"): an all-zero block
                onehot = xp.clip(codes, 0, c.width - 1)[:, None] == xp.arange(c.width)[None]
                blocks.append((onehot & known[:, None]).astype(xp.float32))
            else:
                blocks.append(((raw[:, j] - c.mean) / c.std)[:, None].astype(xp.float32))
                if c.indicator:
                    blocks.append(holes[:, j][:, None].astype(xp.float32))
        return xp.concatenate(blocks, axis=1)

    def decode(self, inputs: np.ndarray) -> np.ndarray:
        """Model inputs (n, n_inputs) -> raw matrix (n, n_raw_columns), the inverse of `encode`:
        numeric columns unscaled and rounded to the column's precision (integers stay whole),
        categoricals as the code of their largest one-hot entry."""
        x = np.asarray(inputs, dtype=np.float64).reshape(len(inputs), -1)
        out = np.empty((len(x), len(self.columns)))
        for j, (c, g) in enumerate(zip(self.columns, self.groups)):
            if c.kind == "categorical":
                out[:, j] = x[:, list(g)].argmax(axis=1)
            else:
                value = x[:, g[0]] * c.std + c.mean
                digits = c.decimals if c.decimals is not None else None
                out[:, j] = np.round(value, digits) if digits is not None else \
                    np.array([float(f"{v:.6g}") for v in value])
        return out + 0.0

    def display(self, raw: np.ndarray) -> np.ndarray:
        """Raw matrix -> object matrix of values as the user's data has them (`Column.display`)."""
        raw = np.asarray(raw, dtype=np.float64)
        out = np.empty(raw.shape, dtype=object)
        for j, c in enumerate(self.columns):
            out[:, j] = [c.display(v) for v in raw[:, j]]
        return out
