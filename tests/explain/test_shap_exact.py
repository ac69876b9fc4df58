"""Exact SHAP: brute-force oracle, the Shapley axioms, linear closed form, shap's ExactExplainer."""

from __future__ import annotations

import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from audit import explain
from audit.data._credit import IMPORTANT
from audit.explain import _players
from audit.explain._shap_exact import all_coalitions, shapley_matrix
from audit.models import Model


def small_mlp(d: int = 5, k: int = 3, seed: int = 0) -> Model:
    """A random two-layer tanh network with `k` classes: strong interactions, no training."""
    rng = np.random.default_rng(seed)
    params = {"w1": jnp.asarray(rng.normal(size=(d, 8)), jnp.float32),
              "w2": jnp.asarray(rng.normal(size=(8, k)), jnp.float32)}
    return Model.from_function(lambda p, x: jnp.tanh(x @ p["w1"]) @ p["w2"], params,
                               input_shape=(d,), class_names=tuple("abcdefgh"[:k]))


def brute_force(model: Model, x: np.ndarray, background: np.ndarray, cls: int, output: str,
                groups=None) -> np.ndarray:
    """Textbook Shapley values: average marginal contribution over all player orderings,
    with v(S) the mean model output over background rows with S's inputs taken from x."""
    groups = groups or [(i,) for i in range(x.size)]

    def v(coalition) -> float:
        rows = background.copy()
        for j in coalition:
            rows[:, list(groups[j])] = x[list(groups[j])]
        out = model.logits(rows).astype(np.float64)
        if output == "probability":
            out = np.exp(out - out.max(1, keepdims=True))
            out /= out.sum(1, keepdims=True)
        return float(out[:, cls].mean())

    p = len(groups)
    phi = np.zeros(p)
    for order in itertools.permutations(range(p)):
        before: list[int] = []
        for j in order:
            phi[j] += v(before + [j]) - v(before)
            before.append(j)
    return phi / math.factorial(p)


def test_weight_matrix_matches_the_shapley_formula():
    w = shapley_matrix(4)
    z = all_coalitions(4)
    # each row of W: weights sum to zero (v constant -> phi 0); full minus empty sums to 1 over players
    np.testing.assert_allclose(w.sum(axis=1), 0.0, atol=1e-15)
    np.testing.assert_allclose(w[:, -1].sum() - 0.0, 1.0, atol=1e-15)
    j, s = 2, 0b0011  # players {0, 1}: w(2) = 2! 1! / 4! = 1/12 for adding player 2
    assert z[s].tolist() == [True, True, False, False]
    assert w[j, s] == pytest.approx(-1 / 12) and w[j, s | 0b0100] == pytest.approx(1 / 12)


@pytest.mark.parametrize("output", ["probability", "logit"])
def test_exact_equals_brute_force(output):
    model = small_mlp()
    rng = np.random.default_rng(1)
    X = rng.normal(size=(3, 5)).astype(np.float32)
    bg = rng.normal(size=(7, 5)).astype(np.float32)
    res = explain.compute_shap(model, X, bg, method="exact", target=2, output=output)
    for i in range(3):
        np.testing.assert_allclose(res.values[i], brute_force(model, X[i], bg, 2, output), atol=2e-6)
    np.testing.assert_allclose(res.efficiency_gap, 0.0, atol=1e-6)


def test_exact_grouped_players_equal_brute_force_over_groups(credit_small, credit_model):
    bg = explain.background(credit_small, size=6, seed=3)
    X = credit_small.test.X[:2]
    res = explain.compute_shap(credit_model, X, bg, method="exact", data=credit_small)
    assert res.feature_names == credit_small.raw_feature_names
    groups = credit_small.feature_groups
    keep = [0, 1, 3, 5, 9]  # five players (a one-hot block among them); the rest fixed to x
    sub = [groups[j] for j in keep]
    fixed = [g for j, g in enumerate(groups) if j not in keep]
    for i in range(2):
        bg_i = bg.copy()
        for g in fixed:  # players outside the game always come from x: same game on 5 players
            bg_i[:, list(g)] = X[i, list(g)]
        small = explain.compute_shap(credit_model, X[i:i + 1], bg_i, method="exact", data=credit_small)
        oracle = brute_force(credit_model, X[i], bg_i, 1, "probability", sub)
        np.testing.assert_allclose(small.values[0, keep], oracle, atol=2e-6)
        np.testing.assert_allclose(small.values[0, [j for j in range(10) if j not in keep]], 0.0, atol=1e-7)


def test_linear_model_closed_form(linear_model):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(4, 5)).astype(np.float32)
    bg = rng.normal(size=(30, 5)).astype(np.float32)
    res = explain.compute_shap(linear_model, X, bg, method="exact", output="logit")
    w = np.array([1.5, -2.0, 0.5, 0.0, 3.0])
    np.testing.assert_allclose(res.values, w * (X - bg.astype(np.float64).mean(0)), atol=2e-5)
    np.testing.assert_allclose(res.base_values, (bg.astype(np.float64) @ w).mean() + 0.25, atol=1e-5)
    assert (res.class_index == 1).all()  # binary default: the positive class


def test_symmetry_and_dummy_axioms():
    def apply(p, x):  # inputs 0 and 1 enter symmetrically; input 3 is a dummy
        z = jnp.sin(x[:, 0] + x[:, 1]) * x[:, 2] + x[:, 0] * x[:, 1] + p * x[:, 4] ** 2
        return jnp.stack([jnp.zeros_like(z), z], axis=-1)

    model = Model.from_function(apply, jnp.float32(0.7), input_shape=(5,), class_names=("a", "b"))
    rng = np.random.default_rng(2)
    bg = rng.normal(size=(9, 5)).astype(np.float32)
    bg[:, 1] = bg[:, 0]  # players 0 and 1 interchangeable in every coalition
    X = rng.normal(size=(3, 5)).astype(np.float32)
    X[:, 1] = X[:, 0]
    for output in ("logit", "probability"):
        res = explain.compute_shap(model, X, bg, method="exact", output=output)
        np.testing.assert_allclose(res.values[:, 0], res.values[:, 1], atol=1e-7)
        np.testing.assert_allclose(res.values[:, 3], 0.0, atol=1e-7)
        assert np.abs(res.values[:, [0, 2, 4]]).min() > 1e-3  # the others do matter


def test_credit_important_features_rank_on_top(credit_small, credit_model):
    bg = explain.background(credit_small, size=50, seed=0)
    expl = explain.shap_values(credit_model, credit_small.test.X[:100], bg, data=credit_small)
    ranking = list(explain.global_importance(expl))
    assert set(ranking[:len(IMPORTANT)]) == set(IMPORTANT), ranking


def test_agrees_with_shap_exact_explainer(credit_small, credit_model):
    bg = explain.background(credit_small, size=8, seed=1)
    X = credit_small.test.X[:2]
    native = explain.compute_shap(credit_model, X, bg, method="exact", data=credit_small)
    ref = explain.compute_shap(credit_model, X, bg, method="exact", backend="shap", data=credit_small)
    np.testing.assert_allclose(native.values, ref.values, atol=1e-6)
    np.testing.assert_allclose(native.base_values, ref.base_values, atol=1e-6)
    model = small_mlp(6, 2, seed=4)
    rng = np.random.default_rng(5)
    X, bg = rng.normal(size=(3, 6)).astype(np.float32), rng.normal(size=(10, 6)).astype(np.float32)
    a = explain.compute_shap(model, X, bg, method="exact")
    b = explain.compute_shap(model, X, bg, method="exact", backend="shap")
    np.testing.assert_allclose(a.values, b.values, atol=1e-6)


def test_batched_equals_per_example_and_compiles_once():
    model = small_mlp(6, 4, seed=7)
    rng = np.random.default_rng(8)
    X, bg = rng.normal(size=(5, 6)).astype(np.float32), rng.normal(size=(11, 6)).astype(np.float32)
    batch = explain.compute_shap(model, X, bg, method="exact")

    step = _players._example_values(model.apply, "probability", (6,),
                                    jax.tree_util.tree_structure(model.params))
    compiled = step._cache_size()
    for i in range(5):
        one = explain.compute_shap(model, X[i:i + 1], bg, method="exact")
        np.testing.assert_allclose(one.values[0], batch.values[i], atol=1e-12)
        assert one.class_index[0] == batch.class_index[i] == model.predict(X[i:i + 1])[0]
    assert step._cache_size() == compiled  # other batch sizes reuse the compiled step


def test_chunking_does_not_change_values():
    model = small_mlp(5, 2, seed=9)
    rng = np.random.default_rng(10)
    X, bg = rng.normal(size=(2, 5)).astype(np.float32), rng.normal(size=(13, 5)).astype(np.float32)
    z, owner = all_coalitions(5), np.arange(5)
    cls = np.array([0, 1])
    a = _players.coalition_values(model, X, cls, bg, z, owner, output="logit", chunk_rows=13 * 3)
    b = _players.coalition_values(model, X, cls, bg, z, owner, output="logit", chunk_rows=10_000)
    np.testing.assert_allclose(a, b, atol=1e-6)


_MULTI_DEVICE = """
import sys
import jax
import jax.numpy as jnp
import numpy as np
from audit import explain
assert jax.local_device_count() == int(sys.argv[2])
from audit.models import Model
rng = np.random.default_rng(0)
params = {"w1": jnp.asarray(rng.normal(size=(6, 8)), jnp.float32),
          "w2": jnp.asarray(rng.normal(size=(8, 3)), jnp.float32)}
m = Model.from_function(lambda p, x: jnp.tanh(x @ p["w1"]) @ p["w2"], params, input_shape=(6,),
                        class_names=("a", "b", "c"))
X, bg = rng.normal(size=(5, 6)).astype(np.float32), rng.normal(size=(9, 6)).astype(np.float32)
r = explain.compute_shap(m, X, bg, method="exact")
k = explain.compute_shap(m, X, bg, method="kernel", n_samples=20)
g = explain.compute_shap(m, X, bg, method="gradient", n_samples=30)
np.save(sys.argv[1], np.concatenate([r.values, k.values, g.values]))
"""


def test_several_devices_give_the_same_values(tmp_path):
    import os
    import subprocess
    import sys

    script = tmp_path / "run.py"
    script.write_text(_MULTI_DEVICE)
    for name, count in (("one", 1), ("three", 3)):
        env = dict(os.environ, XLA_FLAGS=f"--xla_force_host_platform_device_count={count}", JAX_PLATFORMS="cpu")
        subprocess.run([sys.executable, str(script), str(tmp_path / name), str(count)], check=True, env=env)
    # the same computation split over three devices: equal up to float32 rounding (on some CPUs
    # a matrix product rounds differently at another batch size)
    np.testing.assert_allclose(np.load(tmp_path / "one.npy"), np.load(tmp_path / "three.npy"), rtol=1e-5, atol=1e-7)
