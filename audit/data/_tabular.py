"""Build a tabular `Dataset` from a pandas DataFrame or a CSV file, validating at the edge."""

from __future__ import annotations

import os
from typing import Sequence

import numpy as np
import pandas as pd

from audit.data._dataset import Dataset, stratified_split
from audit.data._encoding import TabularEncoding
from audit.data._missing import check_options
from audit.errors import AuditInputError


def _check_columns(df: pd.DataFrame, names: Sequence[str], role: str) -> None:
    missing = [n for n in names if n not in df.columns]
    if missing:
        raise AuditInputError(f"{role} column(s) {missing} not found; the data has columns "
                              f"{[str(c) for c in df.columns]}.")


def _check_unique(columns: Sequence[str], where: str) -> None:
    """Duplicated headers would feed the model one column twice and split its importance."""
    seen: set[str] = set()
    for c in columns:
        if c in seen:
            raise AuditInputError(f"{where}: column {c!r} appears more than once in the header; rename or "
                                  "drop the duplicate (each column must have a unique name).")
        seen.add(c)


def _check_numeric(df: pd.DataFrame, name: str, *, allow_missing: bool = False) -> None:
    values = pd.to_numeric(df[name], errors="coerce")
    bad = np.flatnonzero(values.isna().to_numpy() & df[name].notna().to_numpy())
    if bad.size:
        raise AuditInputError(
            f"column {name!r} row {int(bad[0])}: value {df[name].iloc[bad[0]]!r} is not a number; "
            f"fix it or list {name!r} in categorical=[...].")
    numbers = values.to_numpy(dtype=np.float64)
    finite = np.isfinite(numbers) | (allow_missing & np.isnan(numbers))
    if not finite.all():
        row = int(np.flatnonzero(~finite)[0])
        raise AuditInputError(f"column {name!r} row {row}: missing, NaN or infinite value "
                              f"({int((~finite).sum())} rows); impute or drop them first.")


def _levels_in_train(splits: dict[str, np.ndarray], frame: pd.DataFrame,
                     categorical: Sequence[str]) -> dict[str, np.ndarray]:
    """Move one row of every category level absent from the training rows into them, so a
    rare level never makes loading depend on the seed (levels unseen later encode as all-zero)."""
    in_train = np.zeros(len(frame), bool)
    in_train[splits["train"]] = True
    moved: list[int] = []
    for col in categorical:
        if col not in frame.columns:
            continue
        codes, levels = pd.factorize(frame[col].astype(str).to_numpy())  # hashing, not sorting strings
        seen = np.bincount(codes[in_train], minlength=len(levels)) > 0
        if seen.all():
            continue
        _, first = np.unique(codes, return_index=True)  # first row of every level (codes are 0..k-1)
        new = [int(first[k]) for k in np.flatnonzero(~seen)]
        in_train[new] = True  # later columns see the moved rows as training rows
        moved += new
    if not moved:
        return splits
    train = np.union1d(splits["train"], moved).astype(np.int64)
    return {"train": train, **{k: np.asarray(v, np.int64)[~np.isin(v, moved)] for k, v in splits.items()
                               if k != "train"}}


def validate_frame(df: pd.DataFrame, *, target: str, sensitive: Sequence[str], categorical: Sequence[str],
                   drop: Sequence[str], include_sensitive: bool, class_names: Sequence[str] | None,
                   name: str, missing: dict | None, imputes: bool) -> tuple[pd.DataFrame, np.ndarray, tuple[str, ...], list[str]]:
    """The checks `from_pandas` makes on a frame (columns, labels, numbers, the missing-value
    policy), without the two-class check so that one chunk of a larger file may hold one class.
    `missing` is checked options; `imputes` says an encoding already fills missing values.
    Returns (frame, class ids, class names, input column names); "drop" removes incomplete rows."""
    if not isinstance(df, pd.DataFrame):
        raise AuditInputError(f"expected a pandas DataFrame, got {type(df).__name__}.")
    if len(df) == 0:
        raise AuditInputError(f"{name}: the data has no rows.")
    _check_unique([str(c) for c in df.columns], name)
    _check_columns(df, [target], "target")
    _check_columns(df, sensitive, "sensitive")
    _check_columns(df, categorical, "categorical")
    _check_columns(df, drop, "drop")
    df = df.reset_index(drop=True)
    holes = [str(c) for c in df.columns if c not in {target, *drop} and df[c].isna().any()
             and c not in categorical and c not in sensitive]
    if holes and missing is None and not imputes:
        raise AuditInputError(
            f"{name}: column(s) {holes} have missing values ({', '.join(f'{c}: {int(df[c].isna().sum())} rows, first at row {int(np.flatnonzero(df[c].isna())[0])}' for c in holes)}); "
            "say how the model's pipeline fills them with missing={'strategy': 'mean' | 'median' | "
            "'most_frequent' | 'knn' | 'iterative' | 'indicator' | 'drop', 'indicators': True/False} "
            "(the config's data section takes the same 'missing' mapping).")
    if missing is not None and missing["strategy"] == "drop" and holes:
        df = df.loc[~df[holes].isna().any(axis=1)].reset_index(drop=True)
        if len(df) == 0:
            raise AuditInputError(f"{name}: every row has a missing value; missing strategy 'drop' leaves none.")
    labels = df[target]
    if labels.isna().any():
        raise AuditInputError(f"target column {target!r} row {int(np.flatnonzero(labels.isna())[0])} "
                              "is missing; drop unlabeled rows first.")
    if pd.api.types.is_float_dtype(labels):
        fractional = np.flatnonzero(labels.to_numpy(np.float64) % 1 != 0)
        if len(fractional):
            row = int(fractional[0])
            raise AuditInputError(f"target {target!r} holds continuous values (row {row}: {labels.iloc[row]!r}); "
                                  "flax-audit audits classifiers: use a column of class labels, or bin "
                                  "this one first.")
    if class_names is None:
        class_names = tuple(str(c) for c in sorted(labels.unique(), key=lambda v: (str(type(v)), v)))
    class_names = tuple(str(c) for c in class_names)
    if len(set(class_names)) != len(class_names):
        raise AuditInputError(f"class_names {list(class_names)} repeat a name; give each class once.")
    label_text = labels.astype(str).to_numpy()
    y = pd.Index(class_names).get_indexer(label_text).astype(np.int32)  # hashed lookup, -1: unknown
    if (y < 0).any():
        unknown = sorted(set(label_text[y < 0].tolist()))
        raise AuditInputError(f"target {target!r} has values {unknown} that are not in "
                              f"class_names {list(class_names)}.")
    excluded = {target, *drop} | (set() if include_sensitive else set(sensitive))
    inputs = [c for c in df.columns if c not in excluded]
    if not inputs:
        raise AuditInputError(f"{name}: no input columns are left after removing target, drop "
                              "and sensitive columns.")
    for col in inputs:
        if col in categorical:
            if df[col].isna().any():
                row = int(np.flatnonzero(df[col].isna().to_numpy())[0])
                raise AuditInputError(f"categorical column {col!r} row {row} is missing; fill it "
                                      "(e.g. with 'unknown') first.")
        else:
            _check_numeric(df, col, allow_missing=missing is not None or imputes)
    return df, y, class_names, inputs


def input_frame(df: pd.DataFrame, inputs: Sequence[str], categorical: Sequence[str]) -> pd.DataFrame:
    """The model's input columns of a validated frame, numeric ones as numbers."""
    frame = df[list(inputs)].copy()
    for col in inputs:
        if col not in categorical:
            frame[col] = pd.to_numeric(frame[col])
    return frame


def sensitive_values(df: pd.DataFrame, sensitive: Sequence[str]) -> dict[str, np.ndarray]:
    """Group labels per sensitive column: numbers kept as numbers, anything else as text."""
    groups = {}
    for col in sensitive:
        if df[col].isna().any():
            raise AuditInputError(f"sensitive column {col!r} row {int(np.flatnonzero(df[col].isna())[0])} "
                                  "is missing; label it (e.g. 'unknown') first.")
        values = df[col].to_numpy()
        groups[col] = values if values.dtype.kind in "iuf" else values.astype(str)
    return groups


def from_pandas(df: pd.DataFrame, *, target: str, sensitive: Sequence[str] = (),
                categorical: Sequence[str] = (), drop: Sequence[str] = (),
                include_sensitive: bool = False, class_names: Sequence[str] | None = None,
                fractions: Sequence[float] = (0.6, 0.2, 0.2), seed: int = 0,
                name: str = "dataset", encoding: TabularEncoding | None = None,
                missing: dict | None = None) -> Dataset:
    """A tabular Dataset from a DataFrame.

    Every column except `target`, `drop` (and `sensitive`, unless `include_sensitive`) becomes a
    model input: `categorical` ones one-hot, the rest standardised with the training rows'
    statistics. Sensitive columns are kept per row as group labels for the fairness analysis.
    A category level missing from the training rows gets one of its rows moved there. Pass the
    `encoding` of the data a model was trained on to encode new data the same way: levels it
    never saw become all-zero one-hots, counted in `Dataset.unknown_levels`.

    Missing numeric values are an AuditInputError naming the columns unless `missing` says how
    the model's pipeline handles them: `{"strategy": "mean" | "median" | "most_frequent" | "knn" |
    "iterative" | "indicator" | "drop", "indicators": bool}` (plus `n_neighbors`, `max_iter`,
    `seed` for knn / iterative). The scikit-learn imputer is fitted on the training rows only,
    stored in the encoding and applied to every split; "indicator" (or `indicators: True`) adds a
    0/1 input `<column>__missing` per column with missing training values, grouped with its
    column; "drop" removes incomplete rows. `Dataset.missing_mask` keeps the raw missingness.
    """
    missing = check_options(missing)
    df, y, class_names, inputs = validate_frame(
        df, target=target, sensitive=sensitive, categorical=categorical, drop=drop,
        include_sensitive=include_sensitive, class_names=class_names, name=name, missing=missing,
        imputes=encoding is not None and encoding.imputation is not None)
    if len(np.unique(y)) < 2:
        raise AuditInputError(f"target {target!r} has a single class ({class_names[int(y[0])]!r}); "
                              "a classifier needs two or more.")
    frame = input_frame(df, inputs, categorical)
    if encoding is None:
        splits = _levels_in_train(stratified_split(y, fractions=fractions, seed=seed), frame, categorical)
        encoding = TabularEncoding.fit(frame.iloc[splits["train"]], categorical=list(categorical), missing=missing)
    else:
        if list(encoding.raw_names) != inputs:
            raise AuditInputError(f"{name}: the given encoding takes columns {list(encoding.raw_names)}, "
                                  f"the data's inputs are {inputs}.")
        splits = stratified_split(y, fractions=fractions, seed=seed)
    raw = encoding.raw_matrix(frame.astype({c: str for c in inputs if c in categorical}))
    groups = sensitive_values(df, sensitive)
    mask = np.isnan(raw)
    return Dataset(X=encoding.encode(raw), y=y, feature_names=encoding.input_names,
                   class_names=class_names, kind="tabular", sensitive=groups, splits=splits,
                   encoding=encoding, raw=encoding.impute(raw), name=name,
                   unknown_levels=encoding.unknown_rows(raw),
                   missing_mask=mask if mask.any() else None)


def from_csv(path: str | os.PathLike, **kwargs) -> Dataset:
    """`from_pandas` on a CSV file; the same keyword arguments."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise AuditInputError(f"CSV file {path!r} does not exist.")
    import csv

    try:
        with open(path, newline="") as f:  # pandas would silently rename a duplicate to 'income.1'
            header = next(csv.reader(f), [])
        _check_unique(header, f"CSV {path!r}")
        df = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise AuditInputError(f"cannot read CSV {path!r}: {exc}") from None
    kwargs.setdefault("name", os.path.splitext(os.path.basename(path))[0])
    return from_pandas(df, **kwargs)


def from_parquet(path: str | os.PathLike, **kwargs) -> Dataset:
    """`from_pandas` on a Parquet file read whole; the same keyword arguments (for a file larger than
    memory, `audit.data.open_stream`)."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise AuditInputError(f"Parquet file {path!r} does not exist.")
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        _check_unique(list(pq.read_schema(path).names), f"Parquet {path!r}")
        df = pq.read_table(path).to_pandas()
    except (pa.ArrowInvalid, OSError) as exc:
        raise AuditInputError(f"cannot read Parquet {path!r}: {exc}") from None
    kwargs.setdefault("name", os.path.splitext(os.path.basename(path))[0])
    return from_pandas(df, **kwargs)
