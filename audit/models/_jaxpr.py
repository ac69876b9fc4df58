"""A small jaxpr interpreter, and interval bound propagation (IBP) for any JAX model with it.

`interpret(closed_jaxpr, args, rule)` walks a jaxpr equation by equation, descends into nested
calls (jit, custom_jvp / custom_vjp functions such as relu or a custom max-pool), and asks
`rule(eqn, values)` for each primitive's outputs: the one generic walker that abstract
interpretations (interval bounds here; relevance rules later) share.

`interval_bounds(apply, params, lower, upper)` propagates a box of inputs through the model's
own jaxpr (Gowal et al. 2018, "On the effectiveness of interval bound propagation"): affine
primitives map (centre, radius) as centre -> f(centre), radius -> |f|(radius); monotone
primitives map both ends; structural ones (reshape, transpose, slicing) move both ends. So any
Linen, NNX or plain-JAX model built from the primitives in `INTERVAL_RULES` gets sound bounds; an
unsupported primitive is an `AuditInputError` naming it. Every box also remembers the last
non-affine box it is an affine function of, so the margin z_y - z_j is bounded through the whole
affine tail of the network at once (the "elision of the last layer", generalised). When that tail
is one dense layer (`anchor @ W + b`, the usual classifier head), the margin's coefficients are
the weight differences w_y - w_j themselves, read off W, instead of one pullback per class.
"""

from __future__ import annotations

import itertools
from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.extend import core as jcore

from audit.errors import AuditInputError

# call-like primitives and the parameter holding their body
_CALLS = {"jit": "jaxpr", "pjit": "jaxpr", "closed_call": "call_jaxpr", "core_call": "call_jaxpr",
          "custom_jvp_call": "call_jaxpr", "custom_vjp_call": "call_jaxpr", "custom_vjp_call_jaxpr": "fun_jaxpr",
          "remat": "jaxpr", "checkpoint": "jaxpr", "custom_lin": None}


def _body(eqn):
    name = _CALLS.get(eqn.primitive.name)
    body = eqn.params.get(name) if name else None
    if body is None:
        return None
    if isinstance(body, jcore.ClosedJaxpr) or hasattr(body, "consts"):
        return body
    return jcore.ClosedJaxpr(body, ())


def interpret(closed, args: Sequence[Any], rule: Callable[[Any, list], list]) -> list:
    """Evaluate `closed` (a ClosedJaxpr) on `args` with `rule(eqn, invals) -> outvals` for every
    primitive outside call-like wrappers, which are descended into."""
    env: dict = {}

    def read(v):
        return v.val if isinstance(v, jcore.Literal) else env[v]

    for var, value in zip(closed.jaxpr.constvars, closed.consts):
        env[var] = value
    for var, value in zip(closed.jaxpr.invars, args):
        env[var] = value
    for eqn in closed.jaxpr.eqns:
        invals = [read(v) for v in eqn.invars]
        body = _body(eqn)
        if body is not None:
            outs = interpret(body, invals, rule)
        else:
            outs = rule(eqn, invals)
            if not eqn.primitive.multiple_results:
                outs = [outs]
        for var, value in zip(eqn.outvars, outs):
            env[var] = value
    return [read(v) for v in closed.jaxpr.outvars]


def bind(eqn, values: Sequence[Any]):
    """The primitive of `eqn` applied to concrete (or traced) values."""
    return eqn.primitive.bind(*values, **eqn.params)


# ---- intervals ---------------------------------------------------------------------------
_ANCHORS = itertools.count()


class Box:
    """An interval [lo, hi] with an optional affine tag: value = fn(anchor) for the box `anchor`;
    `head = (W, b)` when that map is exactly one dense layer, value = anchor @ W + b."""

    __slots__ = ("lo", "hi", "anchor", "fn", "head", "centre", "radius")

    def __init__(self, lo, hi, anchor: "Box | None" = None, fn: Callable | None = None, head=None):
        self.lo, self.hi = lo, hi
        if anchor is None:  # a new anchor: itself
            anchor, fn = self, (lambda a: a)
        self.anchor, self.fn, self.head = anchor, fn, head
        self.centre = self.radius = None  # set when the box was made as centre +- radius

    @property
    def mid(self):
        return (self.lo + self.hi) / 2 if self.centre is None else self.centre

    @property
    def rad(self):
        return (self.hi - self.lo) / 2 if self.radius is None else self.radius


def _boxes(values) -> list[int]:
    return [i for i, v in enumerate(values) if isinstance(v, Box)]


def _tagged(eqn, values, lo, hi) -> Box:
    """A box produced by an affine primitive: it keeps the shared anchor of its box inputs."""
    boxes = [values[i] for i in _boxes(values)]
    anchor = boxes[0].anchor
    if any(b.anchor is not anchor for b in boxes):
        return Box(lo, hi)

    def fn(a, values=tuple(values)):
        return bind(eqn, [v.fn(a) if isinstance(v, Box) else v for v in values])

    return Box(lo, hi, anchor, fn)


def _affine_linear(eqn, values):
    """dot_general / conv with one box operand and one exact one: centre and |.| radius."""
    (i,) = _boxes(values) if len(_boxes(values)) == 1 else (None,)
    if i is None:
        raise AuditInputError(f"IBP cannot bound {eqn.primitive.name} of two interval operands (a product of "
                              "two inputs-dependent values); use smoothing certification for this model.")
    box = values[i]
    centre = bind(eqn, [box.mid if k == i else v for k, v in enumerate(values)])
    radius = bind(eqn, [box.rad if k == i else jnp.abs(v) for k, v in enumerate(values)])
    out = _tagged(eqn, values, centre - radius, centre + radius)
    out.centre, out.radius = centre, radius
    if (eqn.primitive.name == "dot_general" and i == 0 and box.anchor is box and box.lo.ndim == 2
            and jnp.ndim(values[1]) == 2 and eqn.params["dimension_numbers"] == (((1,), (0,)), ((), ()))):
        out.head = (values[1], jnp.zeros((), centre.dtype))  # a dense layer on a non-affine box
    return out


def _add(eqn, values):
    boxes = _boxes(values)
    if eqn.primitive.name == "add" and len(boxes) == 1 and values[boxes[0]].centre is not None:
        # an affine layer's bias: shift its centre once (as the layer walk does) rather than both
        # ends, so the broadcast bias has one consumer and XLA fuses it instead of materialising it
        box = values[boxes[0]]
        centre = bind(eqn, [box.centre if isinstance(v, Box) else v for v in values])
        out = _tagged(eqn, values, centre - box.radius, centre + box.radius)
        out.centre, out.radius = centre, box.radius
    else:
        lo = bind(eqn, [v.lo if isinstance(v, Box) else v for v in values])
        hi = bind(eqn, [v.hi if isinstance(v, Box) else v for v in values])
        out = _tagged(eqn, values, lo, hi)
    if eqn.primitive.name in ("add", "add_any") and len(values) == 2 and len(_boxes(values)) == 1:
        box = values[_boxes(values)[0]]
        if box.head is not None:  # a bias: either order
            out.head = (box.head[0], box.head[1] + values[1 - _boxes(values)[0]])
    return out


def _sub(eqn, values):
    a, b = values
    if isinstance(b, Box):
        alo, ahi = (a.lo, a.hi) if isinstance(a, Box) else (a, a)
        return _tagged(eqn, values, alo - b.hi, ahi - b.lo)
    out = _tagged(eqn, values, a.lo - b, a.hi - b)
    if a.head is not None:  # a head minus a constant
        out.head = (a.head[0], a.head[1] - b)
    return out


def _neg(eqn, values):
    (a,) = values
    return _tagged(eqn, values, -a.hi, -a.lo)


def _mul(eqn, values):
    a, b = values
    if isinstance(a, Box) and isinstance(b, Box):  # a product of two intervals: its four corners
        corners = jnp.stack(jnp.broadcast_arrays(a.lo * b.lo, a.lo * b.hi, a.hi * b.lo, a.hi * b.hi))
        return Box(corners.min(0), corners.max(0))
    box, c = (a, b) if isinstance(a, Box) else (b, a)
    centre, radius = box.mid * c, box.rad * jnp.abs(c)
    return _tagged(eqn, values, centre - radius, centre + radius)


def _div(eqn, values):
    a, b = values
    if not isinstance(b, Box):
        centre, radius = a.mid / b, a.rad / jnp.abs(b)
        return _tagged(eqn, values, centre - radius, centre + radius)
    positive = jnp.all(b.lo > 0)
    alo, ahi = (a.lo, a.hi) if isinstance(a, Box) else (a, a)
    corners = jnp.stack(jnp.broadcast_arrays(alo / b.lo, alo / b.hi, ahi / b.lo, ahi / b.hi))
    nan = jnp.where(positive | jnp.all(b.hi < 0), 0.0, jnp.nan)  # a divisor interval around 0: no bound
    return Box(corners.min(0) + nan, corners.max(0) + nan)


def _monotone(increasing: bool):
    def rule(eqn, values):
        lo = bind(eqn, [v.lo if isinstance(v, Box) else v for v in values])
        hi = bind(eqn, [v.hi if isinstance(v, Box) else v for v in values])
        return Box(lo, hi) if increasing else Box(hi, lo)
    return rule


def _structural(eqn, values):
    """Ops that only move, select or copy elements (linear with 0/1 weights): both ends, tagged."""
    return _add(eqn, values)


def _sum(eqn, values):
    """A sum of elements is monotone in each and affine: both ends, tagged."""
    return _add(eqn, values)


def _abs(eqn, values):
    (a,) = values
    lo = jnp.where(a.lo >= 0, a.lo, jnp.where(a.hi <= 0, -a.hi, 0.0))
    return Box(lo, jnp.maximum(jnp.abs(a.lo), jnp.abs(a.hi)))


def _integer_pow(eqn, values):
    (a,) = values
    y = eqn.params["y"]
    if y % 2 == 1 and y > 0:
        return _monotone(True)(eqn, values)
    if y > 0:
        lo_abs = _abs(eqn, values)
        return Box(lo_abs.lo ** y, lo_abs.hi ** y)
    raise AuditInputError(f"IBP cannot bound integer_pow with exponent {y}; use smoothing certification.")


def _square(eqn, values):
    b = _abs(eqn, values)
    return Box(b.lo ** 2, b.hi ** 2)


def _select_n(eqn, values):
    if isinstance(values[0], Box):
        raise AuditInputError("IBP cannot bound select_n on an input-dependent condition (a branch such as "
                              "jnp.where(x > 0, ...)); use smoothing certification for this model.")
    lo = bind(eqn, [values[0]] + [v.lo if isinstance(v, Box) else v for v in values[1:]])
    hi = bind(eqn, [values[0]] + [v.hi if isinstance(v, Box) else v for v in values[1:]])
    return Box(lo, hi)


def _reduce_window(eqn, values):
    """reduce_window(max) or (sum) pooling: monotone in every element (with an exact init value)."""
    return _monotone(True)(eqn, values)


def _clamp(eqn, values):
    if isinstance(values[0], Box) or isinstance(values[2], Box):
        raise AuditInputError("IBP cannot bound clamp with input-dependent limits.")
    return _monotone(True)(eqn, values)


_INCREASING = ("max", "min", "tanh", "logistic", "exp", "exp2", "log", "log1p", "sqrt", "cbrt", "erf", "atan",
               "asinh", "expm1", "reduce_max", "reduce_min", "cumsum", "cummax", "cummin", "sign", "floor", "ceil",
               "round", "stop_gradient")
_DECREASING = ("rsqrt",)
_STRUCTURAL = ("reshape", "transpose", "squeeze", "expand_dims", "broadcast_in_dim", "slice", "dynamic_slice",
               "gather", "concatenate", "pad", "rev", "copy", "copy_p", "convert_element_type", "reduce_precision",
               "dynamic_update_slice")

INTERVAL_RULES: dict[str, Callable] = {
    "dot_general": _affine_linear, "conv_general_dilated": _affine_linear,
    "add": _add, "add_any": _add, "sub": _sub, "neg": _neg, "mul": _mul, "div": _div,
    "reduce_sum": _sum, "abs": _abs, "integer_pow": _integer_pow, "square": _square, "select_n": _select_n,
    "reduce_window_max": _reduce_window, "reduce_window_sum": _reduce_window, "reduce_window": _reduce_window,
    "clamp": _clamp,
    **{name: _monotone(True) for name in _INCREASING}, **{name: _monotone(False) for name in _DECREASING},
    **{name: _structural for name in _STRUCTURAL},
}
_INDEX_OPERANDS = {"gather": (1,), "dynamic_slice": (1, 2, 3, 4, 5, 6), "dynamic_update_slice": (2, 3, 4, 5, 6),
                   "pad": (1,)}


def interval_rule(eqn, values):
    """The interval rule for one primitive (exact inputs are evaluated exactly)."""
    boxes = _boxes(values)
    if not boxes:
        return bind(eqn, values)
    name = eqn.primitive.name
    if any(i in _INDEX_OPERANDS.get(name, ()) for i in boxes) or (name in ("dynamic_slice", "gather") and boxes != [0]):
        raise AuditInputError(f"IBP cannot bound {name} with input-dependent indices or padding values.")
    if name not in INTERVAL_RULES:
        raise AuditInputError(f"IBP has no interval rule for the primitive {name!r} in this model; supported: "
                              f"{', '.join(sorted(INTERVAL_RULES))}. Use smoothing certification "
                              "(methods=('smoothing',)) for this model.")
    if eqn.primitive.multiple_results:
        raise AuditInputError(f"IBP cannot bound the multi-output primitive {name!r}.")
    return INTERVAL_RULES[name](eqn, values)


def _closed(apply, params, shape, dtype=jnp.float32):
    """The model's jaxpr with the params' leaves and the input as its arguments."""
    leaves, treedef = jax.tree_util.tree_flatten(params)

    def flat(leaves, x):
        return apply(jax.tree_util.tree_unflatten(treedef, leaves), x)

    closed = jax.make_jaxpr(flat)(leaves, jax.ShapeDtypeStruct(shape, dtype))
    return closed, leaves


def _run(apply, params, lower, upper) -> Box:
    closed, leaves = _closed(apply, params, lower.shape, lower.dtype)
    (out,) = interpret(closed, [*leaves, Box(lower, upper)], interval_rule)
    if not isinstance(out, Box):  # the output does not depend on the input
        out = Box(out, out)
    return out


def check_supported(apply, params, input_shape: Sequence[int]) -> None:
    """Trace the interval interpretation once (no computation): an AuditInputError naming the first
    unsupported primitive, else nothing."""
    x = jax.ShapeDtypeStruct((2, *input_shape), jnp.float32)
    jax.eval_shape(lambda p, lo, hi: _run(apply, p, lo, hi).lo, params, x, x)


def interval_bounds(apply, params, lower, upper):
    """(lower, upper) bounds of `apply(params, x)` valid for every x in the box [lower, upper]."""
    out = _run(apply, params, lower, upper)
    return out.lo, out.hi


def margin_lower_bound(apply, params, lower, upper, y):
    """Per row, a lower bound of min_{j != y} z_y - z_j over the box: bounded through the output's
    affine tail from the last non-affine box (for a ReLU network: through the last dense layer)."""
    out = _run(apply, params, lower, upper)
    k = out.lo.shape[-1]
    onehot = jax.nn.one_hot(y, k, dtype=out.lo.dtype)
    anchor = out.anchor
    if out.head is not None and out.lo.ndim == 2:  # one dense layer: its weight differences w_y - w_j
        w, b = out.head
        b = jnp.broadcast_to(b, out.lo.shape)
        diff = w[:, y].T[:, :, None] - w[None]  # (n, features, classes)
        low = jnp.einsum("nf,nfk->nk", anchor.mid, diff) - jnp.einsum("nf,nfk->nk", anchor.rad, jnp.abs(diff))
        low = low + (jnp.take_along_axis(b, y[:, None], axis=1) - b)
        return jnp.min(jnp.where(onehot.astype(bool), jnp.inf, low), axis=1)
    centre, pullback = jax.vjp(out.fn, anchor.mid)
    # for each class j: coefficients of z_y - z_j on the anchor, through the affine tail
    coeffs = jax.vmap(lambda j: pullback(onehot - jax.nn.one_hot(jnp.full_like(y, j), k, dtype=onehot.dtype))[0])(
        jnp.arange(k))
    own = jnp.take_along_axis(centre, y[:, None], axis=1)
    axes = tuple(range(2, coeffs.ndim))
    low = (own - centre).T - jnp.sum(jnp.abs(coeffs) * anchor.rad[None], axis=axes)  # (k, n)
    low = jnp.where(onehot.T.astype(bool), jnp.inf, low)
    return jnp.min(low, axis=0)
