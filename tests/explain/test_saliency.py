"""Gradient attributions: oracles (linear model, integrals known by hand), completeness on the
zoo models, SmoothGrad as a wrapper, batching, jit, compilation count and bad input."""

from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from audit.errors import AuditInputError
from audit.explain import (Attribution, gradient, gradient_x_input, integrated_gradients, smoothgrad)
from audit.explain import _saliency
from audit.models import Model
from audit.results import to_jsonable

W = np.array([1.5, -2.0, 0.5, 0.0, 3.0], np.float32)


def _fn_model(fn, d=3):
    """Two-class model with logits [0, fn(x)] on d inputs."""
    return Model.from_function(lambda p, x: jnp.stack([jnp.zeros(len(x)), fn(x)], axis=-1), {},
                               input_shape=(d,), class_names=("a", "b"))


@pytest.fixture(scope="module")
def X5():
    return np.random.default_rng(0).normal(size=(9, 5)).astype(np.float32)


def test_gradient_and_gradient_x_input_of_linear_model(linear_model, X5):
    g = gradient(linear_model, X5, target=1)
    np.testing.assert_allclose(g.values, np.broadcast_to(W, X5.shape), rtol=0, atol=1e-6)
    gxi = gradient_x_input(linear_model, X5, target=1)
    np.testing.assert_allclose(gxi.values, W * X5, rtol=1e-6, atol=1e-6)
    # class 0 has a constant logit: zero gradient
    assert np.all(gradient(linear_model, X5, target=0).values == 0)


def test_ig_of_linear_model_is_w_times_x_minus_baseline(linear_model, X5):
    base = np.array([0.5, -1.0, 0.0, 2.0, 1.0], np.float32)
    ig = integrated_gradients(linear_model, X5, target=1, baseline=base, steps=7)
    np.testing.assert_allclose(ig.values, W * (X5 - base), rtol=1e-5, atol=1e-5)
    assert ig.completeness_error() < 1e-5


@pytest.mark.parametrize("rule", _saliency.RULES)
def test_ig_of_sin_matches_hand_integral(rule):
    # f(x) = sum_i sin(x_i); IG_i from 0 = x_i * int_0^1 cos(a x_i) da = sin(x_i)
    model = _fn_model(lambda x: jnp.sin(x).sum(axis=1))
    X = np.array([[0.3, -1.2, 2.0], [1.5, 0.1, -0.7]], np.float32)
    ig = integrated_gradients(model, X, target=1, steps=200, rule=rule)
    # one-sided sums err by about x (1 - cos x) / (2 steps) < 8e-3 here; trapezoid and midpoint by O(1/steps^2)
    np.testing.assert_allclose(ig.values, np.sin(X), atol=1e-2 if rule in ("riemann_left", "riemann_right") else 2e-4)


def test_ig_of_product_splits_evenly():
    # f(x) = x0 * x1 from baseline 0: path integral gives x0 x1 / 2 to each factor, 0 to x2
    model = _fn_model(lambda x: x[:, 0] * x[:, 1])
    X = np.array([[2.0, 3.0, 5.0], [-1.0, 4.0, 1.0]], np.float32)
    ig = integrated_gradients(model, X, target=1, steps=2)  # integrand linear in alpha: trapezoid exact
    np.testing.assert_allclose(ig.values, np.stack([X[:, 0] * X[:, 1] / 2] * 2 + [np.zeros(2)], 1), atol=1e-5)


def test_trapezoid_beats_left_riemann_on_a_smooth_path():
    model = _fn_model(lambda x: jnp.tanh(x).sum(axis=1) + (x ** 3).sum(axis=1) / 10)
    X = np.random.default_rng(1).normal(size=(20, 3)).astype(np.float32) * 2
    err = {r: integrated_gradients(model, X, target=1, steps=16, rule=r).completeness_error()
           for r in ("trapezoid", "riemann_left")}
    assert err["trapezoid"] < err["riemann_left"] / 3


def test_path_rules_integrate_constants_exactly():
    for rule in _saliency.RULES:
        a, w = _saliency.path_rule(rule, 9)
        assert abs(w.sum() - 1) < 1e-12 and a.min() >= 0 and a.max() <= 1
        assert abs((w * a).sum() - 0.5) < 1e-12 or rule in ("riemann_left", "riemann_right")


def test_ig_completeness_within_1pct_on_zoo_models(credit_small, credit_model, digits, digits_cnn):
    tab = integrated_gradients(credit_model, credit_small.test.X[:64], baseline=credit_small.train.X.mean(0))
    img = integrated_gradients(digits_cnn, digits.test.X[:64])
    assert tab.completeness_error() < 0.01
    assert img.completeness_error() < 0.01
    # the extras agree with the model's own logits
    logits = digits_cnn.logits(digits.test.X[:64])
    np.testing.assert_allclose(img.extras["output"], logits[np.arange(64), img.target], rtol=1e-4, atol=1e-4)
    assert img.findings[0].status == "pass"


def test_low_steps_warn_about_completeness(digits, digits_cnn):
    ig = integrated_gradients(digits_cnn, digits.test.X[:32], steps=2, rule="riemann_left")
    assert ig.completeness_error() > 0.01
    assert ig.findings[0].status == "warn"


def test_smoothgrad_with_zero_noise_equals_wrapped_method(digits, digits_cnn):
    X = digits.test.X[:5]
    for method, plain in (("gradient", gradient), ("gradient_x_input", gradient_x_input),
                          ("integrated_gradients", integrated_gradients)):
        sg = smoothgrad(digits_cnn, X, method=method, noise=0.0, n_samples=3)
        np.testing.assert_allclose(sg.values, plain(digits_cnn, X).values, rtol=1e-5, atol=1e-6)
    sq = smoothgrad(digits_cnn, X, noise=0.0, n_samples=2, squared=True)
    np.testing.assert_allclose(sq.values, gradient(digits_cnn, X).values ** 2, rtol=1e-5, atol=1e-8)


def test_smoothgrad_of_linear_gradient_is_exact_and_seeded(linear_model, X5):
    sg = smoothgrad(linear_model, X5, target=1, noise=0.5, n_samples=7, seed=3)
    np.testing.assert_allclose(sg.values, np.broadcast_to(W, X5.shape), atol=1e-6)
    a = smoothgrad(linear_model, X5, method="gradient_x_input", target=1, noise=0.3, seed=3).values
    b = smoothgrad(linear_model, X5, method="gradient_x_input", target=1, noise=0.3, seed=3).values
    c = smoothgrad(linear_model, X5, method="gradient_x_input", target=1, noise=0.3, seed=4).values
    assert np.array_equal(a, b) and not np.allclose(a, c)
    # SmoothGrad of x * w is w * (mean of the noisy copies): rebuild the documented noise
    eps = np.random.default_rng(3).standard_normal((len(X5), 25, 5)).astype(np.float32)
    sigma = 0.3 * (X5.max(1) - X5.min(1))
    np.testing.assert_allclose(a, W * (X5 + sigma[:, None] * eps.mean(1)), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("method", ["gradient", "gradient_x_input", "integrated_gradients"])
def test_batched_equals_per_example(digits, digits_cnn, method):
    fn = getattr(_saliency, method)
    X = digits.test.X[:6]
    batched = fn(digits_cnn, X).values
    single = np.concatenate([fn(digits_cnn, X[i:i + 1], batch_size=1).values for i in range(len(X))])
    np.testing.assert_allclose(batched, single, rtol=1e-4, atol=1e-6)


def test_jit_equals_no_jit(credit_small, credit_model):
    X = credit_small.test.X[:2]
    jitted = integrated_gradients(credit_model, X, steps=4)
    with jax.disable_jit():
        plain = integrated_gradients(credit_model, X, steps=4)
    np.testing.assert_allclose(jitted.values, plain.values, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(jitted.extras["completeness_error"], plain.extras["completeness_error"], atol=1e-5)


def test_no_recompilation_for_new_row_counts_in_a_bucket(credit_small, credit_model):
    X = credit_small.test.X
    integrated_gradients(credit_model, X[:5], steps=10)
    fn = _saliency._compiled(_saliency.integrated_gradients_kernel, credit_model.apply, _saliency._freeze(
        {"output": "logit", "alphas": _saliency.path_rule("trapezoid", 10)[0],
         "weights": _saliency.path_rule("trapezoid", 10)[1]}))
    before = fn._cache_size()
    integrated_gradients(credit_model, X[:7], steps=10)  # same power-of-two bucket (8)
    integrated_gradients(credit_model, X[:20], steps=10, batch_size=8)  # explicit chunk
    mean = X.mean(axis=0)
    other = integrated_gradients(credit_model, X[:7], steps=10, baseline=mean)  # a new baseline
    assert fn._cache_size() == before == 1
    np.testing.assert_allclose(other.extras["baseline_output"],
                               credit_model.logits(mean[None])[0, other.target], rtol=1e-4, atol=1e-5)


def test_probability_output_and_targets(digits, digits_cnn):
    X = digits.test.X[:4]
    g = gradient(digits_cnn, X, target=3, output="probability")
    assert np.all(g.target == 3)
    ig = integrated_gradients(digits_cnn, X, target=np.array([0, 1, 2, 3]), output="probability")
    p = digits_cnn.predict_proba(X)
    np.testing.assert_allclose(ig.extras["output"], p[np.arange(4), [0, 1, 2, 3]], rtol=1e-4, atol=1e-6)
    assert ig.completeness_error() < 0.02


def test_attribution_json_round_trip_is_exact(digits, digits_cnn):
    ig = integrated_gradients(digits_cnn, digits.test.X[:3])
    back = Attribution.from_dict(json.loads(json.dumps(to_jsonable(ig.to_dict()))))
    assert np.array_equal(back.values, ig.values) and np.array_equal(back.inputs, ig.inputs)
    for k, v in ig.extras.items():
        assert np.array_equal(back.extras[k], v)
    assert back.metrics() == ig.metrics() and back.provenance == ig.provenance


def test_grouped_keeps_totals(credit_small, credit_model):
    ig = integrated_gradients(credit_model, credit_small.test.X[:4])
    raw = ig.grouped(credit_small.feature_groups, credit_small.raw_feature_names)
    assert raw.values.shape == (4, len(credit_small.raw_feature_names))
    np.testing.assert_allclose(raw.values.sum(1), ig.flat.sum(1), rtol=1e-5, atol=1e-6)


def test_bad_input(linear_model, X5):
    frozen = linear_model.replace(differentiable=False)
    with pytest.raises(AuditInputError, match="differentiable"):
        integrated_gradients(frozen, X5)
    with pytest.raises(AuditInputError, match="differentiable"):
        smoothgrad(frozen, X5)
    with pytest.raises(AuditInputError, match="shape"):
        gradient(linear_model, np.zeros((3, 4)))
    with pytest.raises(AuditInputError, match="NaN"):
        gradient(linear_model, np.full((1, 5), np.nan))
    with pytest.raises(AuditInputError, match="target"):
        gradient(linear_model, X5, target=2)
    with pytest.raises(AuditInputError, match="rule"):
        integrated_gradients(linear_model, X5, rule="simpson")
    with pytest.raises(AuditInputError, match="steps"):
        integrated_gradients(linear_model, X5, steps=1)
    with pytest.raises(AuditInputError, match="baseline"):
        integrated_gradients(linear_model, X5, baseline=np.zeros(3))
    with pytest.raises(AuditInputError, match="output"):
        gradient(linear_model, X5, output="margin")
    with pytest.raises(AuditInputError, match="noise"):
        smoothgrad(linear_model, X5, noise=-1.0)
    with pytest.raises(AuditInputError, match="unknown settings"):
        smoothgrad(linear_model, X5, method="gradient", steps=3)
