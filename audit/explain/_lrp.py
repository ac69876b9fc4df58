"""Layer-wise relevance propagation and DeepLIFT (rescale) for dense/conv/pool/batch-norm/ReLU nets.

Both run the model's own jaxpr (found by `_jaxpr_layers.trace`, so any Flax Linen or NNX model of
those layers works) with replaced backward rules, one vector-Jacobian product per batch:

- LRP (Bach et al. 2015; Montavon et al. 2019, "Layer-wise relevance propagation: an overview"):
  relevance starts as the explained logit and is passed back layer by layer, y = s * op(a, W) + t
  (batch norm merged into the layer before it):
  epsilon:    R_a = a * W^T (R / (z + eps sign z))
  gamma:      R_a = a * (W + g W+)^T (R / (z_g + eps sign z_g)), z_g = (W + g W+) a + b
  zplus:      R_a = a * W+^T (R / (W+ a + b))  (alpha=1, beta=0 on ReLU inputs, Captum's convention)
  alpha_beta: R_a = alpha * (positive part) - beta * (negative part), as zennit's AlphaBeta.
  ReLU-family and other elementwise activations pass relevance unchanged; max pooling passes it
  to the maximum. With epsilon -> 0 and no biases the relevance is conserved: it sums to the logit.
- DeepLIFT rescale (Shrikumar et al. 2017): each elementwise nonlinearity's gradient is replaced
  by (f(z) - f(z_ref)) / (z - z_ref) against the reference input; max pooling routes
  (max(y, y_ref) - y_ref) through the input's maxima and (y - max(y, y_ref)) through the
  reference's (Captum's rule, but keeping the reference-side term that Captum's drops), so
  attributions (x - ref) * multipliers sum exactly to f(x) - f(ref).
Values equal Captum's LRP (epsilon, gamma, alpha1-beta0) and DeepLift (nets without max pooling,
where Captum's is complete) on a PyTorch copy of the weights (tests/explain/test_lrp.py).
"""

from __future__ import annotations

import functools
from typing import Any, Callable, Mapping

import jax
import jax.numpy as jnp
import numpy as np

from audit.errors import AuditInputError
from audit.explain._attribution import Attribution
from audit.explain._jaxpr_layers import Layer, Program, apply_layer, run, trace
from audit.explain._saliency import _baseline, check_inputs, targets
from audit.results import Provenance, timer
from audit.models._xla import jit as xla_jit

RULES = ("epsilon", "gamma", "zplus", "alpha_beta")
LAYER_KINDS = ("dense", "conv", "pool", "affine")
BATCH = 32  # examples per traced program (padded): one compilation per model and rule


def _stab(z, eps: float):
    """z + eps sign(z) (sign(0) = 1), with exact zeros (eps = 0, dead units) left as 1: their
    relevance is 0 anyway, and 0 / 0 must not become NaN."""
    z = z + eps * jnp.where(z >= 0, 1.0, -1.0).astype(z.dtype)
    return jnp.where(z == 0, 1.0, z)


def _chain(prog: Program, L: Layer, u, *, zero_shift: bool = False):
    """The layer's affine chain applied to the op output u (y = s * u + t)."""
    if L.op is None:
        return apply_layer(prog, L, u, zero_consts=zero_shift)
    v = u
    for j in L.chain:
        node = prog.nodes[j]
        args = [(jnp.zeros_like(prog.consts[k]) if zero_shift and node.prim.name in ("add", "sub")
                 else prog.consts[k]) if k in prog.consts else v for k in node.ins]
        v = node.prim.bind(*args, **node.params)
    return v


def _relevance_rule(prog: Program, L: Layer, rule: str, *, epsilon: float, gamma: float, alpha: float,
                    beta: float) -> Callable:
    """a -> y = the layer's output, whose backward maps output relevance to input relevance."""
    weight = None if L.weight is None else prog.consts[L.weight]

    def op(v, w=None):
        return v if L.op is None else apply_layer(prog, L, v, weight=w, skip_chain=True)

    def parts(a):
        u = op(a)
        t = _chain(prog, L, jnp.zeros_like(u))
        s = _chain(prog, L, jnp.ones_like(u)) - t
        if weight is None:  # weightless: the positive part is the op itself
            pos_op, neg_op = op, (lambda v: jnp.zeros_like(op(v)))
        else:
            pos_op = functools.partial(op, w=jnp.maximum(weight, 0))
            neg_op = functools.partial(op, w=jnp.minimum(weight, 0))
        # (s W)+ and (s W)-: per output unit, a negative scale swaps the weight signs
        pos = lambda v: jnp.where(s > 0, s * pos_op(v), s * neg_op(v))
        neg = lambda v: jnp.where(s > 0, s * neg_op(v), s * pos_op(v))
        full = lambda v: s * op(v)
        return s, t, full, pos, neg

    def back(fn, a, g):
        return jax.vjp(fn, a)[1](g)[0]

    @jax.custom_vjp
    def layer(a):
        return apply_layer(prog, L, a)

    def fwd(a):
        return layer(a), a

    def bwd(a, R):
        s, t, full, pos, neg = parts(a)
        if rule == "epsilon":
            return (a * back(full, a, R / _stab(full(a) + t, epsilon)),)
        if rule == "gamma":
            zf = lambda v: full(v) + gamma * pos(v)
            return (a * back(zf, a, R / _stab(zf(a) + t, epsilon)),)
        if rule == "zplus":
            return (a * back(pos, a, R / _stab(pos(a) + t, epsilon)),)
        ap, an = jnp.maximum(a, 0), jnp.minimum(a, 0)
        out_p = pos(ap) + neg(an) + jnp.maximum(t, 0)
        out_n = neg(ap) + pos(an) + jnp.minimum(t, 0)
        gp, gn = R / _stab(out_p, epsilon), R / _stab(out_n, epsilon)
        r = alpha * (ap * back(pos, ap, gp) + an * back(neg, an, gp)) \
            - beta * (ap * back(neg, ap, gn) + an * back(pos, an, gn))
        return (r,)

    layer.defvjp(fwd, bwd)
    return layer


def _passthrough(i: int, f: Callable, z):
    """An elementwise activation that hands relevance back unchanged."""
    @jax.custom_vjp
    def g(v):
        return f(v)

    g.defvjp(lambda v: (f(v), None), lambda _, R: (R,))
    return g(z)


def _check_rules(rule: str | Mapping[str, str]) -> dict[str, str]:
    if isinstance(rule, str):
        rules = {k: rule for k in LAYER_KINDS}
    elif isinstance(rule, Mapping):
        unknown = [k for k in rule if k not in LAYER_KINDS]
        if unknown:
            raise AuditInputError(f"rule keys {unknown} must be layer kinds {list(LAYER_KINDS)}.")
        rules = {k: "epsilon" for k in LAYER_KINDS} | dict(rule)
    else:
        raise AuditInputError(f"rule={rule!r} must be one of {list(RULES)} or a mapping from layer kind "
                              f"{list(LAYER_KINDS)} to a rule.")
    bad = sorted({r for r in rules.values() if r not in RULES})
    if bad:
        raise AuditInputError(f"unknown LRP rule(s) {bad}; choose from {list(RULES)}.")
    return rules


@functools.lru_cache(maxsize=16)
def _program(apply: Callable, params_id: int, input_shape: tuple[int, ...], batch: int, params_box) -> Program:
    return trace(apply, params_box[0], input_shape, batch=batch)


class _Box(tuple):
    """Holds the parameters in the cache key by identity (parameter trees are not hashable)."""

    def __hash__(self):
        return id(self[0])

    def __eq__(self, other):
        return isinstance(other, _Box) and self[0] is other[0]


def _get_program(model, batch: int) -> Program:
    try:
        return _program(model.apply, id(model.params), tuple(model.input_shape), batch, _Box((model.params,)))
    except AuditInputError:
        raise
    except Exception as exc:  # noqa: BLE001 - a model the walker cannot read: say so once, clearly
        raise AuditInputError(f"LRP/DeepLIFT could not read the model's computation ({type(exc).__name__}: "
                              f"{exc}); use gradient methods or SHAP for this model.") from None


def _batched(fn: Callable, arrays: list[np.ndarray], batch: int) -> tuple[np.ndarray, ...]:
    """fn(*chunks) -> tuple of arrays, over fixed-size zero-padded chunks of the first axis
    (one compilation whatever the number of rows), concatenated."""
    n = len(arrays[0])
    out = []
    for start in range(0, n, batch):
        chunk = [a[start:start + batch] for a in arrays]
        pad = batch - len(chunk[0])
        chunk = [np.concatenate([c, np.zeros((pad, *c.shape[1:]), c.dtype)]) if pad else c for c in chunk]
        out.append([np.asarray(r)[:batch - pad] for r in fn(*chunk)])
    return tuple(np.concatenate(parts) for parts in zip(*out))


@functools.lru_cache(maxsize=32)
def _lrp_fn(prog: Program, rules: tuple, epsilon: float, gamma: float, alpha: float, beta: float) -> Callable:
    table = dict(rules)
    layer_fns = {i: _relevance_rule(prog, L, table[L.kind], epsilon=epsilon, gamma=gamma, alpha=alpha, beta=beta)
                 for i, L in prog.layers.items()}
    by_layer = {id(L): layer_fns[i] for i, L in prog.layers.items()}

    def relevance(x, t):
        out, vjp = jax.vjp(lambda v: run(prog, v, layer=lambda L, a: by_layer[id(L)](a), nonlinear=_passthrough), x)
        start = jax.nn.one_hot(t, out.shape[-1], dtype=out.dtype) * out
        return vjp(start)[0], jnp.take_along_axis(out, t[:, None], axis=1)[:, 0]

    return xla_jit(relevance)


def lrp(model, X: Any, *, target: Any = None, rule: str | Mapping[str, str] = "epsilon", epsilon: float = 1e-9,
        gamma: float = 0.25, alpha: float = 2.0, beta: float = 1.0, batch_size: int = BATCH) -> Attribution:
    """Layer-wise relevance propagation of the explained logit (default: the predicted class).

    rule: "epsilon", "gamma", "zplus" or "alpha_beta" for every layer, or a mapping from layer
    kind ("dense", "conv", "pool", "affine") to a rule, e.g. {"conv": "zplus", "dense": "epsilon"}
    (unlisted kinds use epsilon). epsilon also stabilises the other rules' denominators. Works on
    any model made of dense, conv, pooling, batch-norm and elementwise activation layers (read
    from its jaxpr); anything else is refused with a clear error.
    """
    X = check_inputs(model, X)
    t = targets(model, X, target)
    rules = _check_rules(rule)
    for name, v in (("epsilon", epsilon), ("gamma", gamma), ("alpha", alpha), ("beta", beta)):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not np.isfinite(v) or v < 0:
            raise AuditInputError(f"{name}={v!r} must be a non-negative number.")
    batch = max(1, min(int(batch_size), len(X)))
    with timer() as clock:
        prog = _get_program(model, batch)
        fn = _lrp_fn(prog, tuple(sorted(rules.items())), float(epsilon), float(gamma), float(alpha), float(beta))
        values, out = _batched(fn, [X, t], batch)
    settings = {"rule": rules if not isinstance(rule, str) else rule, "epsilon": epsilon, "gamma": gamma,
                "alpha": alpha, "beta": beta, "layers": prog.kinds()}
    return Attribution(method="lrp", values=values, target=t, inputs=X,
                       extras={"output": out, "relevance_sum": values.reshape(len(X), -1).sum(axis=1)},
                       provenance=Provenance("lrp", settings, None, clock[0]))


@functools.lru_cache(maxsize=16)
def _deeplift_fn(prog: Program) -> Callable:
    def attribution(x, ref, t):
        record: dict = {prog.input: ref}
        out_ref = run(prog, ref, record=record)
        record = jax.tree_util.tree_map(jax.lax.stop_gradient, record)

        def live_ref(i):
            k = next(k for k in prog.nodes[i].ins if k not in prog.consts)
            return record[k]

        def nonlinear(i, f, z):
            zr = live_ref(i)

            @jax.custom_vjp
            def g(v):
                return f(v)

            def bwd(v, R):
                dz = v - zr
                grad = jax.vjp(f, v)[1](R)[0]
                return (jnp.where(jnp.abs(dz) < 1e-10, grad, R * (f(v) - f(zr)) / jnp.where(dz == 0, 1.0, dz)),)

            g.defvjp(lambda v: (f(v), v), bwd)
            return g(z)

        def maxpool(i, f, z):
            zr = live_ref(i)

            @jax.custom_vjp
            def g(v):
                return f(v)

            def bwd(v, R):
                y, vjp_x = jax.vjp(f, v)
                y_ref, vjp_ref = jax.vjp(f, zr)
                top = jnp.maximum(y, y_ref)
                moved = vjp_x(R * (top - y_ref))[0] + vjp_ref(R * (y - top))[0]
                dz = v - zr
                return (jnp.where(jnp.abs(dz) < 1e-10, vjp_x(R)[0], moved / jnp.where(dz == 0, 1.0, dz)),)

            g.defvjp(lambda v: (f(v), v), bwd)
            return g(z)

        def explained(v):
            out = run(prog, v, nonlinear=nonlinear, maxpool=maxpool)
            return jnp.take_along_axis(out, t[:, None], axis=1)[:, 0]

        fx, vjp = jax.vjp(explained, x)
        grads = vjp(jnp.ones_like(fx))[0]
        return (x - ref) * grads, fx, jnp.take_along_axis(out_ref, t[:, None], axis=1)[:, 0]

    return xla_jit(attribution)


def deeplift(model, X: Any, *, target: Any = None, baseline: Any = None, batch_size: int = BATCH) -> Attribution:
    """DeepLIFT with the rescale rule (Shrikumar et al. 2017) against `baseline` (default zeros):
    attributions (x - baseline) * multipliers that sum exactly to logit(x) - logit(baseline) for
    the explained class (default: the predicted one). Same layers as `lrp`."""
    X = check_inputs(model, X)
    t = targets(model, X, target)
    base = _baseline(model, X, baseline)
    refs = np.broadcast_to(base, X.shape).astype(np.float32)
    batch = max(1, min(int(batch_size), len(X)))
    with timer() as clock:
        fn = _deeplift_fn(_get_program(model, batch))
        values, fx, fb = _batched(fn, [X, refs, t], batch)
    err = values.reshape(len(X), -1).sum(axis=1) - (fx - fb)
    return Attribution(method="deeplift", values=values, target=t, inputs=X,
                       extras={"output": fx, "baseline_output": fb, "completeness_error": err},
                       provenance=Provenance("deeplift", {"baseline": "zeros" if baseline is None else "given"},
                                             None, clock[0]))
