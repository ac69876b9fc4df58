"""Models named by a factory: `"package.module:function"` builds the user's architecture.

The factory returns an NNX module, a Linen module (optionally with its variables as a
`(module, variables)` pair) or an `audit.Model`. It is called with whichever of `input_shape`,
`n_classes`, `class_names`, `seed` and `rngs` its signature accepts, plus the config's
`options`; the input shape comes from the data when the factory's result does not fix it.
A checkpoint (Orbax, audit's own format, or a flax msgpack file) then fills its parameters.

The Model records all of this as its `architecture` (`{"factory": ..., ...}`), so the one
`rebuild` below (zoo or factory) can make a fresh copy to retrain, and the dashboard can
rebuild the model for live what-ifs. Importing user code is the user's explicit choice: a
config (or a report) naming a factory is code-equivalent.
"""

from __future__ import annotations

import importlib
import inspect
import os
import sys
from typing import Any, Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from audit.errors import AuditInputError
from audit.models import zoo
from audit.models._model import Model, _eval_view, split_nnx
from audit.models._output import check_output

FORMATS = ("auto", "orbax", "audit", "msgpack")


def import_object(spec: str, *, python_path: Sequence[str] = (), what: str = "factory") -> Any:
    """The object `"package.module:attribute"` names, importing with `python_path` folders first."""
    if not isinstance(spec, str) or spec.count(":") != 1 or not all(spec.split(":")):
        raise AuditInputError(f"{what} {spec!r} must look like 'package.module:function'.")
    for folder in reversed([os.path.abspath(p) for p in python_path]):
        if not os.path.isdir(folder):
            raise AuditInputError(f"python_path folder {folder!r} (for {what} {spec!r}) does not exist.")
        if folder not in sys.path:
            sys.path.insert(0, folder)
    module_name, attribute = spec.split(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise AuditInputError(f"cannot import {module_name!r} for {what} {spec!r} ({exc}); add its folder "
                              "to python_path.") from None
    if not hasattr(module, attribute):
        raise AuditInputError(f"module {module_name!r} has no {attribute!r} (the {what} {spec!r}).")
    return getattr(module, attribute)


def _is_linen(obj: Any) -> bool:
    from flax import linen

    return isinstance(obj, linen.Module)


def linen_flags(module, *, train: bool) -> dict[str, bool]:
    """Keyword that switches a Linen module between training and inference, from its `__call__`
    signature: `train` / `training` (True when training) or `deterministic` (False when training)."""
    parameters = inspect.signature(type(module).__call__).parameters
    for name in ("train", "training"):
        if name in parameters:
            return {name: train}
    if "deterministic" in parameters:
        return {"deterministic": not train}
    return {}


def linen_model(module, variables: Mapping[str, Any], *, input_shape, class_names, output: str = "logits",
                **kwargs) -> Model:
    """A Linen module in inference mode (see `linen_flags`) with all its variable collections."""
    flags = linen_flags(module, train=False)

    def apply(v, x):
        return module.apply(v, x, **flags)

    return Model.from_function(apply, dict(variables), input_shape=input_shape, class_names=class_names,
                               output=output, **kwargs)


def _call_factory(fn, *, options: Mapping[str, Any], input_shape, class_names, seed: int):
    from flax import nnx

    offered = {"input_shape": tuple(input_shape), "n_classes": len(class_names),
               "class_names": tuple(class_names), "seed": seed}
    try:
        parameters = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        parameters = {}
    kwargs = {k: v for k, v in offered.items() if k in parameters and k not in options}
    if "rngs" in parameters and "rngs" not in options:
        kwargs["rngs"] = nnx.Rngs(params=seed, dropout=seed + 1)
    try:
        return fn(**kwargs, **dict(options))
    except TypeError as exc:
        raise AuditInputError(f"calling the factory {getattr(fn, '__name__', fn)!r} with "
                              f"{sorted({**kwargs, **options})} failed: {exc}") from None


def _zoo(arch: Mapping[str, Any], seed: int):
    return zoo.build(arch["name"], {k: v for k, v in arch["config"].items() if k != "name"}, seed=seed)


def build(architecture: Mapping[str, Any], *, input_shape, class_names, seed: int = 0) -> Model:
    """A freshly initialised Model from a recorded architecture: a zoo one (`{"name", "config"}`)
    or a factory (`{"factory", "options", "python_path", "output"}`). Seeded: the same seed gives
    the same initial weights. This is the one place that rebuilds an architecture."""
    arch = dict(architecture)
    if "factory" not in arch:
        return zoo.rebuild(arch, model_cls=Model, input_shape=input_shape, class_names=class_names, seed=seed)
    output = check_output(arch.get("output", "logits"))
    fn = import_object(arch["factory"], python_path=arch.get("python_path") or ())
    made = _call_factory(fn, options=arch.get("options") or {}, input_shape=input_shape,
                         class_names=class_names, seed=seed)
    return _as_model(made, arch, input_shape=input_shape, class_names=class_names, output=output, seed=seed)


def _as_model(made, arch, *, input_shape, class_names, output, seed) -> Model:
    from flax import nnx

    if isinstance(made, Model):
        if output != "logits":
            made = Model.from_function(made.apply, made.params, input_shape=made.input_shape,
                                       class_names=class_names, output=output)
        return made.replace(architecture=arch, class_names=tuple(class_names))
    if isinstance(made, nnx.Module):
        return Model.from_nnx(made, input_shape=input_shape, class_names=class_names, output=output,
                              architecture=arch)
    variables = None
    if isinstance(made, tuple) and len(made) == 2 and _is_linen(made[0]):
        made, variables = made
    if _is_linen(made):
        if variables is None:
            x = jnp.zeros((1, *input_shape), jnp.float32)
            variables = made.init(jax.random.key(seed), x, **linen_flags(made, train=False))
        variables = jax.tree_util.tree_map(jnp.asarray, dict(variables))
        return linen_model(made, variables, input_shape=input_shape, class_names=class_names, output=output,
                           architecture=arch)
    raise AuditInputError(f"the factory {arch['factory']!r} returned a {type(made).__name__}; it must return an "
                          "NNX module, a Linen module, a (Linen module, variables) pair or an audit.Model.")


def module_of(model: Model, *, seed: int = 0):
    """The training-ready form of `model`'s architecture, freshly initialised: an NNX module, a
    Linen module or a Model (what `audit.models.train` accepts). None when no architecture is known."""
    from flax import nnx

    arch = model.architecture
    if not arch:
        return None
    if "factory" not in arch:
        return _zoo(arch, seed)
    fn = import_object(arch["factory"], python_path=arch.get("python_path") or ())
    made = _call_factory(fn, options=arch.get("options") or {}, input_shape=model.input_shape,
                         class_names=model.class_names, seed=seed)
    if isinstance(made, tuple) and len(made) == 2 and _is_linen(made[0]):
        made = made[0]  # trained from a seeded initialisation, like every other architecture
    if isinstance(made, (nnx.Module, Model)) or _is_linen(made):
        return made
    return _as_model(made, arch, input_shape=model.input_shape, class_names=model.class_names,
                     output=arch.get("output", "logits"), seed=seed)


def feature_apply(model: Model):
    """`(params, x) -> features` from the `features` the model's factory section names, or None.

    A method name runs that method of the factory's module on the model's own parameters (Linen:
    `module.apply(variables, x, method=name)` in inference mode; NNX: the method of the module
    merged with them); `"package.module:function"` is called as `function(params, x)` with the
    model's parameters as its `apply` takes them.
    """
    from flax import nnx

    arch = model.architecture or {}
    spec = arch.get("features")
    if not spec:
        return None
    if ":" in spec:
        return import_object(spec, python_path=arch.get("python_path") or (), what="feature function")
    module = module_of(model)
    if isinstance(module, nnx.Module):
        if not callable(getattr(module, spec, None)):
            raise AuditInputError(f"model.features names {spec!r}, but the factory's {type(module).__name__} "
                                  "has no such method.")
        graphdef, _, rest = nnx.split(_eval_view(module), (nnx.Param, nnx.BatchStat), ...)
        return lambda params, x: getattr(nnx.merge(graphdef, params, rest), spec)(x)
    if _is_linen(module):
        method = getattr(type(module), spec, None)
        if not callable(method):
            raise AuditInputError(f"model.features names {spec!r}, but the factory's {type(module).__name__} "
                                  "has no such method.")
        parameters = inspect.signature(method).parameters
        flags = next(({n: False} for n in ("train", "training") if n in parameters),
                     {"deterministic": True} if "deterministic" in parameters else {})
        return lambda variables, x: module.apply(variables, x, method=spec, **flags)
    raise AuditInputError(f"model.features names the method {spec!r}, but the factory returns an audit.Model; "
                          "name a function 'package.module:function' called as function(params, x) instead.")


def from_factory(factory: str, *, input_shape: Sequence[int], class_names: Sequence[str],
                 checkpoint: str | os.PathLike | None = None, format: str = "auto", step: int | None = None,
                 options: Mapping[str, Any] | None = None, python_path: Sequence[str] = (),
                 output: str = "logits", retrain: str | None = None, features: str | None = None,
                 seed: int = 0) -> Model:
    """The Model a factory builds, with parameters from `checkpoint` when given.

    `format`: "orbax" (a StandardCheckpointer / PyTreeCheckpointer directory, or a
    CheckpointManager folder of steps: the latest unless `step`), "audit" (`Model.save`),
    "msgpack" (a file of `flax.serialization.to_bytes(variables)`), or "auto" (detected).
    `retrain` names a user training function (`"package.module:train"`) for the analyzers that
    retrain; without it they retrain the factory's architecture with `audit.models.train`.
    `features` names what the out-of-distribution detectors read (see `feature_apply`): a method of
    the factory's module (`"embed"`) or a function `"package.module:function"` called as
    `function(params, x)`; without it they find the penultimate layer themselves.
    """
    from audit.models import _orbax

    if format not in FORMATS:
        raise AuditInputError(f"checkpoint format {format!r} is not known; use one of {list(FORMATS)}.")
    python_path = [os.path.abspath(p) for p in python_path]
    arch = {"factory": factory, "options": dict(options or {}), "python_path": python_path,
            "output": check_output(output), "retrain": retrain}
    if features is not None:
        arch["features"] = features
    if retrain is not None:
        import_object(retrain, python_path=python_path, what="retrain function")  # fail early
    model = build(arch, input_shape=tuple(input_shape), class_names=tuple(class_names), seed=seed)
    if features is not None:
        feature_apply(model)  # fail early: an unknown method or function is named now, not mid-audit
    if checkpoint is None:
        return model
    checkpoint = os.path.abspath(os.fspath(checkpoint))
    arch = {**arch, "checkpoint": checkpoint, "format": format, "step": step}
    params = _orbax.read_into(checkpoint, model.params, format=format, step=step)
    return model.replace(params=params, architecture=arch)


# ---- the config's `model:` section ---------------------------------------------------------
CONFIG_KEYS = {"factory", "checkpoint", "format", "python_path", "step", "output", "retrain", "options",
               "features"}


def check_config(section: Mapping[str, Any], where) -> None:
    """Validate the factory keys of a config's `model:` section; `where(*keys)` names a key."""
    if "factory" not in section:
        stray = sorted(set(section) & (CONFIG_KEYS - {"factory"}))
        if stray:
            raise AuditInputError(f"{where(stray[0])} needs {where('factory')} ('package.module:function' that "
                                  "builds the architecture).")
        return
    if "path" in section:
        raise AuditInputError(f"{where('path')} is for audit's own zoo checkpoints; with a factory name the "
                              f"weights as {where('checkpoint')}.")
    checks = {
        "factory": (lambda v: isinstance(v, str) and v.count(":") == 1 and all(v.split(":")),
                    "'package.module:function'"),
        "retrain": (lambda v: v is None or (isinstance(v, str) and v.count(":") == 1 and all(v.split(":"))),
                    "'package.module:function' or null"),
        "checkpoint": (lambda v: isinstance(v, str) and v != "", "a path (folder or file)"),
        "format": (lambda v: v in FORMATS, f"one of {list(FORMATS)}"),
        "python_path": (lambda v: isinstance(v, (list, str)) and all(isinstance(p, str) for p in
                                                                     ([v] if isinstance(v, str) else v)),
                        "a folder or a list of folders"),
        "step": (lambda v: v is None or (isinstance(v, int) and not isinstance(v, bool) and v >= 0),
                 "a non-negative integer (a CheckpointManager step) or null"),
        "output": (lambda v: v in ("logits", "probabilities", "sigmoid"), "'logits', 'probabilities' or 'sigmoid'"),
        "options": (lambda v: isinstance(v, Mapping), "a mapping of keyword arguments for the factory"),
        "features": (lambda v: isinstance(v, str) and (v.isidentifier() or (v.count(":") == 1 and all(v.split(":")))),
                     "a method of the factory's module ('embed') or 'package.module:function'"),
    }
    for key, (ok, expected) in checks.items():
        if key in section and not ok(section[key]):
            raise AuditInputError(f"{where(key)} must be {expected}, got {section[key]!r}.")
    if "checkpoint" not in section and "train" not in section:
        raise AuditInputError(f"{where('factory')} builds an untrained architecture: give {where('checkpoint')} "
                              f"(its trained weights) or {where('train')} (train it with audit.models.train).")


def resolve_config_paths(section: Mapping[str, Any], base: str) -> dict[str, Any]:
    """`checkpoint` and `python_path` of a config file, relative to the config's folder."""
    out = dict(section)
    if isinstance(out.get("checkpoint"), str):
        out["checkpoint"] = os.path.normpath(os.path.join(base, out["checkpoint"]))
    if "python_path" in out:
        paths = [out["python_path"]] if isinstance(out["python_path"], str) else list(out["python_path"])
        out["python_path"] = [os.path.normpath(os.path.join(base, p)) for p in paths]
    return out
