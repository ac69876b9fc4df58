"""Group labels for a sensitive attribute: categories as they are, continuous values binned.

The one grouping rule of the project: fairness, robustness per group and the dashboard all call
`attribute_groups`, so 'age' means the same bands in every section of a report.

Binning rule (documented, deterministic): a numeric attribute with more than `max_levels`
distinct values is continuous. It is cut at the given `edges` or, by default, at the
`n_bins`-quantiles of all the data set's rows (rounded to whole numbers when the values are whole,
duplicates removed), giving left-closed bins "[a, b)" and a last bin "[a, max]". So `age` on
credit becomes four bands of roughly equal size.
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

import numpy as np

from audit.errors import AuditInputError


@dataclasses.dataclass(frozen=True, eq=False)
class Grouping:
    """One attribute's groups: `codes[i]` indexes `labels` for row i; `rule` says how."""

    name: str
    labels: tuple[str, ...]
    codes: np.ndarray
    rule: str
    empty: tuple[str, ...] = ()  # intersection cells with no rows

    @property
    def sizes(self) -> np.ndarray:
        return np.bincount(self.codes, minlength=len(self.labels))


def _fmt(v: float) -> str:
    """Shortest text that round-trips the float (no two distinct values share a label)."""
    return np.format_float_positional(float(v), trim="-")


def binning(values: np.ndarray, name: str, edges: Sequence[float] | None, n_bins: int, *,
            lo: float | None = None, hi: float | None = None) -> tuple[np.ndarray, tuple[str, ...], str]:
    """(interior cuts, labels, rule) of a continuous attribute: cut at `edges`, or at the
    `n_bins`-quantiles of `values`; `lo` / `hi` (default: the values' extremes) close the first and
    last bins. A streamed audit passes the extremes of every row and the quantiles of a sample."""
    whole = bool(np.all(values == np.round(values)))
    if edges is None:
        cuts = np.quantile(values, np.arange(1, n_bins) / n_bins)
        cuts = np.round(cuts) if whole else cuts
        rule = f"{n_bins} equal-frequency bins (quantiles over all rows)"
    else:
        cuts = np.asarray(edges, dtype=np.float64)
        if cuts.ndim != 1 or not np.all(np.isfinite(cuts)):
            raise AuditInputError(f"bin edges for {name!r} must be a list of finite numbers, got {edges!r}.")
        rule = f"bins at the given edges {list(map(float, cuts))}"
    lo = float(values.min()) if lo is None else float(lo)
    hi = float(values.max()) if hi is None else float(hi)
    cuts = np.unique(cuts[(cuts > lo) & (cuts <= hi)])
    bounds = [lo, *cuts.tolist(), hi]
    labels = [f"[{_fmt(a)}, {_fmt(b)})" for a, b in zip(bounds[:-2], bounds[1:-1])]
    labels.append(f"[{_fmt(bounds[-2])}, {_fmt(hi)}]")
    return cuts, tuple(labels), rule


def _bin(values: np.ndarray, name: str, edges: Sequence[float] | None, n_bins: int) -> Grouping:
    cuts, labels, rule = binning(values, name, edges, n_bins)
    codes = np.searchsorted(cuts, values, side="right")
    return Grouping(name=name, labels=labels, codes=codes.astype(np.int64), rule=rule)


def make_grouping(values, name: str, *, edges: Sequence[float] | None = None, n_bins: int = 4,
                  max_levels: int = 8) -> Grouping:
    """Groups of one attribute (one value per row); continuous numbers binned (module docstring)."""
    values = np.asarray(values)
    if values.ndim != 1:
        raise AuditInputError(f"sensitive attribute {name!r} has shape {values.shape}; expected one "
                              "value per row.")
    if values.dtype.kind in "iufb":
        values = values.astype(np.float64)
        if not np.all(np.isfinite(values)):
            raise AuditInputError(f"sensitive attribute {name!r} has NaN or infinite values at rows "
                                  f"{np.flatnonzero(~np.isfinite(values))[:5].tolist()}; label them first.")
        if edges is not None or len(np.unique(values)) > max_levels:
            return _bin(values, name, edges, n_bins)
        uniq, codes = np.unique(values, return_inverse=True)
        return Grouping(name=name, labels=tuple(_fmt(v) for v in uniq), codes=codes.astype(np.int64),
                        rule="one group per value")
    text = values.astype(str)
    uniq, codes = np.unique(text, return_inverse=True)
    return Grouping(name=name, labels=tuple(uniq.tolist()), codes=codes.astype(np.int64),
                    rule="one group per value")


def intersect(a: Grouping, b: Grouping) -> Grouping:
    """The cross of two groupings ("female&[21, 35)"); cells with no rows are listed in `empty`."""
    full = a.codes * len(b.labels) + b.codes
    present, codes = np.unique(full, return_inverse=True)
    names = [f"{la}&{lb}" for la in a.labels for lb in b.labels]
    empty = tuple(n for i, n in enumerate(names) if i not in set(present.tolist()))
    return Grouping(name=f"{a.name}&{b.name}", labels=tuple(names[i] for i in present),
                    codes=codes.astype(np.int64), rule=f"intersection of {a.name} and {b.name}",
                    empty=empty)


def subset(grouping: Grouping, rows: np.ndarray) -> Grouping:
    """The grouping restricted to `rows`; groups with no rows there are dropped."""
    codes = grouping.codes[np.asarray(rows, dtype=np.int64)]
    present, new = np.unique(codes, return_inverse=True)
    return dataclasses.replace(grouping, labels=tuple(grouping.labels[i] for i in present),
                               codes=new.astype(np.int64))


def attribute_groups(data, attribute: str, rows=None, *, edges: Sequence[float] | None = None,
                     n_bins: int = 4) -> Grouping:
    """The groups of `attribute` ("sex", or an intersection "sex&age") on `rows` of `data`.

    Continuous attributes are binned over ALL the data set's rows (module docstring) before
    restricting to `rows`, so every section that audits a subset of rows (a split, a sample)
    names the same bands. `edges` (interior bin edges) apply to every part of an intersection
    that is continuous; pass a mapping {name: edges} for per-attribute edges.
    """
    names = attribute.split("&")
    if not 1 <= len(names) <= 2:
        raise AuditInputError(f"attribute {attribute!r}: give a name or two names joined by '&'.")
    rows = np.arange(len(data.y)) if rows is None else np.asarray(rows, dtype=np.int64)
    parts = []
    for name in names:
        if name not in data.sensitive:
            raise AuditInputError(f"{data.name} has no sensitive attribute {name!r}; it has "
                                  f"{sorted(data.sensitive)}.")
        own = edges.get(name) if isinstance(edges, dict) else edges
        parts.append(subset(make_grouping(data.sensitive[name], name, edges=own, n_bins=n_bins), rows))
    return parts[0] if len(parts) == 1 else intersect(parts[0], parts[1])
