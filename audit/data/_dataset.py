"""`Dataset`: model inputs, labels, names, sensitive attributes and a seeded split."""

from __future__ import annotations

import dataclasses
import hashlib
from typing import Any, Mapping, Sequence

import numpy as np

from audit.data._encoding import TabularEncoding
from audit.errors import AuditInputError

SPLITS = ("train", "val", "test")


def stratified_split(y: np.ndarray, *, fractions: Sequence[float] = (0.6, 0.2, 0.2),
                     seed: int = 0) -> dict[str, np.ndarray]:
    """Seeded stratified train/val/test indices (each class split in the same proportions)."""
    if len(fractions) != 3 or min(fractions) <= 0 or abs(sum(fractions) - 1) > 1e-9:
        raise AuditInputError(f"split fractions {tuple(fractions)} must be three positive numbers "
                              "summing to 1, e.g. (0.6, 0.2, 0.2).")
    rng = np.random.default_rng(seed)
    parts: dict[str, list[np.ndarray]] = {s: [] for s in SPLITS}
    for c in np.unique(y):
        rows = rng.permutation(np.flatnonzero(y == c))
        cut1 = int(round(fractions[0] * len(rows)))
        cut2 = cut1 + int(round(fractions[1] * len(rows)))
        for name, chunk in zip(SPLITS, (rows[:cut1], rows[cut1:cut2], rows[cut2:])):
            parts[name].append(chunk)
    return {s: np.sort(np.concatenate(p)).astype(np.int64) for s, p in parts.items()}


@dataclasses.dataclass(frozen=True, eq=False)
class Dataset:
    """Model inputs `X` (float32, (n, *input_shape)), labels `y`, names, groups and split.

    `sensitive` maps an attribute name to one group label (or value, e.g. age) per row; these
    need not be model inputs. `splits` maps "train"/"val"/"test" to row indices. For tabular
    data `encoding` maps raw columns to inputs and `raw` holds the raw matrix (categoricals as
    codes), so attributions can be reported per raw column.
    """

    X: np.ndarray
    y: np.ndarray
    feature_names: tuple[str, ...]
    class_names: tuple[str, ...]
    kind: str = "tabular"
    sensitive: Mapping[str, np.ndarray] = dataclasses.field(default_factory=dict)
    splits: Mapping[str, np.ndarray] = dataclasses.field(default_factory=dict)
    encoding: TabularEncoding | None = None
    raw: np.ndarray | None = None
    name: str = "dataset"
    # rows per categorical column whose level the encoding never saw (encoded all-zero); the
    # audit reports them as a finding
    unknown_levels: Mapping[str, int] = dataclasses.field(default_factory=dict)
    # (n, n_raw_columns) bool, True where the raw value was missing (before imputation); None when
    # nothing was missing. `raw` and `X` hold the imputed values.
    missing_mask: np.ndarray | None = None

    def __post_init__(self) -> None:
        X = np.asarray(self.X)
        if X.dtype.kind not in "fiub":
            raise AuditInputError(f"{self.name}: X has dtype {X.dtype}; expected numbers.")
        X = X.astype(np.float32, copy=False)
        y = np.asarray(self.y)
        if X.ndim < 2:
            raise AuditInputError(f"{self.name}: X has shape {X.shape}; expected (n, *input_shape).")
        if y.ndim != 1 or len(y) != len(X):
            raise AuditInputError(f"{self.name}: y has shape {y.shape}; expected ({len(X)},), "
                                  "one class id per row of X.")
        if len(X) == 0:
            raise AuditInputError(f"{self.name}: the data set has no rows.")
        bad = np.flatnonzero(~np.isfinite(X.reshape(len(X), -1)).all(axis=1))
        if bad.size:
            col = int(np.flatnonzero(~np.isfinite(X[bad[0]].ravel()))[0])
            where = f"feature {self.feature_names[col]!r}" if col < len(self.feature_names) else f"input {col}"
            raise AuditInputError(f"{self.name}: X has NaN or infinite values ({bad.size} rows, first "
                                  f"at row {int(bad[0])}, {where}); impute or drop them first.")
        if y.dtype.kind not in "iu" or (y.size and (y.min() < 0 or y.max() >= len(self.class_names))):
            raise AuditInputError(f"{self.name}: y must hold integer class ids in "
                                  f"[0, {len(self.class_names)}) for classes {list(self.class_names)}.")
        if len(np.unique(y)) < 2:
            raise AuditInputError(f"{self.name}: the target has a single class "
                                  f"({self.class_names[int(y[0])]!r}); a classifier needs two or more.")
        if self.kind not in ("tabular", "image"):
            raise AuditInputError(f"{self.name}: kind {self.kind!r} must be 'tabular' or 'image'.")
        if self.kind == "tabular" and len(self.feature_names) != X.shape[1]:
            raise AuditInputError(f"{self.name}: {len(self.feature_names)} feature names for "
                                  f"{X.shape[1]} input columns.")
        sensitive = {}
        for key, values in self.sensitive.items():
            values = np.asarray(values)
            if values.shape != (len(X),):
                raise AuditInputError(f"{self.name}: sensitive attribute {key!r} has shape "
                                      f"{values.shape}; expected ({len(X)},), one value per row.")
            sensitive[str(key)] = values
        splits = dict(self.splits) or {"train": np.arange(len(X)), "val": np.arange(0), "test": np.arange(0)}
        for key, rows in splits.items():
            rows = np.asarray(rows, dtype=np.int64)
            if rows.size and (rows.min() < 0 or rows.max() >= len(X)):
                raise AuditInputError(f"{self.name}: split {key!r} has row indices outside [0, {len(X)}).")
            splits[key] = rows
        object.__setattr__(self, "X", X)
        object.__setattr__(self, "y", y.astype(np.int32))
        object.__setattr__(self, "feature_names", tuple(self.feature_names))
        object.__setattr__(self, "class_names", tuple(str(c) for c in self.class_names))
        object.__setattr__(self, "sensitive", sensitive)
        object.__setattr__(self, "splits", splits)

    @classmethod
    def from_arrays(cls, X: Any, y: Any, *, class_names: Sequence[Any] | None = None,
                    feature_names: Sequence[str] | None = None, kind: str | None = None,
                    sensitive: Mapping[str, Any] | None = None, fractions: Sequence[float] = (0.6, 0.2, 0.2),
                    seed: int = 0, name: str = "dataset") -> "Dataset":
        """A Dataset from arrays: `X` (n, *input_shape) model inputs as they are (images: (n, H, W, C)),
        `y` one label per row (class ids, or any labels: sorted, they become `class_names`).

        `kind` defaults to "image" for inputs with more than one axis, else "tabular" (with
        `feature_names` defaulting to x0, x1, ...). Rows get a seeded stratified train/val/test split.
        """
        X = np.asarray(X)
        labels = np.asarray(y)
        if labels.ndim != 1:
            raise AuditInputError(f"{name}: y has shape {labels.shape}; expected one label per row.")
        if class_names is None:
            if labels.dtype.kind in "iu":
                class_names = tuple(str(c) for c in range(int(labels.max()) + 1 if labels.size else 0))
                ids = labels
            else:
                levels = sorted(np.unique(labels.astype(str)))
                class_names, ids = tuple(levels), np.searchsorted(levels, labels.astype(str))
        else:
            class_names = tuple(str(c) for c in class_names)
            if labels.dtype.kind in "iu":
                ids = labels
            else:
                index = {c: i for i, c in enumerate(class_names)}
                unknown = sorted(set(labels.astype(str)) - set(index))
                if unknown:
                    raise AuditInputError(f"{name}: labels {unknown[:5]} are not in class_names {list(class_names)}.")
                ids = np.array([index[v] for v in labels.astype(str)])
        kind = kind or ("image" if X.ndim > 2 else "tabular")
        if feature_names is None:
            feature_names = tuple(f"x{j}" for j in range(X.shape[1])) if kind == "tabular" and X.ndim == 2 else ()
        ids = np.asarray(ids, dtype=np.int64)
        splits = stratified_split(ids, fractions=fractions, seed=seed) if len(ids) == len(X) else {}
        return cls(X=X, y=ids, feature_names=tuple(feature_names), class_names=class_names, kind=kind,
                   sensitive=dict(sensitive or {}), splits=splits, name=name)

    # ---- shape facts ---------------------------------------------------------------------
    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.X.shape[1:])

    @property
    def n_classes(self) -> int:
        return len(self.class_names)

    def __len__(self) -> int:
        return len(self.X)

    # ---- splits ------------------------------------------------------------------------
    def select(self, rows: np.ndarray, *, name: str | None = None) -> "Dataset":
        """The rows `rows` as a new Dataset (all of them in its "train" split)."""
        rows = np.asarray(rows, dtype=np.int64)
        return dataclasses.replace(
            self, X=self.X[rows], y=self.y[rows],
            sensitive={k: v[rows] for k, v in self.sensitive.items()},
            raw=None if self.raw is None else self.raw[rows],
            missing_mask=None if self.missing_mask is None else self.missing_mask[rows],
            splits={"train": np.arange(len(rows)), "val": np.arange(0), "test": np.arange(0)},
            name=name or self.name)

    def part(self, split: str) -> "Dataset":
        """One split ("train", "val" or "test") as its own Dataset."""
        if split not in self.splits:
            raise AuditInputError(f"{self.name}: no split {split!r}; have {sorted(self.splits)}.")
        if len(self.splits[split]) == 0:
            raise AuditInputError(f"{self.name}: split {split!r} is empty.")
        return self.select(self.splits[split], name=f"{self.name}[{split}]")

    @property
    def train(self) -> "Dataset":
        return self.part("train")

    @property
    def val(self) -> "Dataset":
        return self.part("val")

    @property
    def test(self) -> "Dataset":
        return self.part("test")

    # ---- tabular helpers ---------------------------------------------------------------
    @property
    def feature_groups(self) -> tuple[tuple[int, ...], ...]:
        """Input indices per raw column (one player per raw column for SHAP)."""
        if self.encoding is not None:
            return self.encoding.groups
        return tuple((i,) for i in range(int(np.prod(self.input_shape))))

    @property
    def raw_feature_names(self) -> tuple[str, ...]:
        return self.encoding.raw_names if self.encoding is not None else self.feature_names

    def fingerprint(self) -> str:
        """sha256 of inputs, labels, sensitive values, split and missingness: identifies the data in reports."""
        h = hashlib.sha256()
        h.update(np.ascontiguousarray(self.X).tobytes())
        h.update(np.ascontiguousarray(self.y).tobytes())
        for key in sorted(self.sensitive):
            h.update(key.encode())
            h.update(np.asarray(self.sensitive[key]).astype(str).astype("U").tobytes())
        for key in sorted(self.splits):
            h.update(key.encode())
            h.update(self.splits[key].tobytes())
        if self.missing_mask is not None:  # imputed values can hide which were missing
            h.update(b"missing")
            h.update(np.packbits(self.missing_mask).tobytes())
        return h.hexdigest()

    def summary(self) -> dict[str, Any]:
        """Small JSON-ready description for model/data cards."""
        counts = np.bincount(self.y, minlength=self.n_classes)
        return {"name": self.name, "kind": self.kind, "rows": len(self), "input_shape": list(self.input_shape),
                "classes": {c: int(n) for c, n in zip(self.class_names, counts)},
                "splits": {k: int(len(v)) for k, v in self.splits.items()},
                "sensitive": sorted(self.sensitive),
                "raw_features": list(self.raw_feature_names) if self.kind == "tabular" else []}
