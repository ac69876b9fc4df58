"""XLA compile options per audited model: convolutional models on the CPU skip YNNPACK's dot fusions.

jaxlib's CPU backend hands dots and convolutions to YNNPACK fusions. For a small CNN's input
gradient that is slower than XLA's own kernels (zoo MNIST CNN, batch 64, Xeon with AVX-512:
189 against 155 us per row), while YNNPACK's reductions keep its forward pass fast (52 us per
row against 85 with YNNPACK off entirely). So a model whose program holds a convolution is
compiled on the CPU with YNNPACK restricted to reductions; everything else keeps XLA's
defaults. The rule is fixed, not timed per run, so the same machine gives the same numbers every
run; `bench/xla_options.py` measures it on a machine. Set FLAX_AUDIT_XLA=default to keep XLA's
defaults everywhere.

`jit(fun, **kwargs)` is `jax.jit` whose options follow the model active in the current context
(`for_model(model)`, which `run_analyzer` enters for every analyzer).
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import os
from typing import Any, Callable, Iterator

import jax
import jax.numpy as jnp

FUSION_FLAG = "xla_cpu_experimental_ynn_fusion_type"
CONV_OPTIONS = {FUSION_FLAG: "LIBRARY_FUSION_TYPE_REDUCE"}
_ACTIVE: contextvars.ContextVar[tuple] = contextvars.ContextVar("audit_xla_options", default=())


@functools.lru_cache(maxsize=1)
def _flag_accepted() -> bool:
    """Whether this jaxlib's CPU compiler knows the fusion option (it is experimental)."""
    try:
        jax.jit(lambda v: v + 1, compiler_options=CONV_OPTIONS).lower(jnp.zeros(2)).compile()
        return True
    except Exception:  # noqa: BLE001 - an unknown flag or value: keep XLA's defaults
        return False


def _has_conv(jaxpr) -> bool:
    for eqn in jaxpr.eqns:
        if eqn.primitive.name == "conv_general_dilated":
            return True
        for value in eqn.params.values():
            inner = getattr(value, "jaxpr", value)
            if hasattr(inner, "eqns") and _has_conv(inner):
                return True
    return False


def options_for(model) -> dict[str, str]:
    """The compile options the audit uses for `model` (empty: XLA's defaults)."""
    cached = getattr(model, "_xla_options", None)
    if cached is not None:
        return dict(cached)
    options: dict[str, str] = {}
    if os.environ.get("FLAX_AUDIT_XLA", "auto") != "default" and jax.default_backend() == "cpu":
        x = jax.ShapeDtypeStruct((1, *model.input_shape), jnp.float32)
        try:
            has_conv = _has_conv(jax.make_jaxpr(model.apply)(model.params, x).jaxpr)
        except Exception:  # noqa: BLE001 - a model that cannot be traced abstractly keeps the defaults
            has_conv = False
        if has_conv and _flag_accepted():
            options = dict(CONV_OPTIONS)
    object.__setattr__(model, "_xla_options", tuple(sorted(options.items())))
    return options


@contextlib.contextmanager
def for_model(model) -> Iterator[dict[str, str]]:
    """Compile the jitted functions called inside this block with `model`'s options."""
    options = options_for(model)
    token = _ACTIVE.set(tuple(sorted(options.items())))
    try:
        yield options
    finally:
        _ACTIVE.reset(token)


def active() -> dict[str, str]:
    """The options in force in this context (empty outside `for_model`)."""
    return dict(_ACTIVE.get())


def jit(fun: Callable | None = None, **jit_kwargs: Any) -> Callable:
    """`jax.jit(fun, **jit_kwargs)`, compiled once per set of options in force when called."""
    if fun is None:
        return functools.partial(jit, **jit_kwargs)
    compiled: dict[tuple, Callable] = {}

    @functools.wraps(fun)
    def call(*args, **kwargs):
        key = _ACTIVE.get()
        f = compiled.get(key)
        if f is None:
            f = compiled[key] = jax.jit(fun, **jit_kwargs, **({"compiler_options": dict(key)} if key else {}))
        return f(*args, **kwargs)

    call._cache_size = lambda: sum(f._cache_size() for f in compiled.values())  # as jax.jit's
    return call
