"""Shared pieces of analyzer results: findings, provenance and JSON conversion of arrays.

Every analyzer result is a frozen dataclass on the `Result` codec (`to_dict()` / `from_dict()`
driven by its fields' type hints), with a `SCHEMA` version, a `Provenance`, `metrics()` (flat
name -> float, what policies refer to), `METRICS` (a `MetricSpec` declaring each metric's
direction and meaning) and `findings` (sanity checks and warnings the analyzer raises about itself
or the model).
"""

from __future__ import annotations

import collections.abc
import dataclasses
import functools
import re
import time
import types
import typing
from contextlib import contextmanager
from typing import Any, ClassVar, Iterable, Iterator, Mapping

import numpy as np

from audit.errors import AuditInputError

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


# --- Metric declarations -------------------------------------------------------------------------

DIRECTIONS = ("higher", "lower", "info")
_PLACEHOLDER = re.compile(r"<([A-Za-z_][A-Za-z0-9_]*)>")


@dataclasses.dataclass(frozen=True)
class MetricSpec:
    """What one metric means, declared next to the `metrics()` that produces it.

    `pattern` is the metric name as `metrics()` yields it, with `<placeholders>` for the parts that
    vary (`"robust_accuracy:<attack>@<eps>"`); `direction` says which way is better ("higher",
    "lower", or "info" when neither is); `title` is the human title (placeholders allowed);
    `meaning` is one sentence: what the number is, on which rows. Diff, policy and the report read
    these instead of guessing from the name.
    """

    pattern: str
    direction: str
    title: str
    meaning: str

    def __post_init__(self) -> None:
        if self.direction not in DIRECTIONS:
            raise ValueError(f"metric {self.pattern!r}: direction {self.direction!r} must be one of {DIRECTIONS}")
        names = _PLACEHOLDER.findall(self.pattern)
        if len(names) != len(set(names)):
            raise ValueError(f"metric {self.pattern!r}: a placeholder appears twice")

    @functools.cached_property
    def _regex(self) -> re.Pattern[str]:
        parts, last = [], 0
        for m in _PLACEHOLDER.finditer(self.pattern):
            parts += [re.escape(self.pattern[last:m.start()]), f"(?P<{m.group(1)}>.+?)"]
            last = m.end()
        parts.append(re.escape(self.pattern[last:]))
        return re.compile("".join(parts))

    def matches(self, name: str) -> bool:
        return self._regex.fullmatch(name) is not None

    def title_for(self, name: str) -> str:
        """The title with placeholders filled from `name` (the pattern's title if it does not match)."""
        m = self._regex.fullmatch(name)
        if m is None:
            return self.title
        return _PLACEHOLDER.sub(lambda p: m.groupdict().get(p.group(1), p.group(0)), self.title)

    def better(self, old: float, new: float) -> bool | None:
        """Whether `new` is better than `old` (None for "info" metrics or equal values)."""
        if self.direction == "info" or new == old:
            return None
        return (new > old) == (self.direction == "higher")


def metric_spec(specs: Iterable[MetricSpec], name: str) -> MetricSpec | None:
    """The first spec whose pattern matches `name`, or None when the metric is undeclared."""
    return next((s for s in specs if s.matches(name)), None)


# --- The result codec ----------------------------------------------------------------------------

class Result:
    """Mixin for frozen result dataclasses: one JSON codec driven by the fields' type hints.

    Declare `@dataclasses.dataclass(frozen=True, eq=False) class R(Result)` with `SCHEMA =
    "audit.<package>[.<name>]/<version>"` (None for results only ever nested in another) and
    `METRICS` (a MetricSpec for every key `metrics()` can yield). `to_dict()` gives `"schema"` plus
    every field, numpy arrays kept as arrays (the JSON writer turns them into lists or a sidecar);
    `from_dict()` checks the schema (`LEGACY_SCHEMAS` lists older ones still readable) and rebuilds
    every field from its type hint. `==` compares field by field, arrays NaN-equal; results are
    not hashable. A NaN in a `float | None` field comes back as None (JSON has no NaN).
    """

    SCHEMA: ClassVar[str | None] = None
    LEGACY_SCHEMAS: ClassVar[tuple[Any, ...]] = ()
    METRICS: ClassVar[tuple[MetricSpec, ...]] = ()

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {} if self.SCHEMA is None else {"schema": self.SCHEMA}
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            out[f.name] = _encode(getattr(self, f.name))
        return out

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Any:
        if not isinstance(d, Mapping):
            raise AuditInputError(f"{cls.__name__}: expected a JSON object, got {type(d).__name__}.")
        if cls.SCHEMA is not None:
            schema = d.get("schema")
            if schema != cls.SCHEMA and schema not in cls.LEGACY_SCHEMAS:
                raise AuditInputError(
                    f"{cls.__name__}: this file has schema {schema!r}, this version of flax-audit reads "
                    f"{cls.SCHEMA!r}; re-run the audit with this version to regenerate it.")
        hints = _type_hints(cls)
        kwargs = {}
        for f in dataclasses.fields(cls):  # type: ignore[arg-type]
            if f.name not in d:
                if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                    raise AuditInputError(f"{cls.__name__}: the stored result has no field {f.name!r}; "
                                          "the file is damaged or from another tool.")
                continue
            where = f"{cls.__name__}.{f.name}"
            try:
                kwargs[f.name] = _decode(d[f.name], hints.get(f.name, Any), where)
            except AuditInputError:
                raise
            except (TypeError, ValueError, KeyError) as e:
                raise AuditInputError(f"{where}: the stored value does not fit ({e}); the file is damaged "
                                      "or from another tool.") from e
        return cls(**kwargs)

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return all(_equal(getattr(self, f.name), getattr(other, f.name))
                   for f in dataclasses.fields(self))  # type: ignore[arg-type]

    __hash__ = None  # type: ignore[assignment]


@functools.lru_cache(maxsize=None)
def _type_hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _encode(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value
    if isinstance(value, np.generic):
        return value.item()
    if dataclasses.is_dataclass(value) and hasattr(value, "to_dict"):
        return value.to_dict()
    if isinstance(value, Mapping):
        return {_key(k): _encode(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_encode(v) for v in value]
    return value


def _key(k: Any) -> str:
    return str(k.item() if isinstance(k, np.generic) else k)


_NONE_TYPES = (type(None),)


def _decode(value: Any, tp: Any, where: str) -> Any:
    """Rebuild `value` (as `to_dict` or JSON left it) as type `tp`."""
    if tp is Any or tp is object:
        return value
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in args if a not in _NONE_TYPES]
        if value is None and len(options) < len(args):
            return None
        errors = []
        for option in options:
            try:
                return _decode(value, option, where)
            except (TypeError, ValueError, KeyError) as e:
                errors.append(e)
        raise AuditInputError(f"{where}: {value!r:.80} fits none of {tp}.")
    if origin is typing.Literal:
        return value
    if tp is np.ndarray or origin is np.ndarray:
        return _decode_array(value, args)
    if isinstance(tp, type) and issubclass(tp, (Result,)) or (dataclasses.is_dataclass(tp) and hasattr(tp, "from_dict")):
        if not isinstance(value, Mapping):
            raise TypeError(f"{where}: expected an object for {tp.__name__}")
        return tp.from_dict(value)
    if origin in (tuple, list, collections.abc.Sequence) or tp in (tuple, list):
        if not isinstance(value, (list, tuple, np.ndarray)):
            raise TypeError(f"{where}: expected a list, got {type(value).__name__}")
        items = list(value)
        if origin is tuple and args and not (len(args) == 2 and args[1] is Ellipsis):
            if len(args) != len(items):
                raise ValueError(f"{where}: expected {len(args)} items, got {len(items)}")
            return tuple(_decode(v, a, where) for v, a in zip(items, args))
        inner = args[0] if args else Any
        decoded = [_decode(v, inner, where) for v in items]
        return decoded if (origin is list or tp is list) else tuple(decoded)
    if origin in (dict, collections.abc.Mapping) or tp in (dict,):
        if not isinstance(value, Mapping):
            raise TypeError(f"{where}: expected an object, got {type(value).__name__}")
        key_type, value_type = (args + (Any, Any))[:2] if args else (Any, Any)
        return {_decode_key(k, key_type): _decode(v, value_type, where) for k, v in value.items()}
    if tp is float:
        if value is None:
            return float("nan")
        if isinstance(value, bool) or not isinstance(value, (int, float, np.number)):
            raise TypeError(f"{where}: expected a number, got {value!r:.80}")
        return float(value)
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) and not (
                isinstance(value, float) and value.is_integer()):
            raise TypeError(f"{where}: expected an integer, got {value!r:.80}")
        return int(value)
    if tp is bool:
        if not isinstance(value, (bool, np.bool_)):
            raise TypeError(f"{where}: expected true/false, got {value!r:.80}")
        return bool(value)
    if tp is str:
        if not isinstance(value, str):
            raise TypeError(f"{where}: expected a string, got {value!r:.80}")
        return value
    return value


def _decode_key(k: Any, key_type: Any) -> Any:
    return int(k) if key_type is int else float(k) if key_type is float else k


def _decode_array(value: Any, args: tuple[Any, ...]) -> np.ndarray:
    dtype = None
    if len(args) == 2:  # npt.NDArray[X] is np.ndarray[Any, np.dtype[X]]
        dtype_args = typing.get_args(args[1])
        if dtype_args and isinstance(dtype_args[0], type):
            dtype = dtype_args[0]
    if isinstance(value, np.ndarray):
        return value if dtype is None else value.astype(dtype, copy=False)
    if not isinstance(value, (list, int, float, bool)) and value is not None:
        raise TypeError(f"expected an array, got {type(value).__name__}")
    if dtype is None:
        dtype = np.float64 if _has_none(value) else None
    if dtype is not None and np.dtype(dtype).kind in "fc":
        return np.array(_none_to_nan(value), dtype=dtype)
    out = np.asarray(value, dtype=dtype)
    return out.astype(np.float64) if out.size == 0 and dtype is None else out


def _has_none(value: Any) -> bool:
    if value is None:
        return True
    return isinstance(value, list) and any(_has_none(v) for v in value)


def _equal(a: Any, b: Any) -> bool:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        a, b = np.asarray(a), np.asarray(b)
        if a.shape != b.shape:
            return False
        try:
            return bool(np.array_equal(a, b, equal_nan=True))
        except TypeError:
            return bool(np.array_equal(a, b))
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        return a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b))
    if isinstance(a, (float, np.floating)) and isinstance(b, (float, np.floating)):
        return bool(a == b or (np.isnan(a) and np.isnan(b)))
    return bool(a == b)
