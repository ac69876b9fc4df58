import flax.linen as linen
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from audit import AuditInputError
from audit.models import Model


class LinenMLP(linen.Module):
    @linen.compact
    def __call__(self, x):
        x = jax.nn.relu(linen.Dense(8, name="hidden")(x))
        return linen.Dense(3, name="out")(x)


class NNXMLP(nnx.Module):
    def __init__(self, rngs):
        self.hidden = nnx.Linear(4, 8, rngs=rngs)
        self.out = nnx.Linear(8, 3, rngs=rngs)

    def __call__(self, x):
        return self.out(jax.nn.relu(self.hidden(x)))


@pytest.fixture(scope="module")
def three_models():
    variables = LinenMLP().init(jax.random.key(0), jnp.zeros((1, 4)))
    p = variables["params"]
    module = NNXMLP(nnx.Rngs(1))
    module.hidden.kernel[...], module.hidden.bias[...] = p["hidden"]["kernel"], p["hidden"]["bias"]
    module.out.kernel[...], module.out.bias[...] = p["out"]["kernel"], p["out"]["bias"]

    def fn(params, x):
        h = jax.nn.relu(x @ params["hidden"]["kernel"] + params["hidden"]["bias"])
        return h @ params["out"]["kernel"] + params["out"]["bias"]

    names = ("a", "b", "c")
    return (Model.from_linen(LinenMLP(), variables, input_shape=(4,), class_names=names, batch_size=16),
            Model.from_nnx(module, input_shape=(4,), class_names=names, batch_size=16),
            Model.from_function(fn, p, input_shape=(4,), class_names=names, batch_size=16))


def test_linen_nnx_and_function_models_give_identical_logits(three_models):
    x = np.random.default_rng(0).normal(size=(37, 4)).astype(np.float32)
    a, b, c = (m.logits(x) for m in three_models)
    assert np.array_equal(a, b) and np.array_equal(a, c)
    p = three_models[0].predict_proba(x)
    assert np.allclose(p.sum(1), 1, atol=1e-6)
    assert np.array_equal(three_models[0].predict(x), a.argmax(1))


def test_batching_equals_one_call_and_compiles_once(three_models):
    model = three_models[2]
    x = np.random.default_rng(1).normal(size=(100, 4)).astype(np.float32)
    direct = np.asarray(jax.jit(model.apply)(model.params, x))
    before = model.compile_count()
    batched = [model.logits(x[:n]) for n in (1, 15, 16, 17, 100)]
    assert model.compile_count() - before <= 1 and model.compile_count() == 1
    assert np.allclose(batched[-1], direct, atol=1e-6)
    for n, out in zip((1, 15, 16, 17, 100), batched):
        assert np.allclose(out, direct[:n], atol=1e-6)


def test_nnx_wrapper_does_not_mutate_the_module():
    module = nnx.Dropout(0.5, rngs=nnx.Rngs(0))
    assert module.deterministic is False
    Model.from_nnx(nnx.Sequential(module), input_shape=(2,), class_names=("a", "b"))
    assert module.deterministic is False


def test_wrong_input_shape_is_a_clear_error(three_models):
    with pytest.raises(AuditInputError, match=r"this model takes \(n, 4\)"):
        three_models[0].logits(np.zeros((3, 5)))


def test_fingerprint_tracks_weights(three_models):
    a, b, c = three_models
    assert a.fingerprint() != b.fingerprint()  # different pytree paths
    assert c.fingerprint() == c.replace(batch_size=4).fingerprint()
    bumped = jax.tree.map(lambda v: v + 1e-3, c.params)
    assert c.replace(params=bumped).fingerprint() != c.fingerprint()
