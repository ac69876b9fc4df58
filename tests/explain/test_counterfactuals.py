"""Counterfactuals: the linear program as oracle, hard constraints on every returned row, validity
against the model, diversity, seeds, input errors and the JSON round trip."""

from __future__ import annotations

import dataclasses
import json

import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest
from scipy.optimize import linprog

from audit import datasets
from audit.errors import AuditInputError
from audit.explain import CounterfactualResult, counterfactuals
from audit.explain._cf_space import build_space
from audit.models import Model, train


# ---- a linear model, whose cheapest counterfactual is a linear program ----------------------
@pytest.fixture(scope="module")
def linear():
    rng = np.random.default_rng(0)
    n, d = 400, 6
    frame = pd.DataFrame(rng.normal(size=(n, d)) * rng.uniform(0.5, 3, d) + rng.uniform(-2, 2, d),
                         columns=[f"f{j}" for j in range(d)])
    frame["y"] = np.where(frame.to_numpy().sum(axis=1) > 0, "b", "a")
    from audit.data import from_pandas

    data = from_pandas(frame, target="y", class_names=("a", "b"), name="linear")
    w, b = rng.normal(size=d), -1.0
    model = Model.from_function(
        lambda p, x: jnp.stack([jnp.zeros(x.shape[0]), x @ p["w"] + p["b"]], axis=1),
        {"w": jnp.asarray(w, jnp.float32), "b": jnp.float32(b)}, input_shape=(d,), class_names=("a", "b"))
    return data, model, w, b


def _lp_costs(space, data, w, b, raw0):
    """min sum |u - r0| / scale  s.t.  margin(u) >= 0 and the row's bounds (scipy's HiGHS)."""
    std = np.array([c.std for c in data.encoding.columns])
    mean = np.array([c.mean for c in data.encoding.columns])
    a, c0 = w / std, b - float((w * mean / std).sum())
    d = len(a)
    out = []
    for r0 in raw0:
        lo, hi = space.bounds(r0)
        res = linprog(np.concatenate([1 / space.scale, 1 / space.scale]), A_ub=-np.concatenate([a, -a])[None],
                      b_ub=[c0 + a @ r0], bounds=[(0, hi[j] - r0[j]) for j in range(d)] +
                      [(0, r0[j] - lo[j]) for j in range(d)], method="highs")
        out.append(res.fun if res.status == 0 else np.nan)
    return np.array(out)


@pytest.mark.parametrize("constraints", [{}, {"immutable": ["f0"], "monotone": {"f1": "increase"}},
                                         {"immutable": ["f0", "f2", "f5"], "monotone": {"f1": "increase"}}])
def test_linear_cheapest_cost_equals_the_linear_program(linear, constraints):
    data, model, w, b = linear
    rows = np.flatnonzero(model.predict(data.X) == 0)[:80]
    res = counterfactuals(model, data, data.X[rows], target="b", k=1, seed=0, **constraints)
    lp = _lp_costs(build_space(data, **constraints), data, w, b, res.original)
    cost, ok = res.cheapest()
    feasible = np.isfinite(lp)
    assert feasible.sum() >= 10
    assert np.array_equal(ok, feasible)  # validity 1.0 wherever the LP is feasible, none elsewhere
    # 0.2%: the final shrink scales all changes together, slightly off when one column sits at its bound
    np.testing.assert_allclose(cost[feasible], lp[feasible], rtol=2e-3, atol=1e-4)
    assert np.median(np.abs(cost[feasible] / lp[feasible] - 1)) < 2e-4
    if len(constraints.get("immutable", ())) > 1:
        assert (~feasible).sum() >= 5  # the constrained case does leave some rows without recourse


def test_rows_already_at_the_target_are_their_own_counterfactual(linear):
    data, model, _, _ = linear
    rows = np.flatnonzero(model.predict(data.X) == 1)[:5]
    res = counterfactuals(model, data, data.X[rows], target="b", k=2)
    assert res.validity[:, 0].all() and np.all(res.cost[:, 0] == 0) and np.all(res.sparsity[:, 0] == 0)
    np.testing.assert_array_equal(res.counterfactuals[:, 0], res.original)


# ---- constraints on a real model with categoricals, integers and sensitive inputs ---------------
@pytest.fixture(scope="module")
def credit_sens():
    data = datasets.load("credit", n=6000, seed=0, include_sensitive=True)
    model = train("mlp", data, epochs=8, batch_size=128, widths=(32, 16), progress=False, seed=0)
    return data, model


SETTINGS = dict(immutable=["purpose"], monotone={"late_payments": "decrease", "loan_amount": "increase"})


@pytest.fixture(scope="module")
def credit_cfs(credit_sens):
    data, model = credit_sens
    X = data.X[model.predict(data.X) == 1][:120]  # denied credit: what would get them the loan?
    assert len(X) >= 60
    return {m: counterfactuals(model, data, X, k=3, method=m, seed=0, **SETTINGS)
            for m in ("gradient", "growing_spheres")}


@pytest.mark.parametrize("method", ["gradient", "growing_spheres"])
def test_constraints_hold_on_every_counterfactual(credit_sens, credit_cfs, method):
    data, model = credit_sens
    res = credit_cfs[method]
    names = list(res.feature_names)
    col = {n: j for j, n in enumerate(names)}
    valid = res.validity
    assert valid.mean() > 0.6 and res.metrics()["row_validity"] == 1.0
    assert np.all(res.target == 0)  # the favourable class: "no" default, the most common label
    cf, r0 = res.counterfactuals[valid], np.repeat(res.original[:, None], 3, axis=1)[valid]
    assert np.isfinite(cf).all() and np.isnan(res.counterfactuals[~valid]).all()
    for name in ("sex", "age", "purpose"):  # sensitive inputs and the immutable column
        assert np.array_equal(cf[:, col[name]], r0[:, col[name]]), name
    assert np.all(cf[:, col["late_payments"]] <= r0[:, col["late_payments"]])
    assert np.all(cf[:, col["loan_amount"]] >= r0[:, col["loan_amount"]])
    train_raw = data.raw[data.splits["train"]]
    for j, c in enumerate(data.encoding.columns):
        lo, hi = min(train_raw[:, j].min(), r0[:, j].min()), max(train_raw[:, j].max(), r0[:, j].max())
        assert np.all((cf[:, j] >= lo) & (cf[:, j] <= hi)), c.name
        if c.kind == "categorical" or c.name in res.integer:
            assert np.array_equal(cf[:, j], np.round(cf[:, j])), c.name
    assert {"age", "late_payments", "n_dependents", "income"} <= set(res.integer)
    X = data.encoding.encode(cf)
    for group in data.encoding.groups:  # one-hot blocks stay valid one-hots
        if len(group) > 1:
            block = X[:, list(group)]
            assert np.all(np.sort(block, axis=1)[:, -1] == 1) and np.all(block.sum(axis=1) == 1)
    # validity is what the model says about the returned row, and sparsity counts changed columns
    assert np.array_equal(model.predict(X), np.broadcast_to(res.target[:, None], valid.shape)[valid])
    assert np.array_equal(res.sparsity[valid], (np.abs(cf - r0) > 1e-9).sum(axis=1))
    assert np.all(res.cost[valid] > 0) and np.all(res.sparsity[valid] >= 1)


@pytest.mark.parametrize("method", ["gradient", "growing_spheres"])
def test_counterfactuals_are_distinct_sorted_and_sparse(credit_cfs, method):
    res = credit_cfs[method]
    cost = np.where(res.validity, res.cost, np.inf)
    assert np.all(cost[:, 1:] >= cost[:, :-1])  # cheapest first
    two = res.validity[:, 0] & res.validity[:, 1]
    assert two.sum() > 20
    assert np.all(np.abs(res.counterfactuals[two, 0] - res.counterfactuals[two, 1]).max(axis=1) > 0)
    assert np.all(res.diversity[two] > 0)
    # sparsification: no single changed column of the cheapest counterfactual can be reverted
    data_cols = res.feature_names
    assert res.metrics()["sparsity"] < len(data_cols) / 2


@pytest.mark.parametrize("method", ["gradient", "growing_spheres"])
def test_every_feasible_row_gets_k_distinct_and_the_split_adds_up(credit_cfs, method):
    res = credit_cfs[method]
    n, k = res.validity.shape
    split = res.validity_split()
    assert sum(split.values()) == n * k and split["valid"] == res.validity.sum()
    m = res.metrics()
    # fill: a row with one valid counterfactual gets k distinct ones (DiCE's validity is per requested one)
    assert split["invalid"] == 0 and m["feasible_validity"] == 1.0
    assert m["infeasible_rate"] == split["infeasible"] / (n * k)
    cf = res.counterfactuals
    for a in range(k):
        for b in range(a + 1, k):
            assert np.all(np.abs(cf[:, a] - cf[:, b]).max(axis=1) > 0)


def test_fill_tops_up_without_changing_the_cheapest(credit_sens, monkeypatch):
    from audit.explain import _cf_search

    data, model = credit_sens
    X = data.X[model.predict(data.X) == 1][:40]
    full = counterfactuals(model, data, X, k=4, method="growing_spheres", seed=0, **SETTINGS)
    monkeypatch.setattr(_cf_search, "fill", lambda margin, space, raw0, cf, found, *a, **kw: (cf, found))
    bare = counterfactuals(model, data, X, k=4, method="growing_spheres", seed=0, **SETTINGS)
    assert bare.validity_split()["invalid"] > 0  # without it some rows are short of k distinct
    assert full.validity_split()["invalid"] == 0 and full.validity.sum() > bare.validity.sum()
    np.testing.assert_array_equal(full.cheapest()[0], bare.cheapest()[0])


def test_gradient_search_improves_on_sampling_alone(credit_cfs):
    g, s = credit_cfs["gradient"], credit_cfs["growing_spheres"]
    (gc, gok), (sc, sok) = g.cheapest(), s.cheapest()
    assert np.all(gok >= sok)
    assert np.all(gc[sok] <= sc[sok] + 1e-9)  # the gradient pool contains the sampled candidates
    assert np.mean(gc[sok]) < 0.99 * np.mean(sc[sok])  # and the gradient search finds cheaper ones


def test_sparsified_counterfactuals_need_every_change(credit_sens, credit_cfs):
    data, model = credit_sens
    res = credit_cfs["gradient"]
    rows = np.flatnonzero(res.validity[:, 0])[:40]
    for i in rows:
        cf, r0 = res.counterfactuals[i, 0], res.original[i]
        for j in np.flatnonzero(np.abs(cf - r0) > 1e-9):
            reverted = cf.copy()
            reverted[j] = r0[j]
            assert model.predict(data.encoding.encode(reverted[None]))[0] != res.target[i]


def test_max_changes_seed_and_frame(credit_sens):
    data, model = credit_sens
    X = data.test.X[:40]
    a = counterfactuals(model, data, X, target="other", k=2, max_changes=1, seed=3)
    b = counterfactuals(model, data, X, target="other", k=2, max_changes=1, seed=3)
    assert dataclasses.replace(b, provenance=a.provenance) == a  # same seed, same result (time aside)
    assert np.all(a.sparsity[a.validity] == 1)
    frame = a.to_frame()
    assert set(frame["kind"]) == {"original", "counterfactual"} and (frame["kind"] == "original").sum() == 40
    assert set(frame["employment"]) <= set(data.encoding.columns[7].categories)
    assert all(isinstance(v, (int, np.integer)) for v in frame["late_payments"])
    raw = pd.DataFrame(a.values(a.original), columns=a.feature_names)  # a DataFrame of raw rows works too
    c = counterfactuals(model, data, raw, target="other", k=2, max_changes=1, seed=3)
    np.testing.assert_allclose(c.original, a.original)


def test_json_round_trip(credit_cfs):
    res = credit_cfs["gradient"]
    d = json.loads(json.dumps(res.to_dict(), default=lambda o: o.tolist() if isinstance(o, np.ndarray) else o))
    back = CounterfactualResult.from_dict(d)
    assert back == res and back.metrics() == pytest.approx(res.metrics(), nan_ok=True)
    from audit.results import metric_spec

    assert all(metric_spec(CounterfactualResult.METRICS, name) is not None for name in res.metrics())


def test_bad_input_is_one_clear_error(credit_sens):
    data, model = credit_sens
    X = data.test.X[:3]
    with pytest.raises(AuditInputError, match="tabular"):
        images, cnn = _tiny_images()
        counterfactuals(cnn, images, images.X[:2])
    with pytest.raises(AuditInputError, match="not a raw column"):
        counterfactuals(model, data, X, immutable=["salary"])
    with pytest.raises(AuditInputError, match="increase"):
        counterfactuals(model, data, X, monotone={"income": "up"})
    with pytest.raises(AuditInputError, match="categorical"):
        counterfactuals(model, data, X, monotone={"employment": "increase"})
    with pytest.raises(AuditInputError, match="classes"):
        counterfactuals(model, data, X, target="maybe")
    with pytest.raises(AuditInputError, match="shape"):
        counterfactuals(model, data, X[:, :5])
    with pytest.raises(AuditInputError, match="differentiable"):
        counterfactuals(model.replace(differentiable=False), data, X, method="gradient")


def _tiny_images():
    """A 4x4 one-channel image data set and a linear model on it (image input is refused)."""
    from audit.data import Dataset

    rng = np.random.default_rng(0)
    X = rng.random((20, 4, 4, 1)).astype(np.float32)
    images = Dataset(X=X, y=np.arange(20) % 2, feature_names=(), class_names=("a", "b"), kind="image")
    model = Model.from_function(lambda p, x: jnp.stack([x.sum((1, 2, 3)), -x.sum((1, 2, 3))], axis=1), {},
                                input_shape=(4, 4, 1), class_names=("a", "b"))
    return images, model
