import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from audit import AuditInputError
from audit.models import max_pool


@pytest.mark.parametrize("shape, window", [((3, 8, 8, 4), (2, 2)), ((2, 7, 9, 3), (2, 3)), ((5, 6, 1), (3, 3))])
def test_max_pool_values_and_gradients_are_bit_identical_to_flax(shape, window):
    x = jax.random.normal(jax.random.key(0), shape)
    x = jnp.round(x * 2) / 2  # many ties, where naive reshape-and-max gradients differ
    ref = lambda v: nnx.max_pool(v, window, strides=window)
    assert np.array_equal(max_pool(x, window), ref(x))
    loss = lambda pool: (lambda v: jnp.sum(jnp.sin(3 * pool(v)) * jnp.arange(pool(v).size).reshape(pool(v).shape)))
    ours = jax.jit(jax.grad(loss(lambda v: max_pool(v, window))))(x)
    theirs = jax.jit(jax.grad(loss(ref)))(x)
    assert np.array_equal(ours, theirs)


def test_reshape_max_is_not_equivalent_with_ties():
    x = jnp.zeros((1, 2, 2, 1))
    naive = jax.grad(lambda v: v.reshape(1, 1, 2, 1, 2, 1).max(axis=(2, 4)).sum())(x)
    ours = jax.grad(lambda v: max_pool(v).sum())(x)
    assert np.allclose(naive.ravel(), 0.25) and np.array_equal(ours.ravel(), [1, 0, 0, 0])


def test_bad_shape():
    with pytest.raises(AuditInputError):
        max_pool(jnp.zeros((2, 3)))
