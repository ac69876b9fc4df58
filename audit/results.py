"""Shared pieces of analyzer results: findings, provenance and JSON conversion of arrays.

Every analyzer result is a frozen dataclass with `to_dict()` / `from_dict()`, a `SCHEMA`
version, a `Provenance`, `metrics()` (flat name -> float, what policies refer to) and
`findings` (sanity checks and warnings the analyzer raises about itself or the model).
"""

from __future__ import annotations

import dataclasses
import time
from contextlib import contextmanager
from typing import Any, Iterator, Mapping

import numpy as np

STATUSES = ("pass", "warn", "fail")


@dataclasses.dataclass(frozen=True)
class Finding:
    """One verdict: `status` is pass / warn / fail; `message` is one sentence for people."""

    id: str
    status: str
    title: str
    message: str
    metric: str | None = None
    value: float | None = None
    threshold: float | None = None

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"finding status {self.status!r} must be one of {STATUSES}")

    def to_dict(self) -> dict[str, Any]:
        return to_jsonable(dataclasses.asdict(self))  # a NaN value becomes None, JSON-safe

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Finding":
        return cls(**{f.name: d.get(f.name) for f in dataclasses.fields(cls)})


@dataclasses.dataclass(frozen=True)
class Provenance:
    """How a result was made: method, settings, seed, seconds taken."""

    method: str
    settings: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    seed: int | None = None
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"method": self.method, "settings": to_jsonable(dict(self.settings)),
                "seed": self.seed, "seconds": self.seconds}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Provenance":
        return cls(method=d["method"], settings=dict(d.get("settings") or {}), seed=d.get("seed"),
                   seconds=float(d.get("seconds", 0.0)))


@contextmanager
def timer() -> Iterator[list[float]]:
    """`with timer() as t: ...`; afterwards `t[0]` holds the seconds taken."""
    box = [0.0]
    start = time.perf_counter()
    try:
        yield box
    finally:
        box[0] = time.perf_counter() - start


def to_jsonable(value: Any) -> Any:
    """numpy arrays/scalars -> lists/floats, recursively; NaN and inf become None."""
    if isinstance(value, np.ndarray):
        if value.dtype.kind in "fc":
            return [to_jsonable(v) for v in value.tolist()] if value.ndim else to_jsonable(value.item())
        return value.tolist()
    if isinstance(value, (np.floating, float)):
        value = float(value)
        return value if np.isfinite(value) else None
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.bool_,)):
        return bool(value)
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if dataclasses.is_dataclass(value) and hasattr(value, "to_dict"):
        return value.to_dict()
    return value


def array(value: Any, dtype: Any = np.float64) -> np.ndarray:
    """JSON list -> numpy array; None (a NaN or inf written by `to_jsonable`) -> NaN for floats."""
    if np.dtype(dtype).kind == "f":
        return np.array(_none_to_nan(value), dtype=dtype)
    return np.asarray(value, dtype=dtype)


def _none_to_nan(value: Any) -> Any:
    if value is None:
        return np.nan
    if isinstance(value, list):
        return [_none_to_nan(v) for v in value]
    return value
