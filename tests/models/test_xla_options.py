"""Compile options per model: convolutional models on the CPU compile their gradients with
YNNPACK off and their forward passes with YNNPACK limited to reductions, other models with XLA's
defaults; results agree with the defaults; the choice follows the model whose analyzer runs,
and is recorded in the report."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import audit.models
from audit import Model
from audit.models import _xla, zoo

NONE = {"forward": {}, "gradient": {}}
pytestmark = pytest.mark.skipif(jax.default_backend() != "cpu", reason="the rule is for the CPU backend")


def _cnn():
    module = zoo.build("cnn", {"input_shape": [8, 8, 1], "n_classes": 3, "channels": [4, 6], "hidden": 8})
    return Model.from_nnx(module, input_shape=(8, 8, 1), class_names=("a", "b", "c"))


def _mlp():
    module = zoo.build("mlp", {"in_features": 5, "n_classes": 2, "widths": [8]})
    return Model.from_nnx(module, input_shape=(5,), class_names=("no", "yes"))


def test_conv_models_on_cpu_get_the_reduce_only_fusions(monkeypatch):
    monkeypatch.delenv("FLAX_AUDIT_XLA", raising=False)
    assert _xla.options_for(_cnn()) == _xla.CONV_OPTIONS
    assert _xla.options_for(_mlp()) == NONE
    monkeypatch.setenv("FLAX_AUDIT_XLA", "default")
    assert _xla.options_for(_cnn()) == NONE


def test_an_unknown_flag_falls_back_to_the_defaults(monkeypatch):
    bad = {"forward": {}, "gradient": {_xla.FUSION_FLAG: "LIBRARY_FUSION_TYPE_NO_SUCH_THING"}}
    monkeypatch.setattr(_xla, "CONV_OPTIONS", bad)
    _xla._flag_accepted.cache_clear()
    try:
        assert _xla.options_for(_cnn()) == NONE
    finally:
        _xla._flag_accepted.cache_clear()


def test_jit_compiles_per_options_in_force_and_agrees_with_the_defaults():
    model = _cnn()
    x = jax.random.uniform(jax.random.key(0), (5, 8, 8, 1))

    def loss(params, v):
        return jnp.sum(jax.nn.log_softmax(model.apply(params, v))[:, 0])

    grad = _xla.jit(jax.grad(loss, argnums=1))
    plain = grad(model.params, x)
    assert _xla.active() == NONE and grad._cache_size() == 1
    with audit.models.compile_options(model) as options:
        assert options == _xla.active() == _xla.CONV_OPTIONS
        tuned = grad(model.params, x)
        assert grad._cache_size() == 2
        assert np.allclose(model.logits(x), jax.jit(model.apply)(model.params, x), rtol=1e-5, atol=1e-6)
        assert model._batch_logits._cache_size() == 1  # the forward kind, compiled inside the block only
    assert _xla.active() == NONE
    with pytest.raises(ValueError, match="kind"):
        _xla.jit(loss, kind="backward")
    assert np.allclose(tuned, plain, rtol=1e-5, atol=1e-7 * float(np.abs(plain).max()))
    assert not np.array_equal(plain, 0 * plain)


def test_the_audit_records_its_compile_options(digits, digits_cnn, credit_small, credit_model):
    from audit.pipeline import AuditConfig, run

    config = AuditConfig.from_dict({"analyzers": {"imbalance": {}}})
    assert run(digits_cnn, digits, config, progress=False).metadata["compile_options"] == _xla.CONV_OPTIONS
    assert run(credit_model, credit_small, config, progress=False).metadata["compile_options"] == NONE


def test_attacks_compile_queries_as_forward_passes_and_steps_as_gradients():
    """Square's queries only evaluate the model; PGD's steps differentiate it: each is compiled
    with its kind's options (a query compiled with the gradient options ran 1.7x slower)."""
    from audit.robustness import _core, _pgd, _square, pgd, square

    model = _cnn()
    x = jax.random.uniform(jax.random.key(1), (8, 8, 8, 1))
    y = jnp.asarray(model.predict(x))
    with _xla.for_model(model):
        square(model.apply, model.params, x, y, eps=0.1, queries=3, key=jax.random.key(0), loop="host")
        pgd(model.apply, model.params, x, y, eps=0.1, steps=2, key=jax.random.key(0), loop="host")
    assert _core._jitted(_square._pool_step, "forward")._cache_size() >= 1  # the host loop is the pool
    assert _core._jitted(_square._pool_step, "gradient")._cache_size() == 0
    assert _core._jitted(_pgd._step, "gradient")._cache_size() >= 1
