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

from audit.errors import AuditInputError
from audit.results import Result


@dataclasses.dataclass(frozen=True)  # its own eq and hash: no arrays inside
class Column(Result):
    """One raw column: numeric (mean/std scaling) or categorical (one-hot over `categories`)."""

    name: str
    kind: str  # "numeric" | "categorical"
    mean: float = 0.0
    std: float = 1.0
    categories: tuple[str, ...] = ()

    @property
    def width(self) -> int:
        return len(self.categories) if self.kind == "categorical" else 1

    def input_names(self) -> list[str]:
        if self.kind == "categorical":
            return [f"{self.name}={c}" for c in self.categories]
        return [self.name]


@dataclasses.dataclass(frozen=True)  # its own eq and hash: no arrays inside
class TabularEncoding(Result):
    """Raw columns -> model inputs. `groups[j]` lists the input indices of raw column j."""

    columns: tuple[Column, ...]

    @classmethod
    def fit(cls, frame: pd.DataFrame, *, categorical: Sequence[str]) -> "TabularEncoding":
        """Fit scaling and category lists on `frame` (the training rows)."""
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
                                      std=std if std > 0 else 1.0))
        return cls(columns=tuple(columns))

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
        """Boolean per model input: True where the input belongs to a one-hot block."""
        return np.array([c.kind == "categorical" for c in self.columns for _ in range(c.width)])

    def raw_matrix(self, frame: pd.DataFrame) -> np.ndarray:
        """Raw columns as floats: numeric values as they are, categoricals as integer codes."""
        out = np.empty((len(frame), len(self.columns)), dtype=np.float64)
        for j, c in enumerate(self.columns):
            if c.kind == "categorical":
                values = frame[c.name].astype(str).to_numpy()
                index = {cat: i for i, cat in enumerate(c.categories)}
                codes = np.array([index.get(v, -1) for v in values])
                unknown = np.flatnonzero(codes < 0)
                if unknown.size:
                    raise AuditInputError(
                        f"column {c.name!r} row {int(unknown[0])}: category {values[unknown[0]]!r} "
                        f"was not seen in the training rows (known: {list(c.categories)}); "
                        "map it to a known category or retrain with it.")
                out[:, j] = codes
            else:
                out[:, j] = frame[c.name].to_numpy(dtype=np.float64)
        return out

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
        blocks = []
        for j, c in enumerate(self.columns):
            if c.kind == "categorical":
                codes = xp.clip(xp.rint(raw[:, j]).astype(xp.int32), 0, c.width - 1)
                blocks.append((codes[:, None] == xp.arange(c.width)[None]).astype(xp.float32))
            else:
                blocks.append(((raw[:, j] - c.mean) / c.std)[:, None].astype(xp.float32))
        return xp.concatenate(blocks, axis=1)
