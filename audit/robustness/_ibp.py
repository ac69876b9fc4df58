"""Interval bound propagation (IBP): guaranteed logit bounds over an L-inf box of inputs.

Gowal et al., "On the effectiveness of interval bound propagation for training verifiably
robust models" (2018); Mirman, Gehr & Vechev, "Differentiable abstract interpretation for
provably robust neural networks" (ICML 2018).

Bounds travel through the network as (centre, radius): an affine layer maps the centre through
the layer and the radius through the layer with |weights| and no bias; monotone layers (ReLU,
max-pooling) map both ends. The margin z_y - z_j of the last dense layer is bounded directly
(Gowal et al.'s "elision" of the last layer), which is tighter than subtracting logit bounds.
By default the model's own jaxpr is interpreted (`audit.models._jaxpr`): any Linen, NNX or
plain-JAX model built from supported primitives gets bounds, identical to the layer walk on the
zoo models; an unsupported primitive is an `AuditInputError` naming it. Given `module=` (or for a
zoo MLP with layer norm, whose dedicated rule is tighter) the layers are read from the NNX module
(zoo MLP / CNN or an `nnx.Sequential`); a layer type without a sound bound is an error naming it.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from audit.errors import AuditInputError
from audit.models._batching import padded_batches
from audit.robustness._domain import Domain, check_domain, check_eps, full_domain
from audit.models._xla import jit as xla_jit

SUPPORTED = ("Linear", "Conv", "ConvTranspose", "BatchNorm (evaluation mode)", "LayerNorm", "Dropout",
             "ReLU", "audit.models.max_pool", "flatten (zoo CNN)")


class Op(NamedTuple):
    """One bound-propagation step: `kind` and the attribute path of its layer in the module."""

    kind: str
    path: tuple
    name: str


def _get(module, path: tuple):
    for p in path:
        module = module[p] if isinstance(p, int) else getattr(module, p)
    return module


def _layer_op(layer, path: tuple, name: str) -> Op | None:
    """The op for one layer, None for identities (dropout in evaluation mode)."""
    from flax import nnx

    from audit.models import max_pool

    if isinstance(layer, (nnx.Linear, nnx.Conv, nnx.ConvTranspose)):
        return Op("affine", path, name)
    if isinstance(layer, nnx.BatchNorm):
        if layer.axis not in (-1,):
            raise AuditInputError(f"IBP: layer {name} (BatchNorm) normalises axis {layer.axis}; only the "
                                  "last axis is supported.")
        return Op("batchnorm", path, name)
    if isinstance(layer, nnx.LayerNorm):
        if layer.reduction_axes not in (-1, (-1,)) or layer.feature_axes not in (-1, (-1,)):
            raise AuditInputError(f"IBP: layer {name} (LayerNorm) reduces over {layer.reduction_axes}; "
                                  "only the last axis is supported.")
        return Op("layernorm", path, name)
    if isinstance(layer, nnx.Dropout):
        return None
    if layer is jax.nn.relu:
        return Op("relu", path, name)
    if layer is max_pool:
        return Op("maxpool", path, name)
    kind = getattr(layer, "__name__", None) or type(layer).__name__
    raise AuditInputError(f"IBP cannot bound layer {name} ({kind}); supported layers: "
                          f"{', '.join(SUPPORTED)}. Use smoothing certification for this model instead "
                          "(methods=('smoothing',)).")


def layer_ops(module) -> tuple[Op, ...]:
    """Walk an NNX module's layers in call order: the zoo MLP / CNN or an `nnx.Sequential`."""
    from flax import nnx

    from audit.models import zoo

    ops: list[Op | None] = []
    if isinstance(module, zoo.MLP):
        for i in range(len(module.layers)):
            ops.append(_layer_op(module.layers[i], ("layers", i), f"layers[{i}]"))
            if len(module.norms):
                ops.append(_layer_op(module.norms[i], ("norms", i), f"norms[{i}]"))
            ops.append(Op("relu", (), "relu"))
        ops.append(_layer_op(module.head, ("head",), "head"))
    elif isinstance(module, zoo.CNN):
        for conv in ("conv1", "conv2"):
            ops += [_layer_op(getattr(module, conv), (conv,), conv), Op("relu", (), "relu"),
                    Op("maxpool", (), "max_pool")]
        ops += [Op("flatten", (), "flatten"), _layer_op(module.dense, ("dense",), "dense"),
                Op("relu", (), "relu"), _layer_op(module.head, ("head",), "head")]
    elif isinstance(module, nnx.Sequential):
        ops = [_layer_op(layer, ("layers", i), f"layers[{i}]") for i, layer in enumerate(module.layers)]
    else:
        raise AuditInputError(f"IBP cannot read the layers of a {type(module).__name__}: it walks the zoo "
                              "MLP and CNN and nnx.Sequential models. Wrap your layers in nnx.Sequential or "
                              "use smoothing certification (methods=('smoothing',)).")
    return tuple(op for op in ops if op is not None)


def module_of(model, module=None):
    """The NNX module behind a Model: `module` if given, else rebuilt from the zoo architecture."""
    from flax import nnx

    from audit.models._factory import module_of as fresh_module

    if module is None:
        arch = getattr(model, "architecture", None)
        if not arch or "factory" in arch:
            raise AuditInputError("IBP's layer walk needs the model's NNX layers, but this Model has no zoo "
                                  "architecture; pass module= (the NNX module it was built from), or let IBP "
                                  "interpret its jaxpr (module=None), or use smoothing certification "
                                  "(methods=('smoothing',)).")
        module = fresh_module(model)
        module.eval()
        nnx.update(module, model.params)
    elif not isinstance(module, nnx.Module):
        raise AuditInputError(f"module must be an NNX module, got {type(module).__name__}.")
    else:
        module = nnx.clone(module)
        module.eval()
    return module


# ---- propagation --------------------------------------------------------------------------
def _swap(variable, value):
    old = variable[...]
    variable[...] = value
    return old


def _affine_radius(layer, r):
    """|W| r for a Linear / Conv layer: the layer itself with |kernel| and zero bias."""
    kernel = _swap(layer.kernel, jnp.abs(layer.kernel[...]))
    bias = _swap(layer.bias, jnp.zeros_like(layer.bias[...])) if layer.bias is not None else None
    out = layer(r)
    layer.kernel[...] = kernel
    if bias is not None:
        layer.bias[...] = bias
    return out


def _variance_lower(lo, hi, iterations: int = 40):
    """A sound lower bound of var(x) over the box: var(x) = min_c mean((x - c)^2), so its minimum over
    the box is min_c f(c) with f(c) = mean(dist(c, [lo_i, hi_i])^2), convex in c. Bisection on f'
    brackets the minimiser in [a, b]; convexity gives min f >= f(c) + f'(c) (c* - c) for c* in [a, b]."""
    f = lambda c: jnp.mean(jnp.maximum(jnp.maximum(lo - c, c - hi), 0.0) ** 2, axis=-1, keepdims=True)
    df = lambda c: 2 * jnp.mean(jnp.maximum(c - hi, 0.0) - jnp.maximum(lo - c, 0.0), axis=-1, keepdims=True)

    def body(_, ab):
        a, b = ab
        c = (a + b) / 2
        up = df(c) > 0
        return jnp.where(up, a, c), jnp.where(up, c, b)

    a, b = jax.lax.fori_loop(0, iterations, body, (jnp.min(lo, -1, keepdims=True), jnp.max(hi, -1, keepdims=True)))
    c = (a + b) / 2
    slope = df(c)
    bound = f(c) + jnp.minimum(slope * (a - c), slope * (b - c))
    return jnp.maximum(bound, 0.0)


def _layernorm(layer, lo, hi):
    """Sound (loose) bounds for LayerNorm: bound the centred inputs, the variance, then the ratio."""
    n = lo.shape[-1]
    mu, r = (lo + hi) / 2, (hi - lo) / 2
    centre = mu - jnp.mean(mu, axis=-1, keepdims=True)  # d = (I - 11^T / n) x
    rad = r * (1 - 1 / n) + (jnp.sum(r, axis=-1, keepdims=True) - r) / n
    dlo, dhi = centre - rad, centre + rad
    var_hi = jnp.mean(jnp.maximum(dlo ** 2, dhi ** 2), axis=-1, keepdims=True)
    inv_hi = jax.lax.rsqrt(_variance_lower(lo, hi) + layer.epsilon)
    inv_lo = jax.lax.rsqrt(var_hi + layer.epsilon)
    corners = jnp.stack([dlo * inv_lo, dlo * inv_hi, dhi * inv_lo, dhi * inv_hi])
    lo, hi = corners.min(axis=0), corners.max(axis=0)
    if layer.scale is not None:
        s = layer.scale[...]
        lo, hi = jnp.minimum(lo * s, hi * s), jnp.maximum(lo * s, hi * s)
    if layer.bias is not None:
        lo, hi = lo + layer.bias[...], hi + layer.bias[...]
    return lo, hi


def _step(op: Op, module, lo, hi):
    from audit.models import max_pool

    if op.kind == "relu":
        return jax.nn.relu(lo), jax.nn.relu(hi)
    if op.kind == "maxpool":
        return max_pool(lo), max_pool(hi)
    if op.kind == "flatten":
        return lo.reshape(lo.shape[0], -1), hi.reshape(hi.shape[0], -1)
    layer = _get(module, op.path)
    mu, r = (lo + hi) / 2, (hi - lo) / 2
    if op.kind == "affine":
        c, rad = layer(mu), _affine_radius(layer, r)
    elif op.kind == "batchnorm":
        scale = jax.lax.rsqrt(layer.var[...] + layer.epsilon)
        if layer.scale is not None:
            scale = scale * layer.scale[...]
        c, rad = layer(mu), r * jnp.abs(scale)
    elif op.kind == "layernorm":
        return _layernorm(layer, lo, hi)
    else:  # pragma: no cover - ops come from layer_ops
        raise AssertionError(op.kind)
    return c - rad, c + rad


def _propagate(ops: Sequence[Op], module, lo, hi):
    for op in ops:
        lo, hi = _step(op, module, lo, hi)
    return lo, hi


def walks_layers(model, module=None) -> bool:
    """Whether IBP reads NNX layers (given `module=`, or a zoo MLP with layer norm) rather than
    interpreting the model's jaxpr."""
    arch = getattr(model, "architecture", None) or {}
    return module is not None or (arch.get("name") == "mlp" and arch.get("config", {}).get("norm") == "layer")


def check_ibp(model, module=None) -> None:
    """Fail early (an AuditInputError naming the layer or primitive) when IBP cannot bound `model`."""
    from audit.models._jaxpr import check_supported

    if walks_layers(model, module):
        layer_ops(module_of(model, module))
    else:
        check_supported(model.apply, model.params, model.input_shape)


def interval_function(model, *, module=None) -> tuple[Callable, Any]:
    """`(bounds, params)`: `bounds(params, lower, upper) -> (logits_lower, logits_upper)`, pure and
    jittable, valid for every input in the box [lower, upper] (batched, the model's input shape)."""
    from flax import nnx

    from audit.models._jaxpr import interval_bounds

    if not walks_layers(model, module):
        apply = model.apply
        return (lambda params, lower, upper: interval_bounds(apply, params, lower, upper)), model.params
    module = module_of(model, module)
    ops = layer_ops(module)
    graphdef, params, rest = nnx.split(module, (nnx.Param, nnx.BatchStat), ...)

    def bounds(params, lower, upper):
        return _propagate(ops, nnx.merge(graphdef, params, rest), lower, upper)

    return bounds, params


def _margin_function(model, module) -> tuple[Callable, Any]:
    """`margin(params, lower, upper, y)`: a lower bound of min_{j != y} z_y - z_j over the box."""
    from flax import nnx

    from audit.models._jaxpr import margin_lower_bound

    if not walks_layers(model, module):
        apply = model.apply
        return (lambda params, lower, upper, y: margin_lower_bound(apply, params, lower, upper, y)), model.params
    module = module_of(model, module)
    ops = layer_ops(module)
    graphdef, params, rest = nnx.split(module, (nnx.Param, nnx.BatchStat), ...)
    last = ops[-1]
    elide = last.kind == "affine" and isinstance(_get(module, last.path), nnx.Linear)

    def margin(params, lower, upper, y):
        m = nnx.merge(graphdef, params, rest)
        if not elide:
            lo, hi = _propagate(ops, m, lower, upper)
            own = jnp.take_along_axis(lo, y[:, None], axis=1)
            return jnp.min(jnp.where(jax.nn.one_hot(y, lo.shape[1], dtype=bool), jnp.inf, own - hi), axis=1)
        lo, hi = _propagate(ops[:-1], m, lower, upper)
        head = _get(m, last.path)
        w = head.kernel[...]  # (features, classes)
        b = head.bias[...] if head.bias is not None else jnp.zeros(w.shape[1], w.dtype)
        mu, r = (lo + hi) / 2, (hi - lo) / 2
        diff = w[:, y].T[:, :, None] - w[None]  # (n, features, classes): w_y - w_j
        low = jnp.einsum("nf,nfk->nk", mu, diff) - jnp.einsum("nf,nfk->nk", r, jnp.abs(diff))
        low = low + (b[y][:, None] - b[None])
        return jnp.min(jnp.where(jax.nn.one_hot(y, w.shape[1], dtype=bool), jnp.inf, low), axis=1)

    return margin, params


def eps_box(x, eps, domain: Domain) -> tuple[jnp.ndarray, jnp.ndarray]:
    """The attacker's set as a box: x +- eps on mutable inputs, within the domain (containing x)."""
    e = jnp.asarray(eps, x.dtype).reshape((-1,) + (1,) * (x.ndim - 1)) * domain.mutable
    lower = jnp.maximum(x - e, jnp.minimum(domain.lower, x))
    upper = jnp.minimum(x + e, jnp.maximum(domain.upper, x))
    return lower, upper


def _compiled(margin_fn):
    def run(params, x, y, eps, domain):
        lower, upper = eps_box(x, eps, domain)
        return margin_fn(params, lower, upper, y)

    return xla_jit(run, kind="forward")


@functools.lru_cache(maxsize=8)
def _cached(model):
    """One compiled margin function per Model (rebuilding the module and re-tracing costs seconds)."""
    margin_fn, params = _margin_function(model, None)
    return _compiled(margin_fn), params


def ibp_margins(model, x, y, *, eps, domain: Domain | None = None, module=None,
                batch_size: int = 256) -> np.ndarray:
    """Per example, a guaranteed lower bound of the logit margin z_y - max_{j != y} z_j over
    every input within L-inf distance `eps` of x (on mutable inputs, inside `domain`).

    A positive margin certifies that no perturbation in that set changes the prediction from y.
    `eps` is a number or one value per row. Needs the model's layers (see `layer_ops`).
    """
    x = np.asarray(x, np.float32)
    y = np.asarray(y)
    if x.ndim < 2 or x.shape[1:] != tuple(model.input_shape):
        raise AuditInputError(f"ibp_margins: x has shape {x.shape}; the model takes (n, "
                              f"{', '.join(map(str, model.input_shape))}).")
    if y.shape != (len(x),) or y.dtype.kind not in "iu" or (len(y) and (y.min() < 0 or y.max() >= model.n_classes)):
        raise AuditInputError(f"ibp_margins: y must hold {len(x)} class ids in [0, {model.n_classes}).")
    if not np.isfinite(x).all():
        raise AuditInputError("ibp_margins: x has NaN or infinite values.")
    domain = full_domain(jnp.asarray(x)) if domain is None else check_domain(domain, model.input_shape)
    e = check_eps(eps, norm="linf", name="ibp_margins: eps")
    if e.size not in (1, len(x)):
        raise AuditInputError(f"ibp_margins: eps must be a number or one value per row ({len(x)}).")
    e = np.broadcast_to(e.astype(np.float32), (len(x),))
    if module is None:
        run, params = _cached(model)
    else:
        margin_fn, params = _margin_function(model, module)
        run = _compiled(margin_fn)
    if len(x) == 0:
        return np.zeros(0, np.float32)
    batch = min(int(batch_size), len(x))
    return padded_batches(lambda xb, yb, eb: run(params, xb, yb.astype(np.int32), eb, domain),
                          [x, y, e], batch).astype(np.float32)


def ibp_bounds(model, lower, upper, *, module=None) -> tuple[np.ndarray, np.ndarray]:
    """Logit bounds (lower, upper) valid for every input in the box [lower, upper]."""
    lower, upper = np.asarray(lower, np.float32), np.asarray(upper, np.float32)
    if lower.shape != upper.shape or lower.shape[1:] != tuple(model.input_shape):
        raise AuditInputError(f"ibp_bounds: lower {lower.shape} and upper {upper.shape} must both be "
                              f"(n, {', '.join(map(str, model.input_shape))}).")
    if not (lower <= upper).all():
        raise AuditInputError("ibp_bounds: lower must not exceed upper anywhere.")
    fn, params = interval_function(model, module=module)
    lo, hi = xla_jit(fn, kind="forward")(params, lower, upper)
    return np.asarray(lo), np.asarray(hi)
