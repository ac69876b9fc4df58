"""XLA compile options per audited model: convolutional models on the CPU skip YNNPACK's dot fusions.

jaxlib's CPU backend hands dots and convolutions to YNNPACK fusions. For a small CNN's input
gradient XLA's own kernels are faster (zoo MNIST CNN, batch 64, Xeon with AVX-512: 146 against
211 us per row; bench/xla_options.py), while for its forward pass YNNPACK's reductions are what
keep it fast (51 us per row with YNNPACK limited to reductions, 48 with all of it, 79 with none).
So a model whose program holds a convolution is compiled on the CPU with YNNPACK off for the
functions that differentiate it (`kind="gradient"`) and limited to reductions for those that
only evaluate it (`kind="forward"`); every other model keeps XLA's defaults. The rule is fixed,
not timed per run, so a machine gives the same numbers every run. FLAX_AUDIT_XLA=default keeps
XLA's defaults everywhere.

`jit(fun, kind=..., **kwargs)` is `jax.jit` whose options follow the model active in the current
context (`for_model(model)`, which `run_analyzer` enters for every analyzer).
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import os
from typing import Any, Callable, Iterator

import jax
import jax.numpy as jnp

from audit.models._jaxpr import _body as call_body

FUSION_FLAG = "xla_cpu_experimental_ynn_fusion_type"
KINDS = ("forward", "gradient")
CONV_OPTIONS = {"forward": {FUSION_FLAG: "LIBRARY_FUSION_TYPE_REDUCE"}, "gradient": {FUSION_FLAG: ""}}
_NONE: dict[str, tuple] = {"forward": (), "gradient": ()}
_ACTIVE: contextvars.ContextVar[dict] = contextvars.ContextVar("audit_xla_options", default=_NONE)


def _key(options: dict[str, dict[str, str]]) -> dict[str, tuple]:
    return {kind: tuple(sorted(options.get(kind, {}).items())) for kind in KINDS}


@functools.lru_cache(maxsize=1)
def _flag_accepted() -> bool:
    """Whether this jaxlib's CPU compiler knows the fusion options (they are experimental)."""
    try:
        for options in CONV_OPTIONS.values():
            jax.jit(lambda v: v + 1, compiler_options=options).lower(jnp.zeros(2)).compile()
        return True
    except Exception:  # noqa: BLE001 - an unknown flag or value: keep XLA's defaults
        return False


def _has_conv(jaxpr) -> bool:
    """Whether `jaxpr`, or the body of a call inside it, holds a convolution."""
    return any(eqn.primitive.name == "conv_general_dilated"
               or ((body := call_body(eqn)) is not None and _has_conv(body.jaxpr)) for eqn in jaxpr.eqns)


def options_for(model) -> dict[str, dict[str, str]]:
    """The compile options the audit uses for `model`, per kind of function (empty: XLA's defaults)."""
    cached = getattr(model, "_xla_options", None)
    if cached is not None:
        return {kind: dict(items) for kind, items in cached.items()}
    options: dict[str, dict[str, str]] = {kind: {} for kind in KINDS}
    if os.environ.get("FLAX_AUDIT_XLA", "auto") != "default" and jax.default_backend() == "cpu":
        x = jax.ShapeDtypeStruct((1, *model.input_shape), jnp.float32)
        try:
            has_conv = _has_conv(jax.make_jaxpr(model.apply)(model.params, x).jaxpr)
        except Exception:  # noqa: BLE001 - a model that cannot be traced abstractly keeps the defaults
            has_conv = False
        if has_conv and _flag_accepted():
            options = {kind: dict(CONV_OPTIONS[kind]) for kind in KINDS}
    object.__setattr__(model, "_xla_options", _key(options))
    return options


@contextlib.contextmanager
def for_model(model) -> Iterator[dict[str, dict[str, str]]]:
    """Compile the jitted functions called inside this block with `model`'s options."""
    options = options_for(model)
    token = _ACTIVE.set(_key(options))
    try:
        yield options
    finally:
        _ACTIVE.reset(token)


def active() -> dict[str, dict[str, str]]:
    """The options in force in this context, per kind (empty outside `for_model`)."""
    return {kind: dict(items) for kind, items in _ACTIVE.get().items()}


def jit(fun: Callable | None = None, *, kind: str = "gradient", **jit_kwargs: Any) -> Callable:
    """`jax.jit(fun, **jit_kwargs)`, compiled once per set of options in force when called;
    `kind` says whether `fun` differentiates the model ("gradient") or only evaluates it ("forward")."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    if fun is None:
        return functools.partial(jit, kind=kind, **jit_kwargs)
    compiled: dict[tuple, Callable] = {}

    @functools.wraps(fun)
    def call(*args, **kwargs):
        key = _ACTIVE.get()[kind]
        f = compiled.get(key)
        if f is None:
            f = compiled[key] = jax.jit(fun, **jit_kwargs, **({"compiler_options": dict(key)} if key else {}))
        return f(*args, **kwargs)

    call._cache_size = lambda: sum(f._cache_size() for f in compiled.values())  # as jax.jit's
    return call
