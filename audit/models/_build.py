"""Building a user's architecture from its recorded factory, for any Model class.

`import_object` resolves `"package.module:function"` (importing user code: the caller's explicit
choice), `build` calls the factory with the arguments its signature accepts and wraps what it
returns (an NNX module, a Linen module or `(module, variables)`, or a Model) as `model_cls`.
Kept apart from `_factory` (which adds configs and checkpoints) and from `_model`, so that the
checkpoint reader can rebuild a factory model without a circle of imports.
"""

from __future__ import annotations

import importlib
import inspect
import os
import sys
from typing import Any, Mapping, Sequence

import jax
import jax.numpy as jnp

from audit.errors import AuditInputError
from audit.models import zoo
from audit.models._output import check_output


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


def linen_model(module, variables: Mapping[str, Any], *, model_cls, input_shape, class_names,
                output: str = "logits", **kwargs):
    """A Linen module in inference mode (see `linen_flags`) with all its variable collections."""
    flags = linen_flags(module, train=False)

    def apply(v, x):
        return module.apply(v, x, **flags)

    return model_cls.from_function(apply, dict(variables), input_shape=input_shape, class_names=class_names,
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


def build(architecture: Mapping[str, Any], *, model_cls, input_shape, class_names, seed: int = 0):
    """A freshly initialised Model from a recorded architecture: a zoo one (`{"name", "config"}`)
    or a factory (`{"factory", "options", "python_path", "output"}`). Seeded: the same seed gives
    the same initial weights. This is the one place that rebuilds an architecture."""
    arch = dict(architecture)
    if "factory" not in arch:
        return zoo.rebuild(arch, model_cls=model_cls, input_shape=input_shape, class_names=class_names, seed=seed)
    output = check_output(arch.get("output", "logits"))
    fn = import_object(arch["factory"], python_path=arch.get("python_path") or ())
    made = _call_factory(fn, options=arch.get("options") or {}, input_shape=input_shape,
                         class_names=class_names, seed=seed)
    return as_model(made, arch, model_cls=model_cls, input_shape=input_shape, class_names=class_names,
                    output=output, seed=seed)


def as_model(made, arch, *, model_cls, input_shape, class_names, output, seed):
    """What a factory returned, as a `model_cls` (audit's Model) recording `arch`."""
    from flax import nnx

    if isinstance(made, model_cls):
        if output != "logits":
            made = model_cls.from_function(made.apply, made.params, input_shape=made.input_shape,
                                       class_names=class_names, output=output)
        return made.replace(architecture=arch, class_names=tuple(class_names))
    if isinstance(made, nnx.Module):
        return model_cls.from_nnx(made, input_shape=input_shape, class_names=class_names, output=output,
                              architecture=arch)
    variables = None
    if isinstance(made, tuple) and len(made) == 2 and _is_linen(made[0]):
        made, variables = made
    if _is_linen(made):
        if variables is None:
            x = jnp.zeros((1, *input_shape), jnp.float32)
            variables = made.init(jax.random.key(seed), x, **linen_flags(made, train=False))
        variables = jax.tree_util.tree_map(jnp.asarray, dict(variables))
        return linen_model(made, variables, model_cls=model_cls, input_shape=input_shape, class_names=class_names,
                           output=output, architecture=arch)
    raise AuditInputError(f"the factory {arch['factory']!r} returned a {type(made).__name__}; it must return an "
                          "NNX module, a Linen module, a (Linen module, variables) pair or an audit.Model.")
