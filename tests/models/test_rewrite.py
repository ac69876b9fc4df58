"""Users' max pools get the zoo's fast gradient: identical values and gradients (ties included),
and the slow select_and_scatter really leaves the gradient's program. Few-channel convolutions
get a cheap input gradient: the same values, the same kernel gradient, the input gradient equal
up to float rounding."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from audit import Model
from audit.models._conv import small_input_conv
from audit.models._pooling import window_max
from audit.models._rewrite import fast_apply

CLASSES = tuple("abcd")


class LinenCNN(nn.Module):
    """Written the way users write it: nn.max_pool, BatchNorm, Dropout."""

    @nn.compact
    def __call__(self, x, train: bool = False):
        x = nn.relu(nn.Conv(6, (3, 3))(x))
        x = nn.max_pool(x, (2, 2), strides=(2, 2))
        x = nn.BatchNorm(use_running_average=not train)(x)
        x = nn.relu(nn.Conv(8, (3, 3))(x))
        x = nn.max_pool(x, (2, 2), strides=(2, 2))
        x = nn.Dropout(0.3, deterministic=not train)(x)
        return nn.Dense(4)(x.reshape(x.shape[0], -1))


class NnxCNN(nnx.Module):
    def __init__(self, rngs):
        self.conv1 = nnx.Conv(1, 5, (3, 3), rngs=rngs)
        self.conv2 = nnx.Conv(5, 6, (3, 3), rngs=rngs)
        self.drop = nnx.Dropout(0.2, rngs=rngs)
        self.out = nnx.Linear(6 * 2 * 2, 4, rngs=rngs)

    def __call__(self, x):
        x = nnx.max_pool(nnx.relu(self.conv1(x)), (2, 2), strides=(2, 2))
        x = nn.max_pool(nnx.relu(self.conv2(x)), (2, 3), strides=(2, 3))  # flax.linen inside NNX
        return self.out(self.drop(x).reshape(x.shape[0], -1))


def _images(shape, seed=0):
    x = jax.random.uniform(jax.random.key(seed), shape)
    return jnp.round(x * 4) / 4  # coarse values: tied maxima in many windows


def _grads(apply, params, x):
    """Input gradient and parameter gradient of a loss that weights every logit differently."""
    def loss(p, v):
        z = apply(p, v)
        return jnp.sum(jnp.sin(3 * z) * jnp.arange(z.size).reshape(z.shape))
    return jax.jit(jax.grad(loss, argnums=(0, 1)))(params, x)


def _program(apply, params, x) -> str:
    return str(jax.make_jaxpr(jax.grad(lambda v: apply(params, v).sum()))(x))


def _same(a, b):
    la, lb = jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)
    return len(la) == len(lb) and all(np.array_equal(u, v) for u, v in zip(la, lb))


def _same_but_rounding_in_x(a, b):
    """Parameter gradients identical; the input gradient (through a rewritten first-layer
    convolution) equal up to float32 rounding of a sum taken in another order."""
    (pa, xa), (pb, xb) = a, b
    scale = float(np.abs(np.asarray(xb)).max())
    return _same(pa, pb) and np.allclose(xa, xb, rtol=0, atol=1e-6 * scale) and not np.array_equal(xa, 0 * xa)


def test_linen_cnn_with_nn_max_pool_gets_identical_gradients():
    module, x = LinenCNN(), _images((6, 12, 12, 1))
    variables = module.init(jax.random.key(1), x)
    model = Model.from_linen(module, variables, input_shape=(12, 12, 1), class_names=CLASSES)
    original = lambda v, xb: module.apply(v, xb)
    assert "select_and_scatter_add" in _program(original, variables, x)
    assert "select_and_scatter_add" not in _program(model.apply, variables, x)
    assert np.array_equal(jax.jit(model.apply)(model.params, x), jax.jit(original)(variables, x))  # same forward
    assert _same_but_rounding_in_x(_grads(model.apply, variables, x), _grads(original, variables, x))
    ties = np.asarray(nn.relu(nn.Conv(6, (3, 3)).apply({"params": variables["params"]["Conv_0"]}, x)))
    assert (ties == 0).mean() > 0.1  # the test exercises tied maxima (ReLU zeros)


def test_nnx_module_with_nnx_and_linen_max_pool_gets_identical_gradients():
    module, x = NnxCNN(nnx.Rngs(0)), _images((5, 10, 14, 1), seed=3)
    model = Model.from_nnx(module, input_shape=(10, 14, 1), class_names=CLASSES)
    original = model.apply.__wrapped_apply__
    assert _program(original, model.params, x).count("select_and_scatter_add") == 2
    assert "select_and_scatter_add" not in _program(model.apply, model.params, x)
    assert _same_but_rounding_in_x(_grads(model.apply, model.params, x), _grads(original, model.params, x))


def test_pool_inside_a_jitted_helper_and_under_vmap():
    pool = jax.jit(lambda v: nn.max_pool(v, (2, 2), strides=(2, 2)))
    apply = lambda w, v: (pool(jnp.tanh(v * w)).reshape(v.shape[0], -1) @ jnp.ones((9, 3)))
    fast, w, x = fast_apply(apply), jnp.float32(1.5), _images((4, 6, 6, 1), seed=5)
    assert "select_and_scatter_add" not in _program(fast, w, x)
    assert _same(_grads(fast, w, x), _grads(apply, w, x))
    per_row = lambda f: jax.vmap(jax.grad(lambda r: f(w, r[None]).sum()))(x)
    assert np.array_equal(per_row(fast), per_row(apply))


def test_overlapping_and_padded_pools_are_left_alone():
    for kwargs in ({"strides": (1, 1)}, {"strides": (2, 2), "padding": "SAME"}):
        apply = lambda w, v, kw=kwargs: nn.max_pool(v * w, (2, 2), **kw).sum(axis=(1, 2))
        x = _images((2, 5, 5, 3))
        assert "select_and_scatter_add" in _program(fast_apply(apply), 1.0, x)
        assert _same(_grads(fast_apply(apply), 1.0, x), _grads(apply, 1.0, x))


def test_switch_and_idempotence():
    module, x = LinenCNN(), _images((2, 12, 12, 1))
    variables = module.init(jax.random.key(1), x)
    model = Model.from_linen(module, variables, input_shape=(12, 12, 1), class_names=CLASSES)
    assert model.replace(batch_size=8).apply is model.apply  # caches keyed by apply survive
    plain = model.replace(fast_gradients=False)
    assert "select_and_scatter_add" in _program(plain.apply, variables, x)
    assert np.array_equal(plain.logits(x), model.logits(x))


@pytest.mark.parametrize("shape, window", [((3, 9, 2), (1, 3, 1)), ((2, 4, 6, 4, 2), (1, 2, 3, 2, 1)),
                                           ((7,), (2,)), ((4, 5), (2, 5))])
def test_window_max_matches_reduce_window_in_any_rank(shape, window):
    x = _images(shape, seed=7)
    ref = lambda v: jax.lax.reduce_window(v, -jnp.inf, jax.lax.max, window, window, "VALID")
    assert np.array_equal(window_max(x, window), ref(x))
    loss = lambda pool: (lambda v: jnp.sum(jnp.cos(pool(v)) * jnp.arange(pool(v).size).reshape(pool(v).shape)))
    assert np.array_equal(jax.grad(loss(lambda v: window_max(v, window)))(x), jax.grad(loss(ref))(x))


def _conv_program_shapes(apply, params, x) -> list:
    """Output shapes of the convolutions in the input gradient's program."""
    jaxpr = jax.make_jaxpr(jax.grad(lambda v: apply(params, v).sum()))(x).jaxpr
    return [tuple(e.outvars[0].aval.shape) for e in jaxpr.eqns if e.primitive.name == "conv_general_dilated"]


@pytest.mark.parametrize("x_shape, k_shape, padding, dims", [
    ((2, 9, 7, 1), (3, 3, 1, 5), ((1, 1), (1, 1)), ("NHWC", "HWIO", "NHWC")),
    ((2, 9, 7, 3), (5, 3, 3, 4), ((2, 1), (0, 2)), ("NHWC", "HWIO", "NHWC")),   # asymmetric padding
    ((2, 3, 9, 7), (4, 3, 3, 2), ((0, 0), (1, 1)), ("NCHW", "OIHW", "NCHW")),   # channels first
    ((2, 11, 2), (4, 2, 6), ((3, 0),), ("NWC", "WIO", "NWC")),                  # 1-D
])
def test_small_input_conv_values_and_gradients(x_shape, k_shape, padding, dims):
    rng = np.random.default_rng(sum(x_shape))
    x, k = (jnp.asarray(rng.normal(size=s), jnp.float32) for s in (x_shape, k_shape))
    conv = lambda kk, v: jax.lax.conv_general_dilated(v, kk, (1,) * (len(x_shape) - 2), padding,
                                                      dimension_numbers=dims)
    fast = fast_apply(conv)
    assert np.array_equal(fast(k, x), conv(k, x))
    weights = jnp.asarray(rng.normal(size=conv(k, x).shape), jnp.float32)
    loss = lambda f: (lambda kk, v: jnp.sum(f(kk, v) * weights))
    ours, xla = jax.jit(jax.grad(loss(fast), (0, 1)))(k, x), jax.grad(loss(conv), (0, 1))(k, x)
    assert _same_but_rounding_in_x(ours, xla)
    assert x_shape not in _conv_program_shapes(fast, k, x)       # no transposed conv onto the input
    assert x_shape in _conv_program_shapes(conv, k, x)


def test_wide_strided_and_grouped_convs_are_left_alone():
    x = _images((2, 8, 8, 6))
    for kwargs in ({}, {"strides": (2, 2)}, {"feature_group_count": 2}):
        conv = nn.Conv(4, (3, 3), **kwargs)
        variables = conv.init(jax.random.key(0), x)
        apply = lambda v, xb, c=conv: c.apply(v, xb)
        assert _same(_grads(fast_apply(apply), variables, x), _grads(apply, variables, x))
    thin = _images((2, 8, 8, 2))
    conv = nn.Conv(4, (3, 3), strides=(2, 2))
    variables = conv.init(jax.random.key(0), thin)
    apply = lambda v, xb: conv.apply(v, xb)
    assert (2, 8, 8, 2) in _conv_program_shapes(fast_apply(apply), variables, thin)


def test_small_input_conv_called_directly_matches_the_primitive():
    x, k = jnp.ones((1, 5, 5, 1)), jnp.ones((3, 3, 1, 2))
    params = dict(window_strides=(1, 1), padding=((1, 1), (1, 1)), lhs_dilation=(1, 1), rhs_dilation=(1, 1),
                  dimension_numbers=jax.lax.conv_dimension_numbers(x.shape, k.shape, ("NHWC", "HWIO", "NHWC")),
                  feature_group_count=1, batch_group_count=1, precision=None, preferred_element_type=None,
                  out_sharding=None)
    assert np.array_equal(small_input_conv(x, k, params), jax.lax.conv_general_dilated_p.bind(x, k, **params))
