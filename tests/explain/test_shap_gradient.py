"""Expected gradients: closed forms, a per-sample oracle, images, determinism."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from audit import explain
from audit.errors import AuditInputError
from audit.explain._expected_gradients import draws
from audit.models import Model


def test_linear_model_equals_w_times_x_minus_background_mean(linear_model):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(3, 5)).astype(np.float32)
    bg = rng.normal(size=(25, 5)).astype(np.float32)
    res = explain.compute_shap(linear_model, X, bg, method="gradient", n_samples=100, output="logit")
    w = np.array([1.5, -2.0, 0.5, 0.0, 3.0])
    # 100 samples = 4 full cycles over the background: the mean of b is exactly mean(bg)
    np.testing.assert_allclose(res.values, w * (X - bg.astype(np.float64).mean(0)), atol=2e-5)
    np.testing.assert_allclose(res.efficiency_gap, 0.0, atol=5e-5)


def test_quadratic_integral_by_hand():
    # f(x) = sum x^2: E_a[(x - b) 2 (b + a (x - b))] = x^2 - b^2 per input (one background row)
    model = Model.from_function(lambda p, x: jnp.stack([jnp.zeros(len(x)), (x ** 2).sum(1)], -1), {},
                                input_shape=(4,), class_names=("a", "b"))
    x = np.array([[1.0, -2.0, 0.5, 3.0]], np.float32)
    b = np.array([[0.5, 1.0, -1.0, 0.0]], np.float32)
    res = explain.compute_shap(model, x, b, method="gradient", n_samples=2000, output="logit")
    # stratified interpolation points: the mean of a is 1/2 to within about 1/(2000 * sqrt(12 * 2000))
    np.testing.assert_allclose(res.values[0], x[0] ** 2 - b[0] ** 2, rtol=1e-4, atol=1e-4)


def test_matches_a_per_sample_oracle_with_the_same_draws(digits, digits_cnn):
    bg = explain.background(digits, size=7, seed=0)
    X = digits.test.X[:2]
    res = explain.compute_shap(digits_cnn, X, bg, method="gradient", n_samples=10, seed=4)
    assert res.values.shape == (2, 64) and res.players.kind == "inputs"
    rows, alphas = draws(10, 7, 4)
    cls = digits_cnn.predict(X)

    def f(x, c):
        return jax.nn.softmax(digits_cnn.apply(digits_cnn.params, x[None]))[0, c]

    grad = jax.jit(jax.grad(f), static_argnums=1)
    for i in range(2):
        acc = np.zeros((8, 8, 1))
        for r, a in zip(rows, alphas):
            point = bg[r] + a * (X[i] - bg[r])
            acc += np.asarray(grad(jnp.asarray(point), int(cls[i]))) * (X[i] - bg[r])
        np.testing.assert_allclose(res.values[i], (acc / 10).ravel(), atol=2e-6)
    assert sorted(np.bincount(rows, minlength=7)) == [1, 1, 1, 1, 2, 2, 2]  # full cycles over rows


def test_image_efficiency_and_grouping(digits, digits_cnn):
    bg = explain.background(digits, size=20, seed=0)
    X = digits.test.X[:3]
    pixels = explain.compute_shap(digits_cnn, X, bg, method="gradient", n_samples=400, seed=1)
    patches = explain.compute_shap(digits_cnn, X, bg, method="gradient", n_samples=400, seed=1,
                                   players="patches", patch=4)
    assert patches.values.shape == (3, 4)
    np.testing.assert_allclose(patches.values.sum(1), pixels.values.sum(1), atol=1e-9)
    top_left = pixels.values.reshape(3, 8, 8)[:, :4, :4].sum((1, 2))
    np.testing.assert_allclose(patches.values[:, 0], top_left, atol=1e-9)
    scale = np.abs(pixels.model_output - pixels.base_values).mean()
    assert np.abs(pixels.efficiency_gap).max() < 0.05 * scale  # efficiency in expectation
    assert {f.id: f.status for f in pixels.findings}["shap.efficiency"] == "pass"


def test_same_seed_same_values_and_batched_equals_per_example(digits, digits_cnn):
    bg = explain.background(digits, size=10, seed=0)
    X = digits.test.X[:3]
    a = explain.compute_shap(digits_cnn, X, bg, method="gradient", n_samples=50, seed=2)
    b = explain.compute_shap(digits_cnn, X, bg, method="gradient", n_samples=50, seed=2)
    np.testing.assert_array_equal(a.values, b.values)
    for i in range(3):
        one = explain.compute_shap(digits_cnn, X[i:i + 1], bg, method="gradient", n_samples=50, seed=2)
        np.testing.assert_allclose(one.values[0], a.values[i], atol=1e-7)


def test_needs_a_differentiable_model(linear_model):
    frozen = linear_model.replace(differentiable=False)
    with pytest.raises(AuditInputError, match="differentiable=False"):
        explain.shap_values(frozen, np.zeros((1, 5)), np.zeros((3, 5)), method="gradient")
