"""KernelSHAP: exact efficiency, convergence to exact values, the sampling design, shap's KernelExplainer."""

from __future__ import annotations

import math

import jax.numpy as jnp
import numpy as np
import pytest

from audit import explain
from audit.explain import _shap_kernel
from audit.explain._shap_kernel import (_size_mass, baseline_designs, default_budget, design, min_budget,
                                         solver)
from audit.models import Model


def mlp(d: int, k: int, seed: int) -> Model:
    rng = np.random.default_rng(seed)
    params = {"w1": jnp.asarray(rng.normal(size=(d, 16)), jnp.float32),
              "w2": jnp.asarray(rng.normal(size=(16, k)), jnp.float32)}
    return Model.from_function(lambda p, x: jnp.tanh(x @ p["w1"]) @ p["w2"], params,
                               input_shape=(d,), class_names=tuple(str(c) for c in range(k)))


@pytest.fixture(scope="module")
def game():
    """A 10-player interacting model, a background and examples, with exact values."""
    model = mlp(10, 3, seed=0)
    rng = np.random.default_rng(1)
    X, bg = rng.normal(size=(12, 10)).astype(np.float32), rng.normal(size=(20, 10)).astype(np.float32)
    exact = explain.compute_shap(model, X, bg, method="exact", output="logit", target=1)
    return model, X, bg, exact


def test_efficiency_holds_to_float_precision(game):
    model, X, bg, exact = game
    for budget in (min_budget(10), 57, 300):
        res = explain.compute_shap(model, X, bg, method="kernel", n_samples=budget, output="logit",
                                   target=1, seed=3)
        np.testing.assert_allclose(res.values.sum(1), res.model_output - res.base_values, atol=1e-12, rtol=0)
        # the same mean over the background, summed in another order: equal to float32 rounding
        np.testing.assert_allclose(res.base_values, exact.base_values, rtol=1e-6, atol=1e-7)


def test_converges_to_exact_and_is_exact_with_a_full_budget(game):
    model, X, bg, exact = game

    def error(budget: int) -> float:
        errs = [np.abs(explain.compute_shap(model, X, bg, method="kernel", n_samples=budget, seed=s,
                                            output="logit", target=1).values - exact.values).mean()
                for s in range(3)]
        return float(np.mean(errs))

    errors = [error(b) for b in (20, 100, 400, 900)]
    assert errors[0] > 2.5 * errors[2] > 0 and errors[2] > errors[3] > 0, errors
    full = explain.compute_shap(model, X, bg, method="kernel", n_samples=2 ** 10 - 2, output="logit",
                                target=1)
    # exact up to float32 model outputs (exact SHAP averages the background in float32 on device)
    np.testing.assert_allclose(full.values, exact.values, atol=1e-6)


def test_design_is_paired_stratified_and_unbiased():
    p, budget = 12, 1000
    assert design(p, 600, 0)[1].sum() == pytest.approx(1.0, rel=1e-12)  # too few draws for every size
    z, w = design(p, budget, 0)
    assert len(z) <= budget and len(np.unique(np.packbits(z, axis=1), axis=0)) == len(z)
    assert not (z.all(1) | ~z.any(1)).any()  # no empty or full coalition
    keys = {zz.tobytes() for zz in z}
    assert all((~zz).tobytes() in keys for zz in z)  # every coalition comes with its complement
    size = z.sum(1)
    mass = _size_mass(p)
    for s in range(1, p):  # each size carries exactly its Shapley-kernel mass
        assert w[size == s].sum() == pytest.approx(mass[s], rel=1e-12)
    assert (size == 1).sum() == 12 and (size == 2).sum() == math.comb(12, 2)  # small sizes enumerated
    z2, _ = design(p, budget, 0)
    z3, _ = design(p, budget, 1)
    assert np.array_equal(z, z2) and not np.array_equal(z, z3)
    _, lmat, q = solver(p, budget, 0)
    np.testing.assert_allclose(lmat.sum(0), 0.0, atol=1e-12)
    assert q.sum() == pytest.approx(1.0, abs=1e-12)


def test_agrees_with_shap_kernel_explainer(game):
    model, X, bg, exact = game
    X = X[:3]
    full = 2 ** 10 - 2
    ours = explain.compute_shap(model, X, bg, method="kernel", n_samples=full, output="logit", target=1)
    ref = explain.compute_shap(model, X, bg, method="kernel", n_samples=full, output="logit",
                               target=1, backend="shap")
    np.testing.assert_allclose(ours.values, ref.values, atol=1e-6)
    np.testing.assert_allclose(ours.base_values, ref.base_values, atol=1e-6)
    # at a partial budget both estimate the same values; ours is no worse than shap's
    ours = explain.compute_shap(model, X, bg, method="kernel", n_samples=200, output="logit", target=1)
    ref = explain.compute_shap(model, X, bg, method="kernel", n_samples=200, output="logit",
                               target=1, backend="shap")
    err_ours = np.abs(ours.values - exact.values[:3]).mean()
    err_ref = np.abs(ref.values - exact.values[:3]).mean()
    assert err_ours < 0.05 * np.abs(exact.values).mean()
    # one design per background row: their sampling errors average out (0.013 vs 0.030 here)
    assert err_ours <= 0.7 * err_ref, (err_ours, err_ref)


def test_same_seed_same_values_and_batched_equals_per_example(game):
    model, X, bg, _ = game
    a = explain.compute_shap(model, X[:4], bg, method="kernel", n_samples=100, seed=5)
    b = explain.compute_shap(model, X[:4], bg, method="kernel", n_samples=100, seed=5)
    c = explain.compute_shap(model, X[:4], bg, method="kernel", n_samples=100, seed=6)
    np.testing.assert_array_equal(a.values, b.values)
    assert np.abs(a.values - c.values).max() > 1e-6
    for i in range(4):
        one = explain.compute_shap(model, X[i:i + 1], bg, method="kernel", n_samples=100, seed=5)
        np.testing.assert_allclose(one.values[0], a.values[i], atol=1e-12)


def test_auto_picks_kernel_beyond_twelve_players_and_images(digits, digits_cnn):
    bg = explain.background(digits, size=10, seed=0)
    X = digits.test.X[:2]
    res = explain.compute_shap(digits_cnn, X, bg, patch=1, n_samples=400)  # 64 pixel players
    assert res.provenance.method == "shap.kernel" and res.values.shape == (2, 64)
    np.testing.assert_allclose(res.efficiency_gap, 0.0, atol=1e-9)
    assert (res.class_index == digits_cnn.predict(X)).all()  # multiclass default: predicted class
    assert default_budget(64) == 2 * 64 + 2048
    patches = explain.compute_shap(digits_cnn, X, bg)  # 16 patches: kernel, not 65536 coalitions
    assert patches.provenance.method == "shap.kernel" and patches.values.shape == (2, 16)
    nine = explain.compute_shap(digits_cnn, X, bg, patch=3)  # 3x3 patches: few enough to enumerate
    assert nine.provenance.method == "shap.exact" and nine.values.shape == (2, 9)


@pytest.mark.parametrize("p", [30, 66, 100])
def test_design_spends_the_budget_for_many_players(p):
    # per-size caps reach 2^62; their sum once overflowed int64 and dropped all but the singletons
    budget = default_budget(p)
    z, w = design(p, budget, 0)
    assert budget - 2 <= len(z) <= budget
    assert w.sum() == pytest.approx(1.0, rel=1e-12)
    assert len(np.unique(z.sum(1))) > 10  # many coalition sizes drawn, not only 1 and P - 1


def test_each_background_row_has_its_own_design():
    assert len(baseline_designs(10, 2 ** 10 - 2, 0, 20)[0]) == 1  # full enumeration: one design
    z, lmat, q, design_of = baseline_designs(10, 100, 0, 20)
    assert z.shape == (20, 100, 10) and lmat.shape == (20, 10, 100) and q.shape == (20, 10)
    assert np.array_equal(design_of, np.arange(20))
    assert len({zz.tobytes() for zz in z}) == 20  # independent draws, not one shared design
    for k in (0, 7):  # each is a solver design of its own stream
        zk, lk, qk = solver(10, 100, 0, k)
        assert np.array_equal(z[k], zk) and np.allclose(lmat[k], lk) and np.allclose(q[k], qk)


def test_fewer_designs_than_background_rows_when_memory_is_bounded(game, monkeypatch):
    model, X, bg, exact = game  # 20 background rows, 10 players
    baseline_designs.cache_clear()
    monkeypatch.setattr(_shap_kernel, "DESIGN_CELLS", 3 * 100 * 10)  # room for 3 designs of 100
    try:
        z, _, _, design_of = baseline_designs(10, 100, 0, 20)
        assert len(z) == 3 and np.array_equal(design_of, np.arange(20) % 3)
        res = explain.compute_shap(model, X, bg, method="kernel", n_samples=100, output="logit", target=1)
        np.testing.assert_allclose(res.values.sum(1), res.model_output - res.base_values, atol=1e-12, rtol=0)
        assert np.abs(res.values - exact.values).mean() < 0.1 * np.abs(exact.values).mean()
        full = explain.compute_shap(model, X, bg, method="kernel", n_samples=2 ** 10 - 2, output="logit",
                                    target=1)
        np.testing.assert_allclose(full.values, exact.values, atol=1e-6)
    finally:
        baseline_designs.cache_clear()
