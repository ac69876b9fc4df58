"""Mapping from raw tabular columns to model inputs, kept so analyzers can report per raw column.

Numeric columns are standardised with the training rows' mean and standard deviation;
categorical columns become one-hot blocks. The raw representation used by LIME and the
dashboard is a float matrix with one column per raw column, categoricals as integer codes.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from audit.errors import AuditInputError


@dataclasses.dataclass(frozen=True)
class Column:
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


@dataclasses.dataclass(frozen=True)
class TabularEncoding:
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
                index = {cat: i for i, cat in enumerate(c.categories)}
                codes = np.array([index.get(v, -1) for v in values])
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

    def encode(self, raw: np.ndarray) -> np.ndarray:
        """Raw matrix (n, n_raw_columns) -> model inputs (n, n_inputs), float32."""
        raw = np.asarray(raw, dtype=np.float64)
        if raw.ndim != 2 or raw.shape[1] != len(self.columns):
            raise AuditInputError(
                f"raw matrix has shape {raw.shape}; expected (n, {len(self.columns)}) with columns "
                f"{list(self.raw_names)}.")
        blocks = []
        for j, c in enumerate(self.columns):
            if c.kind == "categorical":
                codes = np.rint(raw[:, j]).astype(int)
                known = codes >= 0  # unseen levels (code -1): an all-zero block
                blocks.append(np.eye(c.width)[np.clip(codes, 0, c.width - 1)] * known[:, None])
            else:
                blocks.append(((raw[:, j] - c.mean) / c.std)[:, None])
        return np.concatenate(blocks, axis=1).astype(np.float32)

    def to_dict(self) -> dict[str, Any]:
        return {"columns": [dataclasses.asdict(c) for c in self.columns]}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "TabularEncoding":
        return cls(columns=tuple(
            Column(name=c["name"], kind=c["kind"], mean=float(c["mean"]), std=float(c["std"]),
                   categories=tuple(c["categories"])) for c in d["columns"]))
