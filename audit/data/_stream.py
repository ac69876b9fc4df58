"""Tabular data larger than memory: a CSV read in chunks or a Parquet file read by row groups.

`open_stream(path, target=..., ...)` reads the file once (validating every chunk with the checks
`from_pandas` makes, the first chunk before anything else) and keeps, in bounded memory:
- a seeded uniform sample of `sample_rows` rows (bottom-k of one seeded uniform key per row, so the
  sample does not depend on `chunk_rows`), on which the encoding (and imputer) is fitted and the
  per-example analyzers run (`TabularStream.sample`, an ordinary `Dataset`);
- the class labels and, per sensitive attribute, its levels or extremes, so groups are named the
  same in every chunk.
`TabularStream.chunks()` then yields the file again, encoded, `chunk_rows` rows at a time: the
count-based analyzers (imbalance, fairness) accumulate over them. Peak memory is set by
`chunk_rows` and `sample_rows`, never by the file's length.
"""

from __future__ import annotations

import csv
import dataclasses
import os
from typing import Any, Iterator, Mapping, Sequence

import numpy as np
import pandas as pd

from audit.data._dataset import Dataset
from audit.data._encoding import TabularEncoding
from audit.data._groups import _fmt, binning
from audit.data._missing import check_options
from audit.data._tabular import (_check_unique, from_pandas, input_frame, sensitive_values,
                                 validate_frame)
from audit.errors import AuditInputError

FORMATS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}
STREAM_SPLIT = "stream"  # the split named in a streamed report: every row of the file
MAX_LEVELS = 8  # the grouping rule's default (audit.data.make_grouping): more numeric values are binned


def unsupported(settings: Mapping[str, Any], names: tuple[str, ...], analyzer: str) -> None:
    """Settings that name a split make no sense for a file audited whole: one clear error."""
    bad = sorted(set(settings) & set(names))
    if bad:
        raise AuditInputError(f"{analyzer}: setting(s) {bad} do not apply to a streamed audit (every row of the "
                              "file is audited; sample-based parts use the stream's seeded sample); remove them.")


def file_format(path: str) -> str:
    """"csv" or "parquet", from the file's extension."""
    ext = os.path.splitext(path)[1].lower()
    if ext not in FORMATS:
        raise AuditInputError(f"cannot stream {path!r}: the name must end in .csv or .parquet "
                              f"(got {ext or 'no extension'!r}).")
    return FORMATS[ext]


def read_frames(path: str, *, chunk_rows: int, columns: Sequence[str] | None = None) -> Iterator[pd.DataFrame]:
    """The file as DataFrames of at most `chunk_rows` rows (CSV: pandas chunks; Parquet: record
    batches over its row groups), each with a RangeIndex from 0."""
    fmt = file_format(path)
    if fmt == "csv":
        try:
            for frame in pd.read_csv(path, chunksize=chunk_rows, usecols=columns):
                yield frame.reset_index(drop=True)
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
            raise AuditInputError(f"cannot read CSV {path!r}: {exc}") from None
        return
    import pyarrow.parquet as pq

    with pq.ParquetFile(path) as f:
        for batch in f.iter_batches(batch_size=chunk_rows, columns=None if columns is None else list(columns)):
            yield batch.to_pandas()


def header(path: str) -> list[str]:
    """Column names as the file has them (a CSV's first line; a Parquet file's schema)."""
    fmt = file_format(path)
    if not os.path.isfile(path):
        raise AuditInputError(f"{fmt.upper()} file {path!r} does not exist.")
    if fmt == "csv":
        try:
            with open(path, newline="") as f:  # pandas would silently rename a duplicate to 'income.1'
                return next(csv.reader(f), [])
        except UnicodeDecodeError as exc:
            raise AuditInputError(f"cannot read CSV {path!r}: {exc}") from None
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        return list(pq.read_schema(path).names)
    except (pa.ArrowInvalid, OSError) as exc:
        raise AuditInputError(f"cannot read Parquet {path!r}: {exc}") from None


@dataclasses.dataclass
class _Attribute:
    """What one pass learns about a sensitive attribute: text levels, or numeric extremes and up to
    MAX_LEVELS + 1 distinct values (more means continuous)."""

    numeric: bool | None = None
    levels: set = dataclasses.field(default_factory=set)
    lo: float = np.inf
    hi: float = -np.inf

    def update(self, values: np.ndarray, name: str) -> None:
        numeric = values.dtype.kind in "iufb"
        if self.numeric is not None and numeric != self.numeric:
            raise AuditInputError(f"sensitive column {name!r} holds numbers in some chunks and text in "
                                  "others; give it one type (e.g. write its values as text).")
        self.numeric = numeric
        if numeric:
            values = values.astype(np.float64)
            if not np.all(np.isfinite(values)):
                raise AuditInputError(f"sensitive attribute {name!r} has NaN or infinite values; label them first.")
            self.lo, self.hi = min(self.lo, float(values.min())), max(self.hi, float(values.max()))
            if len(self.levels) <= MAX_LEVELS:
                self.levels.update(np.unique(values).tolist())
        else:
            self.levels.update(np.unique(values).tolist())


@dataclasses.dataclass(frozen=True)
class StreamGroups:
    """One sensitive attribute's grouping rule for a stream, the same rule as `make_grouping`:
    one group per value (text, or at most MAX_LEVELS numbers), else bins (cuts at `edges` or at the
    quantiles of the sample; the extremes of every row close the end bins)."""

    name: str
    labels: tuple[str, ...]
    rule: str
    levels: tuple = ()
    cuts: np.ndarray | None = None

    def codes(self, values: np.ndarray) -> np.ndarray:
        """Group index per value."""
        if self.cuts is not None:
            return np.searchsorted(self.cuts, np.asarray(values, np.float64), side="right").astype(np.int64)
        if self.levels and isinstance(self.levels[0], float):
            return np.searchsorted(np.asarray(self.levels), np.asarray(values, np.float64)).astype(np.int64)
        return np.searchsorted(np.asarray(self.levels, dtype=str), np.asarray(values).astype(str)).astype(np.int64)


@dataclasses.dataclass(frozen=True, eq=False)
class Chunk:
    """Rows `start .. start + len(y)` of the file (after "drop" removed incomplete rows), encoded."""

    start: int
    X: np.ndarray
    y: np.ndarray
    sensitive: Mapping[str, np.ndarray]
    unknown_levels: Mapping[str, int]


@dataclasses.dataclass(frozen=True, eq=False)
class TabularStream:
    """A tabular file audited without loading it whole (module docstring). `sample` is a Dataset of
    the seeded sample rows (`sample_positions` in the file), encoded with `encoding`, which was
    fitted on them; `n_rows` counts every row of the file."""

    path: str
    options: Mapping[str, Any]
    class_names: tuple[str, ...]
    encoding: TabularEncoding
    sample: Dataset
    sample_positions: np.ndarray
    n_rows: int
    chunk_rows: int
    sample_rows: int
    seed: int
    name: str
    attributes: Mapping[str, _Attribute]

    @property
    def n_classes(self) -> int:
        return len(self.class_names)

    @property
    def sensitive(self) -> tuple[str, ...]:
        return tuple(self.options["sensitive"])

    def groups(self, attribute: str, *, edges: Sequence[float] | None = None, n_bins: int = 4) -> StreamGroups:
        """The grouping of one sensitive attribute over every row (see StreamGroups)."""
        if attribute not in self.attributes:
            raise AuditInputError(f"{self.name} has no sensitive attribute {attribute!r}; it has "
                                  f"{sorted(self.attributes)}.")
        a = self.attributes[attribute]
        if not a.numeric:
            levels = tuple(sorted(str(v) for v in a.levels))
            return StreamGroups(attribute, levels, "one group per value", levels=levels)
        if edges is None and len(a.levels) <= MAX_LEVELS:
            levels = tuple(sorted(float(v) for v in a.levels))
            return StreamGroups(attribute, tuple(_fmt(v) for v in levels), "one group per value", levels=levels)
        values = np.asarray(self.sample.sensitive[attribute], np.float64)
        cuts, labels, rule = binning(values, attribute, edges, n_bins, lo=a.lo, hi=a.hi)
        if edges is None and len(values) < self.n_rows:
            rule = rule.replace("over all rows", f"over a seeded sample of {len(values)} rows")
        return StreamGroups(attribute, labels, rule, cuts=cuts)

    def chunks(self) -> Iterator[Chunk]:
        """The whole file again, encoded, at most `chunk_rows` rows at a time."""
        o = self.options
        imputes = self.encoding.imputation is not None
        start = 0
        for k, frame in enumerate(read_frames(self.path, chunk_rows=self.chunk_rows)):
            df, y, _, inputs = _checked(frame, start, self.name, o, self.class_names, imputes)
            raw = self.encoding.raw_matrix(input_frame(df, inputs, o["categorical"]).astype(
                {c: str for c in inputs if c in o["categorical"]}))
            yield Chunk(start=start, X=self.encoding.encode(raw), y=y.astype(np.int64),
                        sensitive=sensitive_values(df, o["sensitive"]),
                        unknown_levels=self.encoding.unknown_rows(raw))
            start += len(frame)

    def score(self, model, sinks: Sequence[Any]) -> dict[str, Any]:
        """One pass over the file: each chunk's class probabilities from `model` go to every sink's
        `update(chunk, proba)`. Returns what the pass saw: rows, chunks and the rows per column
        whose category level the encoding never saw."""
        rows = chunks = 0
        unknown: dict[str, int] = {}
        for chunk in self.chunks():
            proba = np.asarray(model.predict_proba(chunk.X), np.float64)
            for sink in sinks:
                sink.update(chunk, proba)
            rows, chunks = rows + len(chunk.y), chunks + 1
            for col, k in chunk.unknown_levels.items():
                unknown[col] = unknown.get(col, 0) + k
        return {"rows": rows, "chunks": chunks, "unknown_levels": unknown}

    def sample_proba(self, model) -> np.ndarray:
        """The model's class probabilities on the sample rows (float64)."""
        return np.asarray(model.predict_proba(self.sample.X), np.float64)

    def summary(self) -> dict[str, Any]:
        """JSON-ready facts about the stream for the report's metadata."""
        return {"path": self.path, "format": file_format(self.path), "rows": self.n_rows,
                "chunk_rows": self.chunk_rows, "chunks": -(-self.n_rows // self.chunk_rows),
                "sample_rows": len(self.sample_positions), "seed": self.seed,
                "encoding_fitted_on": f"a seeded sample of {len(self.sample_positions)} rows"}


def _checked(frame: pd.DataFrame, start: int, name: str, o: Mapping[str, Any], class_names, imputes: bool):
    """validate_frame on one chunk; an error names the file rows of the chunk."""
    try:
        return validate_frame(frame, target=o["target"], sensitive=o["sensitive"], categorical=o["categorical"],
                              drop=o["drop"], include_sensitive=o["include_sensitive"],
                              class_names=class_names, name=name, missing=o["missing"], imputes=imputes)
    except AuditInputError as exc:
        raise AuditInputError(f"{name}, chunk of file rows {start}..{start + len(frame) - 1} (row numbers "
                              f"below count from the chunk's first row): {exc}") from None


def _positive(value: Any, key: str) -> int:
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
        raise AuditInputError(f"stream {key} must be a positive integer, got {value!r}.")
    return int(value)


def open_stream(path: str | os.PathLike, *, target: str, sensitive: Sequence[str] = (),
                categorical: Sequence[str] = (), drop: Sequence[str] = (), include_sensitive: bool = False,
                class_names: Sequence[str] | None = None, missing: dict | None = None,
                chunk_rows: int = 200_000, sample_rows: int = 20_000, seed: int = 0,
                fractions: Sequence[float] = (0.6, 0.2, 0.2), name: str | None = None) -> TabularStream:
    """Read a CSV or Parquet file in chunks of `chunk_rows` rows, validating each with the checks of
    `from_pandas` (the first chunk before anything else; an error names the file rows), and draw a
    seeded sample of `sample_rows` rows. The encoding (and the imputer, with `missing`) is fitted on
    the sample; `sample` splits it (train/val/test by `fractions`, seeded) for the per-example
    analyzers. Same keyword arguments as `from_pandas`, plus the stream's sizes."""
    path = os.fspath(path)
    chunk_rows, sample_rows = _positive(chunk_rows, "chunk_rows"), _positive(sample_rows, "sample_rows")
    missing = check_options(missing)
    name = name or os.path.splitext(os.path.basename(path))[0]
    names = header(path)
    _check_unique(names, f"{file_format(path).upper()} {path!r}")
    o = {"target": target, "sensitive": tuple(sensitive), "categorical": tuple(categorical), "drop": tuple(drop),
         "include_sensitive": include_sensitive, "missing": missing}
    rng = np.random.default_rng(seed)
    labels: set = set()
    attributes = {a: _Attribute() for a in sensitive}
    kept, keys, where = [], np.zeros(0), np.zeros(0, np.int64)
    n = 0
    for frame in read_frames(path, chunk_rows=chunk_rows):
        df, _, _, _ = _checked(frame, n, name, o, class_names, imputes=False)
        labels.update(df[target].unique().tolist())
        for a, values in sensitive_values(df, sensitive).items():
            attributes[a].update(values, a)
        # bottom-k of one uniform key per row: a uniform sample that does not depend on chunk_rows
        draw = rng.random(len(frame))
        keys, where = np.concatenate([keys, draw]), np.concatenate([where, n + np.arange(len(frame))])
        kept.append(frame)
        if len(keys) > sample_rows:
            keep = np.sort(np.argpartition(keys, sample_rows - 1)[:sample_rows])
            pool = pd.concat(kept, ignore_index=True)
            kept, keys, where = [pool.iloc[keep].reset_index(drop=True)], keys[keep], where[keep]
        n += len(frame)
    if n == 0:
        raise AuditInputError(f"{name}: the data has no rows.")
    if class_names is None:
        class_names = tuple(str(c) for c in sorted(labels, key=lambda v: (str(type(v)), v)))
    class_names = tuple(str(c) for c in class_names)
    if len(class_names) < 2:
        raise AuditInputError(f"target {target!r} has a single class ({class_names[0]!r}) in all {n} rows; "
                              "a classifier needs two or more.")
    order = np.argsort(where, kind="stable")
    rows = pd.concat(kept, ignore_index=True).iloc[order].reset_index(drop=True)
    df, y, _, inputs = _checked(rows, 0, f"{name} (sample)", o, class_names, imputes=False)
    encoding = TabularEncoding.fit(input_frame(df, inputs, categorical), categorical=list(categorical),
                                   missing=missing)
    try:
        sample = from_pandas(rows, target=target, sensitive=sensitive, categorical=categorical, drop=drop,
                             include_sensitive=include_sensitive, class_names=class_names, fractions=fractions,
                             seed=seed, name=name, encoding=encoding, missing=missing)
    except AuditInputError as exc:
        raise AuditInputError(f"{name}: the seeded sample of {len(rows)} rows cannot be audited ({exc}); "
                              "raise stream sample_rows.") from None
    return TabularStream(path=path, options=o, class_names=class_names, encoding=encoding, sample=sample,
                         sample_positions=where[order], n_rows=n, chunk_rows=chunk_rows,
                         sample_rows=sample_rows, seed=seed, name=name, attributes=attributes)
