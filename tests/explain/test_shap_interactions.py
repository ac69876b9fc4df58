"""SHAP interaction values: brute-force oracle, the axioms, the planted product, sampled vs exact."""

from __future__ import annotations

import itertools
import json
import math

import jax.numpy as jnp
import numpy as np
import pytest

from audit import explain
from audit.errors import AuditInputError
from audit.explain import InteractionResult
from audit.explain._interaction_designs import block_cost, path_block, path_design, walecki_paths
from audit.models import Model
from audit.results import metric_spec, to_jsonable


def mlp(d: int = 5, k: int = 3, seed: int = 0) -> Model:
    rng = np.random.default_rng(seed)
    params = {"w1": jnp.asarray(rng.normal(size=(d, 8)), jnp.float32),
              "w2": jnp.asarray(rng.normal(size=(8, k)), jnp.float32)}
    return Model.from_function(lambda p, x: jnp.tanh(x @ p["w1"]) @ p["w2"], params,
                               input_shape=(d,), class_names=tuple("abcdefgh"[:k]))


def product_model(d: int, i: int, j: int, dummy: int | None = None) -> Model:
    """Logit of class 1 = x_i * x_j + sum of small main effects (none on `dummy`)."""
    w = np.linspace(0.1, 0.3, d).astype(np.float32)
    if dummy is not None:
        w[dummy] = 0.0

    def apply(p, x):
        z = x[:, i] * x[:, j] + x @ p["w"]
        return jnp.stack([jnp.zeros_like(z), z], axis=1)

    return Model.from_function(apply, {"w": jnp.asarray(w)}, input_shape=(d,), class_names=("0", "1"))


def brute_force(model, x, background, cls, output="logit"):
    """Lundberg et al. 2020 by definition: for i != j the weighted sum over S of the discrete
    second derivative, halved; the diagonal phi_i minus the row."""
    p = x.size

    def v(s) -> float:
        rows = background.copy()
        rows[:, list(s)] = x[list(s)]
        out = model.logits(rows).astype(np.float64)
        if output == "probability":
            out = np.exp(out - out.max(1, keepdims=True))
            out /= out.sum(1, keepdims=True)
        return float(out[:, cls].mean())

    out = np.zeros((p, p))
    for i, j in itertools.permutations(range(p), 2):
        rest = [k for k in range(p) if k not in (i, j)]
        for r in range(len(rest) + 1):
            for s in itertools.combinations(rest, r):
                w = math.factorial(r) * math.factorial(p - r - 2) / (2 * math.factorial(p - 1))
                out[i, j] += w * (v(s + (i, j)) - v(s + (i,)) - v(s + (j,)) + v(s))
    phi = np.zeros(p)
    for j in range(p):
        rest = [k for k in range(p) if k != j]
        for r in range(p):
            for s in itertools.combinations(rest, r):
                phi[j] += math.factorial(r) * math.factorial(p - r - 1) / math.factorial(p) * (v(s + (j,)) - v(s))
    for i in range(p):
        out[i, i] = phi[i] - (out[i].sum() - out[i, i])
    return out


# ---- designs -------------------------------------------------------------------------------
@pytest.mark.parametrize("n", [2, 4, 6, 10, 16])
def test_walecki_paths_cover_every_pair_once(n):
    edges = []
    for path in walecki_paths(n):
        assert sorted(path.tolist()) == list(range(n))
        edges += [frozenset(e) for e in zip(path[:-1].tolist(), path[1:].tolist())]
    assert len(edges) == len(set(edges)) == n * (n - 1) // 2


@pytest.mark.parametrize("p", [3, 5, 6, 9])
def test_block_samples_every_pair_once_with_uniform_effective_positions(p):
    orders, rows, pos, w = path_block(p)
    pairs = {frozenset((int(orders[r, t]), int(orders[r, t + 1]))) for r, t in zip(rows, pos)}
    assert len(rows) == len(pairs) == p * (p - 1) // 2
    # weighted position frequencies are uniform over 0..P-2: predecessor sizes as the index needs
    np.testing.assert_allclose(np.bincount(pos, weights=w, minlength=p - 1), len(pos) / (p - 1), rtol=1e-12)
    if p % 2 == 0:
        np.testing.assert_array_equal(w, 1.0)


def test_design_rows_are_the_sets_they_claim():
    p = 5
    designs, marginal, players, pair_rows, weight, pairs = path_design(p, 2 * block_cost(p), 3, 2)
    for d in range(2):
        z = designs[d]
        assert not z[0].any() and z[1].all()
        for (a, b, c, e), (i, j) in zip(pair_rows, pairs[d]):
            s = z[e]
            assert not s[i] and not s[j]
            np.testing.assert_array_equal(z[a], s | np.eye(p, dtype=bool)[i] | np.eye(p, dtype=bool)[j])
            np.testing.assert_array_equal(z[b], s | np.eye(p, dtype=bool)[i])
            np.testing.assert_array_equal(z[c], s | np.eye(p, dtype=bool)[j])
        for (a, b), j in zip(marginal, players[d]):
            np.testing.assert_array_equal(z[a], z[b] | np.eye(p, dtype=bool)[j])
    assert weight.sum() == pytest.approx(p * (p - 1) / 2)  # mean weight 1 per pair sample


# ---- exact ---------------------------------------------------------------------------------
@pytest.mark.parametrize("output", ["probability", "logit"])
def test_exact_equals_the_definition(output):
    model = mlp()
    rng = np.random.default_rng(1)
    X = rng.normal(size=(2, 5)).astype(np.float32)
    bg = rng.normal(size=(6, 5)).astype(np.float32)
    res = explain.shap_interactions(model, X, bg, method="exact", target=2, output=output)
    assert res.values.shape == (2, 5, 5)
    for i in range(2):
        np.testing.assert_allclose(res.values[i], brute_force(model, X[i], bg, 2, output), atol=2e-6)


def test_exact_axioms_and_agreement_with_exact_shap(credit_small, credit_model):
    bg = explain.background(credit_small, size=8, seed=0)
    X = credit_small.test.X[:4]
    res = explain.shap_interactions(credit_model, X, bg, data=credit_small)
    shap = explain.compute_shap(credit_model, X, bg, data=credit_small, method="exact")
    np.testing.assert_allclose(res.values, res.values.transpose(0, 2, 1), atol=1e-12)  # symmetric
    np.testing.assert_allclose(res.values.sum(axis=2), shap.values, atol=1e-7)  # rows -> SHAP values
    np.testing.assert_allclose(res.shap_values, shap.values, atol=1e-7)
    np.testing.assert_allclose(res.efficiency_gap, 0.0, atol=1e-6)  # the matrix -> f(x) - base
    assert res.feature_names == shap.feature_names and res.provenance.method == "shap_interactions.exact"


@pytest.mark.parametrize("method", ["exact", "sampled"])
def test_planted_product_is_the_top_pair_and_a_dummy_has_no_interactions(method):
    rng = np.random.default_rng(0)
    model = product_model(14 if method == "sampled" else 6, 1, 4, dummy=2)
    d = model.input_shape[0]
    X = rng.normal(size=(6, d)).astype(np.float32)
    bg = rng.normal(size=(20, d)).astype(np.float32)
    kw = {"n_samples": 400} if method == "sampled" else {}
    res = explain.shap_interactions(model, X, bg, method=method, output="logit", **kw)
    assert res.top_pairs(1)[0][:2] == ("x1", "x4")
    assert res.partner(1) == 4 and res.partner(4) == 1
    np.testing.assert_allclose(res.values[:, 2, :], 0.0, atol=1e-6)  # the dummy
    np.testing.assert_allclose(res.values[:, :, 2], 0.0, atol=1e-6)
    # the product's interaction has a closed form: Phi_14 = (x1 - mean b1)(x4 - mean b4) / 2
    # when the background is the product distribution... here: E_b over the sample
    b1, b4 = bg[:, 1].astype(np.float64), bg[:, 4].astype(np.float64)
    x1, x4 = X[:, 1].astype(np.float64), X[:, 4].astype(np.float64)
    closed = (x1 * x4 - x1 * b4.mean() - b1.mean() * x4 + (b1 * b4).mean()) / 2
    np.testing.assert_allclose(res.values[:, 1, 4], closed, atol=1e-5)  # exact even when sampled
    # every other off-diagonal pair is zero (the rest is additive)
    off = res.values.copy()
    off[:, 1, 4] = off[:, 4, 1] = 0.0
    off[:, np.arange(d), np.arange(d)] = 0.0
    np.testing.assert_allclose(off, 0.0, atol=1e-5)


# ---- sampled -------------------------------------------------------------------------------
def test_sampled_rows_sum_to_its_shap_values_and_the_matrix_to_the_output_gap():
    model = mlp(d=7, k=2, seed=3)
    rng = np.random.default_rng(2)
    X = rng.normal(size=(3, 7)).astype(np.float32)
    bg = rng.normal(size=(10, 7)).astype(np.float32)
    res = explain.shap_interactions(model, X, bg, method="sampled", n_samples=300, seed=4)
    np.testing.assert_allclose(res.values, res.values.transpose(0, 2, 1), atol=1e-12)
    np.testing.assert_allclose(res.values.sum(axis=2), res.shap_values, atol=1e-12)
    np.testing.assert_allclose(res.efficiency_gap, 0.0, atol=1e-6)
    again = explain.shap_interactions(model, X, bg, method="sampled", n_samples=300, seed=4)
    np.testing.assert_array_equal(res.values, again.values)  # same seed, same values
    other = explain.shap_interactions(model, X, bg, method="sampled", n_samples=300, seed=5)
    assert not np.array_equal(res.values, other.values)


@pytest.mark.parametrize("d", [6, 7])
def test_sampled_converges_to_exact(d):
    """Error against exact falls like 1/sqrt(budget) (unbiased): 16x the budget, ~4x less error."""
    model = mlp(d=d, k=2, seed=5)
    rng = np.random.default_rng(6)
    X = rng.normal(size=(2, d)).astype(np.float32)
    bg = rng.normal(size=(8, d)).astype(np.float32)
    exact = explain.shap_interactions(model, X, bg, method="exact", output="logit").values

    def err(budget, seed):
        v = explain.shap_interactions(model, X, bg, method="sampled", n_samples=budget, seed=seed,
                                      output="logit").values
        return np.sqrt(((v - exact) ** 2).mean())

    small = np.mean([err(block_cost(d), s) for s in range(4)])
    large = np.mean([err(16 * block_cost(d), s) for s in range(4)])
    scale = np.sqrt((exact ** 2).mean())
    assert large < 0.45 * small and large < 0.1 * scale


# ---- result, checks ------------------------------------------------------------------------
def test_result_round_trips_json_and_declares_its_metrics(credit_small, credit_model):
    bg = explain.background(credit_small, size=5, seed=0)
    res = explain.shap_interactions(credit_model, credit_small.test.X[:3], bg, data=credit_small)
    d = json.loads(json.dumps(to_jsonable(res.to_dict())))
    back = InteractionResult.from_dict(d)
    assert back == res and back.top_pairs(3) == res.top_pairs(3)
    m = res.metrics()
    assert 0 < m["interaction_share"] < 1 and len(m) == 2 + 5
    for name in m:
        assert metric_spec(InteractionResult.METRICS, name) is not None, name
    top = res.top_pairs(1)[0]
    assert m[f"interaction:{top[0]}~{top[1]}"] == top[2]
    assert res.findings[0].metric == "interaction_share"


@pytest.mark.parametrize("kwargs, match", [
    ({"method": "kernel"}, "method"), ({"method": "exact", "n_samples": 100}, "no n_samples"),
    ({"method": "sampled", "n_samples": 3}, "at least"), ({"seed": -1}, "seed"),
    ({"target": 7}, "target")])
def test_bad_arguments_raise_one_clear_error(kwargs, match):
    model = mlp()
    X = np.zeros((2, 5), np.float32)
    with pytest.raises(AuditInputError, match=match):
        explain.shap_interactions(model, X, X, **kwargs)


def test_too_many_players_for_exact():
    model = mlp(d=20)
    X = np.zeros((1, 20), np.float32)
    with pytest.raises(AuditInputError, match="method='sampled'"):
        explain.shap_interactions(model, X, X, method="exact")
