"""Recourse per group: exact on a linear model (against the linear program), the planted credit bias,
findings, the pipeline registry, JSON and input errors."""

from __future__ import annotations

import json

import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest
from scipy.optimize import linprog

from audit import datasets
from audit.data import from_pandas
from audit.errors import AuditInputError
from audit.explain._cf_space import build_space
from audit.models import Model, train
from audit.recourse import RecourseReport, evaluate


@pytest.fixture(scope="module")
def linear_groups():
    """Two groups; the model adds +1.2 to the unfavourable logit for group "b" (a planted burden)."""
    rng = np.random.default_rng(1)
    n = 3000
    frame = pd.DataFrame({"x1": rng.normal(size=n), "x2": rng.normal(size=n) * 3.0,
                          "group": rng.choice(["a", "b"], size=n)})
    frame["y"] = np.where(frame["x1"] + 0.5 * frame["x2"] > 1.0, "deny", "grant")
    data = from_pandas(frame, target="y", sensitive=["group"], categorical=["group"], include_sensitive=True,
                       class_names=("grant", "deny"), name="linear-groups")
    cols = {c.name: c for c in data.encoding.columns}
    # inputs: x1, x2 standardised, then the one-hot of group (a, b)
    w = np.array([1.0 * cols["x1"].std, 0.5 * cols["x2"].std, 0.0, 1.2])
    b = -1.0 + cols["x1"].mean + 0.5 * cols["x2"].mean
    model = Model.from_function(lambda p, x: jnp.stack([jnp.zeros(x.shape[0]), x @ p["w"] + p["b"]], axis=1),
                                {"w": jnp.asarray(w, jnp.float32), "b": jnp.float32(b)}, input_shape=(4,),
                                class_names=("grant", "deny"))
    return data, model


def test_linear_burden_matches_the_closed_form(linear_groups):
    data, model = linear_groups
    rep = evaluate(model, data, n_bootstrap=200, max_ratio=1.05, seed=0)
    assert rep.favorable_class == "grant"  # the most common label
    a = rep.attribute("group")
    # the linear program: remove the deficit z = x1 + 0.5 x2 - 1 (+1.2 for b) at least MAD-scaled L1 cost
    raw = data.raw[data.splits["test"]][rep.rows]
    is_b = raw[:, 2] == 1
    z = raw[:, 0] + 0.5 * raw[:, 1] - 1.0 + 1.2 * is_b
    space = build_space(data)
    expect = []
    for r0, zi in zip(raw, z):
        lo, hi = space.bounds(r0)
        res = linprog(np.tile(1 / space.scale[:2], 2), A_ub=[[1.0, 0.5, -1.0, -0.5]], b_ub=[-zi],
                      bounds=[(0, hi[0] - r0[0]), (0, hi[1] - r0[1]), (0, r0[0] - lo[0]), (0, r0[1] - lo[1])],
                      method="highs")
        expect.append(res.fun if res.status == 0 else np.nan)
    expect = np.array(expect)
    assert np.all(rep.feasible)
    np.testing.assert_allclose(rep.cost, expect, rtol=2e-3, atol=1e-3)  # atol: the 1e-4 logit safety margin
    ga, gb = a.group("a"), a.group("b")
    np.testing.assert_allclose([ga.mean_cost, gb.mean_cost], [expect[~is_b].mean(), expect[is_b].mean()], rtol=2e-3)
    assert a.high_group == "b" and a.low_group == "a"
    assert a.burden_ratio == pytest.approx(gb.mean_cost / ga.mean_cost)
    assert a.ci_low > 1.0 and a.ci_low < a.burden_ratio < a.ci_high
    assert gb.ci_low < gb.mean_cost < gb.ci_high
    finding = next(f for f in rep.findings if f.id == "recourse.burden:group")
    assert finding.status == "fail" and "'b'" in finding.message and finding.metric == "burden_ratio:group"
    m = rep.metrics()
    assert m["burden_ratio:group"] == a.burden_ratio and m["infeasible_rate"] == 0.0
    # the sensitive input never changes in any counterfactual
    cf = rep.counterfactuals
    assert np.array_equal(cf.counterfactuals[:, 0, 2], cf.original[:, 2])


def test_infeasible_rows_are_counted_per_group(linear_groups):
    data, model = linear_groups
    rep = evaluate(model, data, n_bootstrap=50, immutable=["x1"], monotone={"x2": "increase"}, seed=0)
    # x2 may only increase, and increasing it raises the unfavourable logit: nobody has recourse
    assert rep.metrics()["infeasible_rate"] == 1.0 and not rep.feasible.any()
    assert all(g.infeasible_rate == 1.0 for g in rep.attribute("group").groups)
    assert next(f for f in rep.findings if f.id == "recourse.infeasible").status == "warn"
    assert next(f for f in rep.findings if f.id == "recourse.burden:group").status == "warn"  # nothing to compare
    assert np.isnan(rep.metrics()["burden_ratio:group"])


def _credit_burden(**planted):
    data = datasets.load("credit", n=8000, seed=0, include_sensitive=True, **planted)
    model = train("mlp", data, epochs=10, batch_size=128, widths=(32, 16), progress=False, seed=0)
    return evaluate(model, data, split="train", attributes=["sex"], n_bootstrap=300, seed=0)


@pytest.fixture(scope="module")
def credit_recourse():
    """The planted recourse burden: women aged 50+ labelled defaulters far more often (audit.data._credit)."""
    return _credit_burden(recourse_bias=True)


def test_planted_credit_bias_burdens_women(credit_recourse):
    a = credit_recourse.attribute("sex")
    assert credit_recourse.favorable_class == "no"
    female, male = a.group("female"), a.group("male")
    assert female.n_denied > 2 * male.n_denied  # the label bias: women are denied more often
    assert not female.too_small and not male.too_small
    # and the women denied need clearly more change to be approved: the interval excludes 1
    assert a.high_group == "female" and a.low_group == "male" and a.ci_low > 1.1
    assert a.burden_ratio == pytest.approx(female.mean_cost / male.mean_cost)
    finding = next(f for f in credit_recourse.findings if f.id == "recourse.burden:sex")
    assert finding.status == "fail" and "'female'" in finding.message  # 1.36 > the 1.25 rule, and sure


@pytest.mark.slow  # ~30 s: a second model and search
def test_no_clear_burden_without_the_bias():
    """The same data, model and analyzer without either label bias: no clear gap either way."""
    a = _credit_burden(label_bias=False).attribute("sex")
    assert not a.group("female").too_small and not a.group("male").too_small
    assert a.ci_low < 1.0 < a.ci_high
    assert a.burden_ratio < 1.25


def test_json_round_trip(credit_recourse):
    d = json.loads(json.dumps(credit_recourse.to_dict(),
                              default=lambda o: o.tolist() if isinstance(o, np.ndarray) else o))
    back = RecourseReport.from_dict(d)
    assert back == credit_recourse
    from audit.results import metric_spec

    for name in credit_recourse.metrics():  # every metric is declared with its direction and meaning
        assert metric_spec(RecourseReport.METRICS, name) is not None, name
    assert metric_spec(RecourseReport.METRICS, "burden_ratio:sex").direction == "lower"


def test_registry_and_pipeline(linear_groups):
    from audit.pipeline import AuditConfig, run
    from audit.pipeline._registry import ANALYZERS

    data, model = linear_groups
    spec = ANALYZERS["recourse"]
    assert spec.needs_sensitive and spec.kinds == ("tabular",)
    config = AuditConfig.from_dict({"name": "r", "analyzers": {"recourse": {"n_bootstrap": 50, "max_rows": 200}},
                                    "policy": [{"metric": "recourse.burden_ratio:group", "max": 1.05}]})
    report = run(model, data, config, progress=False)
    assert not report.passed
    assert report.metrics()["recourse.burden_ratio:group"] > 1.05


def test_bad_input(linear_groups):
    data, model = linear_groups
    with pytest.raises(AuditInputError, match="sensitive attribute"):
        evaluate(model, data, attributes=["age"])
    with pytest.raises(AuditInputError, match="tabular"):
        images, cnn = _tiny_images()
        evaluate(cnn, images)
    with pytest.raises(AuditInputError, match="max_ratio"):
        evaluate(model, data, max_ratio=0.5)


def _tiny_images():
    """A 4x4 one-channel image data set and a linear model on it (image input is refused)."""
    from audit.data import Dataset

    rng = np.random.default_rng(0)
    X = rng.random((20, 4, 4, 1)).astype(np.float32)
    images = Dataset(X=X, y=np.arange(20) % 2, feature_names=(), class_names=("a", "b"), kind="image")
    model = Model.from_function(lambda p, x: jnp.stack([x.sum((1, 2, 3)), -x.sum((1, 2, 3))], axis=1), {},
                                input_shape=(4, 4, 1), class_names=("a", "b"))
    return images, model
