"""padded_batches: the one padded-batch loop (Model.logits, attacks, IBP, smoothing, saliency)."""

import jax
import jax.numpy as jnp
import numpy as np

from audit.models import padded_batches


def test_batched_equals_one_call_and_compiles_once():
    fn = jax.jit(lambda x, y: {"sum": x.sum(axis=1) + y, "double": 2 * x})
    x = np.arange(70, dtype=np.float32).reshape(35, 2)
    y = np.arange(35, dtype=np.float32)
    out = padded_batches(fn, [x, y], 8)  # 4 full chunks and one padded chunk of 3 rows
    np.testing.assert_array_equal(out["sum"], x.sum(axis=1) + y)
    np.testing.assert_array_equal(out["double"], 2 * x)
    assert fn._cache_size() == 1  # every chunk had the same shape
    for n in (1, 8, 9):
        got = padded_batches(fn, [x[:n], y[:n]], 8)
        assert got["sum"].shape == (n,) and got["double"].shape == (n, 2)
    assert fn._cache_size() == 1


def test_chunks_see_fixed_shapes_and_tuples_come_back():
    seen = []

    def fn(x):
        seen.append(x.shape)
        return x[:, 0], jnp.ones((len(x), 3))

    a, b = padded_batches(fn, [np.zeros((5, 4), np.float32)], 2)
    assert set(seen) == {(2, 4)} and len(seen) == 3
    assert a.shape == (5,) and b.shape == (5, 3) and isinstance(a, np.ndarray)


def test_no_rows():
    assert padded_batches(lambda x: x, [np.zeros((0, 3))], 4).shape == (0,)
