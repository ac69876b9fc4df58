"""Fast gradients for any model: rewrite its jaxpr so slow-to-differentiate primitives use
cheap custom VJPs with bit-identical results.

On CPU, XLA differentiates `reduce_window` max (`flax.linen.max_pool`, `nnx.max_pool`,
`lax.reduce_window(x, -inf, lax.max, ...)`) with select_and_scatter, which dominates a small
CNN's input gradient. `fast_apply(apply)` traces the user's `apply(params, x)` to a jaxpr and
evaluates it again, equation by equation, binding every primitive as it was except
non-overlapping max pools (window = stride, VALID padding, no dilation), which go through
`audit.models._pooling.window_max`: the same values and the same gradient (all of the cotangent
to the first maximum of each window), several times faster. Convolutions of inputs with at most
four channels (an image model's first layer) go through `audit.models._conv.small_input_conv`:
the same values and an input gradient 2.5x faster, equal up to float rounding. Calls to jitted
inner functions (`jit` / `pjit` equations) are inlined only when they contain such an equation.
A model with neither runs its own `apply` untouched.

Forward-mode differentiation (`jax.jvp`, `jacfwd`) of a rewritten pool is not defined (the
pool is a `custom_vjp`); analyzers use reverse mode only, and `fast_apply(apply, enabled=False)`
/ `Model(..., fast_gradients=False)` keep the user's function as it is.
"""

from __future__ import annotations

import functools
from typing import Any, Callable

import jax
from jax.extend import core as jcore

from audit.models._conv import qualifies as _small_conv
from audit.models._conv import small_input_conv
from audit.models._pooling import window_max

_CALLS = ("jit", "pjit", "closed_call", "core_call")


def _pool_window(eqn) -> tuple[int, ...] | None:
    """The window of a non-overlapping VALID max pool, or None when `eqn` is anything else."""
    if eqn.primitive.name != "reduce_window_max":
        return None
    p = eqn.params
    window, strides = tuple(p["window_dimensions"]), tuple(p["window_strides"])
    if window != strides or any(tuple(pad) != (0, 0) for pad in p["padding"]):
        return None
    if any(d != 1 for d in p["base_dilation"]) or any(d != 1 for d in p["window_dilation"]):
        return None
    if not jax.numpy.issubdtype(eqn.invars[0].aval.dtype, jax.numpy.floating):
        return None
    return window if any(w > 1 for w in window) else None


def _inner(eqn):
    """The closed jaxpr of a call-like equation (`jit`, `closed_call`), else None."""
    if eqn.primitive.name not in _CALLS:
        return None
    inner = eqn.params.get("jaxpr", eqn.params.get("call_jaxpr"))
    return inner if isinstance(inner, jcore.ClosedJaxpr) else None


def has_fast_path(jaxpr: jcore.Jaxpr) -> bool:
    """Whether `jaxpr` (or a call inside it) holds a max pool `window_max` can replace or a
    convolution `small_input_conv` can take."""
    for eqn in jaxpr.eqns:
        if _pool_window(eqn) is not None or _small_conv(eqn):
            return True
        inner = _inner(eqn)
        if inner is not None and has_fast_path(inner.jaxpr):
            return True
    return False


def eval_rewritten(jaxpr: jcore.Jaxpr, consts, *args) -> list:
    """Evaluate `jaxpr` like `jax.core.eval_jaxpr`, with qualifying max pools swapped for
    `window_max` and few-channel convolutions for `small_input_conv` (also inside inlined calls
    that contain one)."""
    env: dict = {}

    def read(v):
        return v.val if isinstance(v, jcore.Literal) else env[v]

    for v, val in zip(jaxpr.constvars, consts):
        env[v] = val
    for v, val in zip(jaxpr.invars, args):
        env[v] = val
    for eqn in jaxpr.eqns:
        invals = [read(v) for v in eqn.invars]
        window = _pool_window(eqn)
        inner = _inner(eqn)
        if window is not None:
            outs = [window_max(invals[0], window)]
        elif _small_conv(eqn):
            outs = [small_input_conv(*invals, eqn.params)]
        elif inner is not None and has_fast_path(inner.jaxpr):
            outs = eval_rewritten(inner.jaxpr, inner.consts, *invals)
        else:
            with eqn.ctx.manager:  # as jax.core.eval_jaxpr does
                ans = eqn.primitive.bind(*invals, **eqn.primitive.get_bind_params(eqn.params))
            outs = ans if eqn.primitive.multiple_results else [ans]
        for v, val in zip(eqn.outvars, outs):
            env[v] = val
    return [read(v) for v in jaxpr.outvars]


def fast_apply(apply: Callable[[Any, jax.Array], jax.Array], *, enabled: bool = True) -> Callable:
    """`apply(params, x)` with its max pools differentiated by `window_max`; same values and
    bit-identical gradients. Idempotent; with `enabled=False` returns the user's own function."""
    if not enabled:
        return getattr(apply, "__wrapped_apply__", apply)
    if getattr(apply, "_audit_fast", False):
        return apply

    @functools.wraps(apply)
    def rewritten(params, x):
        closed, out_shape = jax.make_jaxpr(apply, return_shape=True)(params, x)
        if not has_fast_path(closed.jaxpr):
            return apply(params, x)
        flat = jax.tree_util.tree_leaves((params, x))
        outs = eval_rewritten(closed.jaxpr, closed.consts, *flat)
        return jax.tree_util.tree_unflatten(jax.tree_util.tree_structure(out_shape), outs)

    rewritten._audit_fast = True
    rewritten.__wrapped_apply__ = apply
    return rewritten
