"""`AuditConfig`: what to audit and the policy it must pass, from YAML or Python, validated.

Unknown keys, wrong types and impossible values are `AuditInputError`s that name the key and,
for YAML files, the line.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any, Mapping

import yaml

from audit.errors import AuditInputError
from audit.models import _factory
from audit.pipeline._card import check_card
from audit.pipeline._policy import Rule
from audit.pipeline._registry import Registry, _settings_parameters, check_settings, spec_for
from audit.pipeline._schema import check_policy, check_values

_TOP = {"name", "seed", "data", "model", "analyzers", "policy", "card"}
_DATA_BUNDLED = {"dataset", "options"}
_DATA_CSV = {"csv", "target", "sensitive", "categorical", "drop", "include_sensitive", "class_names", "missing",
             "stream"}
_DATA_FILE = ("csv", "parquet")  # a table file: the same keys for either
_STREAM = {"chunk_rows", "sample_rows"}
_MODEL = {"path", "train"} | _factory.CONFIG_KEYS
def _positive_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 1


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


_TRAIN_CHECKS = {
    "arch": (lambda v: v in ("mlp", "cnn"), "'mlp' or 'cnn'"),
    "epochs": (_positive_int, "a positive integer"),
    "batch_size": (_positive_int, "a positive integer"),
    "patience": (_positive_int, "a positive integer"),
    "learning_rate": (lambda v: _number(v) and v > 0, "a positive number"),
    "weight_decay": (lambda v: _number(v) and v >= 0, "a non-negative number"),
    "class_weight": (lambda v: v is None or v == "balanced" or isinstance(v, Mapping),
                     "'balanced', a mapping {class id: weight} or null"),
    "widths": (lambda v: isinstance(v, list) and len(v) > 0 and all(map(_positive_int, v)),
               "a list of positive integers, e.g. [64, 32]"),
    "channels": (lambda v: isinstance(v, list) and len(v) == 2 and all(map(_positive_int, v)),
                 "a list of two positive integers, e.g. [32, 64]"),
    "hidden": (_positive_int, "a positive integer"),
    "dropout": (lambda v: _number(v) and 0 <= v < 1, "a number in [0, 1)"),
    "norm": (lambda v: v in (None, "layer", "batch"), "null, 'layer' or 'batch'"),
}
_TRAIN = set(_TRAIN_CHECKS)


def _lines(text: str) -> dict[tuple, int]:
    """Map each key path in a YAML document to its 1-based line number."""
    out: dict[tuple, int] = {}

    def walk(node, path):
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                out[path + (key.value,)] = key.start_mark.line + 1
                walk(value, path + (key.value,))
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                out[path + (i,)] = item.start_mark.line + 1
                walk(item, path + (i,))

    try:
        walk(yaml.compose(text, Loader=yaml.SafeLoader), ())
    except yaml.YAMLError:
        pass
    return out


class _Where:
    """Formats a key path with the file and line it came from, when known."""

    def __init__(self, source: str | None, lines: Mapping[tuple, int]):
        self.source, self.lines = source, lines

    def __call__(self, *path) -> str:
        name = ".".join(str(p) for p in path) or "(top level)"
        line = next((self.lines[tuple(path[:k])] for k in range(len(path), 0, -1)
                     if tuple(path[:k]) in self.lines), None)  # the key's line, else its parent's
        if self.source and line:
            return f"{name!r} ({self.source}, line {line})"
        return repr(name)


def _mapping(value: Any, where: _Where, *path) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise AuditInputError(f"{where(*path)} must be a mapping of keys to values, got {type(value).__name__}.")
    return value


def _known(value: Mapping[str, Any], allowed: set[str], where: _Where, *path) -> None:
    for key in value:
        if key not in allowed:
            raise AuditInputError(f"unknown key {where(*path, key)}; allowed here: {sorted(allowed)}.")


@dataclasses.dataclass(frozen=True)
class AuditConfig:
    """What to audit: data and model sources (for the CLI), analyzers with settings, seed, policy, and
    the model card's text (`card`, see audit/pipeline/_card.py)."""

    name: str = "audit"
    seed: int = 0
    data: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    model: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    analyzers: Mapping[str, Mapping[str, Any]] = dataclasses.field(default_factory=dict)
    policy: tuple[Rule, ...] = ()
    card: Mapping[str, Any] = dataclasses.field(default_factory=dict)  # model card text (pipeline/_card.py)
    source: str | None = None
    # the analyzers this config may name (default: audit.pipeline.ANALYZERS); not part of to_dict
    registry: Registry | None = dataclasses.field(default=None, compare=False, repr=False)
    lines: Mapping[tuple, int] = dataclasses.field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "policy", tuple(
            r if isinstance(r, Rule) else Rule.from_dict(r) for r in self.policy))
        validate(self.to_dict(), self.where, self.registry)
        check_policy(self)

    @property
    def where(self) -> "_Where":
        """Formats a key path with the config file and line it came from (for error messages)."""
        return _Where(self.source, self.lines)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], *, source: str | None = None,
                  lines: Mapping[tuple, int] | None = None, registry: Registry | None = None) -> "AuditConfig":
        where = _Where(source, lines or {})
        d = _mapping(d, where)
        validate(d, where, registry)
        return cls(name=str(d.get("name", "audit")), seed=int(d.get("seed", 0)),
                   data=dict(d.get("data") or {}), model=dict(d.get("model") or {}),
                   analyzers={k: dict(v or {}) for k, v in (d.get("analyzers") or {}).items()},
                   policy=tuple(Rule.from_dict(r, where=where("policy", i))
                                for i, r in enumerate(d.get("policy") or [])),
                   card=dict(d.get("card") or {}), source=source, lines=dict(lines or {}), registry=registry)

    @classmethod
    def from_yaml(cls, path: str | os.PathLike, *, registry: Registry | None = None) -> "AuditConfig":
        path = os.fspath(path)
        if not os.path.isfile(path):
            raise AuditInputError(f"config file {path!r} does not exist.")
        with open(path) as f:
            text = f.read()
        try:
            d = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" at line {mark.line + 1}" if mark else ""
            raise AuditInputError(f"config {path!r} is not valid YAML{where}: "
                                  f"{getattr(exc, 'problem', exc)}.") from None
        if d is None:
            raise AuditInputError(f"config {path!r} is empty.")
        config = cls.from_dict(d, source=path, lines=_lines(text), registry=registry)
        base = os.path.dirname(os.path.abspath(path))
        return dataclasses.replace(config, data=_resolve(config.data, _PATHS["data"], base),
                                   model=_factory.resolve_config_paths(_resolve(config.model, _PATHS["model"], base),
                                                                       base))

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "seed": self.seed, "data": dict(self.data), "model": dict(self.model),
                "analyzers": {k: dict(v) for k, v in self.analyzers.items()},
                "policy": [r.to_dict() for r in self.policy],
                **({"card": dict(self.card)} if self.card else {})}

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)


# Keys that hold file or folder paths, per config section.
_PATHS = {"data": ("csv", "parquet"), "model": ("path", "checkpoint", "python_path")}


def _resolve(section: Mapping[str, Any], keys: tuple[str, ...], base: str) -> dict[str, Any]:
    """Relative paths in a YAML file are relative to the file's folder (wherever the command
    runs from), like paths in a Makefile or a docker-compose file; `~` is the home folder."""
    out = dict(section)
    for key in keys:
        if isinstance(out.get(key), str):
            value = os.path.expanduser(out[key])
            out[key] = os.path.normpath(value if os.path.isabs(value) else os.path.join(base, value))
    return out


def _check_stream(stream: Any, where: _Where) -> None:
    """data.stream: {chunk_rows, sample_rows} (positive integers; either may be left to its default),
    or true for both defaults: audit the file chunk by chunk (audit.data.open_stream)."""
    if stream is True:
        return
    stream = _mapping(stream, where, "data", "stream")
    _known(stream, _STREAM, where, "data", "stream")
    for key, value in stream.items():
        if not _positive_int(value):
            raise AuditInputError(f"{where('data', 'stream', key)} must be a positive integer, got {value!r}.")


def validate(d: Mapping[str, Any], where: _Where, registry: Registry | None = None) -> None:
    """Check a config mapping; raises AuditInputError naming the first bad key."""
    _known(d, _TOP, where)
    if "seed" in d and (not isinstance(d["seed"], int) or isinstance(d["seed"], bool) or d["seed"] < 0):
        raise AuditInputError(f"{where('seed')} must be a non-negative integer, got {d['seed']!r}.")
    if "name" in d and not isinstance(d["name"], str):
        raise AuditInputError(f"{where('name')} must be a string.")
    data = _mapping(d.get("data"), where, "data")
    if data:
        sources = [k for k in ("dataset", *_DATA_FILE) if k in data]
        if len(sources) != 1:
            raise AuditInputError(f"{where('data')} needs exactly one of 'dataset' (a bundled name), 'csv' or "
                                  "'parquet' (a path).")
        file_keys = _DATA_CSV - {"csv"} | {sources[0]}
        _known(data, _DATA_BUNDLED if "dataset" in data else file_keys, where, "data")
        if sources[0] in _DATA_FILE and "target" not in data:
            raise AuditInputError(f"{where('data')} with {sources[0]!r} needs 'target' (the label column).")
        if "stream" in data:
            _check_stream(data["stream"], where)
        if "options" in data:
            _mapping(data["options"], where, "data", "options")
        if "missing" in data:
            from audit.data._missing import check_options

            check_options(data["missing"], where("data", "missing"))
    model = _mapping(d.get("model"), where, "model")
    _known(model, _MODEL, where, "model")
    if model and not isinstance(model.get("path", ""), str):
        raise AuditInputError(f"{where('model', 'path')} must be a directory path.")
    _factory.check_config(model, lambda *keys: where("model", *keys))
    train = _mapping(model.get("train"), where, "model", "train")
    _known(train, _TRAIN, where, "model", "train")
    for key, value in train.items():
        ok, expected = _TRAIN_CHECKS[key]
        if not ok(value):
            raise AuditInputError(f"{where('model', 'train', key)} must be {expected}, got {value!r}.")
    analyzers = _mapping(d.get("analyzers"), where, "analyzers")
    for name, settings in analyzers.items():
        spec = spec_for(name, registry, where=where("analyzers", name))
        settings = _mapping(settings, where, "analyzers", name)
        check_settings(name, settings, lambda key, _n=name: where("analyzers", _n, key), registry)
        check_values(name, settings, lambda key, *index, _n=name: where("analyzers", _n, key, *index),
                     _settings_parameters(spec))
    check_card(d.get("card"), where)
    policy = d.get("policy") or []
    if not isinstance(policy, (list, tuple)):
        raise AuditInputError(f"{where('policy')} must be a list of rules like "
                              "{metric: robustness.robust_accuracy@0.1, min: 0.5}.")
    for i, rule in enumerate(policy):
        Rule.from_dict(rule, where=where("policy", i))
