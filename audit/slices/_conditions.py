"""Raw-column conditions for cohort search: quantile bins for numeric columns, levels for categoricals."""

from __future__ import annotations

import dataclasses

import numpy as np

from audit.data._encoding import format_value


@dataclasses.dataclass(frozen=True)
class Conditions:
    """m conditions on n rows: `masks[:, i]` holds where condition `texts[i]` is true, and
    `column[i]` is the index (into `names`) of the column it tests."""

    names: tuple[str, ...]
    texts: tuple[str, ...]
    column: np.ndarray  # (m,) int
    masks: np.ndarray  # (n, m) bool


def numeric_conditions(name: str, values: np.ndarray, *, n_bins: int,
                       display=lambda v: v) -> list[tuple[str, np.ndarray]]:
    """Quantile bins ("income < 29600", "29600 <= income < 40000", "income >= 53000"); a column with at
    most `n_bins` distinct values gets one condition per value instead. `display` rounds an edge to the
    column's precision, and the masks use the rounded edge, so the text says exactly which rows are in."""
    finite = values[np.isfinite(values)]
    if len(finite) == 0:  # a column with no values on these rows has no conditions
        return []
    distinct = np.unique(finite)
    if len(distinct) <= n_bins:
        return [(f"{name} = {format_value(display(v))}", values == v) for v in distinct]
    quantiles = np.quantile(finite, np.arange(1, n_bins) / n_bins)
    edges = np.unique([display(q) for q in quantiles])
    edges = edges[(edges > distinct[0]) & (edges <= distinct[-1])]
    out = []
    for k in range(len(edges) + 1):
        lo = edges[k - 1] if k > 0 else None
        hi = edges[k] if k < len(edges) else None
        if lo is None:
            text, mask = f"{name} < {format_value(hi)}", values < hi
        elif hi is None:
            text, mask = f"{name} >= {format_value(lo)}", values >= lo
        else:
            text, mask = f"{format_value(lo)} <= {name} < {format_value(hi)}", (values >= lo) & (values < hi)
        out.append((text, mask))
    return out


def level_conditions(name: str, values: np.ndarray) -> list[tuple[str, np.ndarray]]:
    """One condition per level present ("sector = retail")."""
    return [(f"{name} = {format_value(v)}", values == v) for v in np.unique(values)]


def build(columns: dict[str, tuple[str, np.ndarray, object]], *, n_bins: int) -> Conditions:
    """`columns` maps a name to (kind, values, display); kind is "numeric" or "categorical" (values
    already as level names)."""
    texts, column, masks = [], [], []
    for j, (name, (kind, values, display)) in enumerate(columns.items()):
        conds = (numeric_conditions(name, np.asarray(values, np.float64), n_bins=n_bins, display=display)
                 if kind == "numeric" else level_conditions(name, np.asarray(values)))
        for text, mask in conds:
            if mask.any():
                texts.append(text)
                column.append(j)
                masks.append(mask)
    n = len(next(iter(columns.values()))[1]) if columns else 0
    return Conditions(names=tuple(columns), texts=tuple(texts), column=np.asarray(column, np.int64),
                      masks=np.stack(masks, axis=1) if masks else np.zeros((n, 0), bool))
