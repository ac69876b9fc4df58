"""Users' max pools get the zoo's fast gradient: identical values and gradients (ties included),
and the slow select_and_scatter really leaves the gradient's program."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from audit import Model
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


def test_linen_cnn_with_nn_max_pool_gets_identical_gradients():
    module, x = LinenCNN(), _images((6, 12, 12, 1))
    variables = module.init(jax.random.key(1), x)
    model = Model.from_linen(module, variables, input_shape=(12, 12, 1), class_names=CLASSES)
    original = lambda v, xb: module.apply(v, xb)
    assert "select_and_scatter_add" in _program(original, variables, x)
    assert "select_and_scatter_add" not in _program(model.apply, variables, x)
    assert np.array_equal(model.logits(x), jax.jit(original)(variables, x))
    assert _same(_grads(model.apply, variables, x), _grads(original, variables, x))
    ties = np.asarray(nn.relu(nn.Conv(6, (3, 3)).apply({"params": variables["params"]["Conv_0"]}, x)))
    assert (ties == 0).mean() > 0.1  # the test exercises tied maxima (ReLU zeros)


def test_nnx_module_with_nnx_and_linen_max_pool_gets_identical_gradients():
    module, x = NnxCNN(nnx.Rngs(0)), _images((5, 10, 14, 1), seed=3)
    model = Model.from_nnx(module, input_shape=(10, 14, 1), class_names=CLASSES)
    original = model.apply.__wrapped_apply__
    assert _program(original, model.params, x).count("select_and_scatter_add") == 2
    assert "select_and_scatter_add" not in _program(model.apply, model.params, x)
    assert _same(_grads(model.apply, model.params, x), _grads(original, model.params, x))


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
