"""Surrogate rules: a model that is a tree is recovered exactly; fidelity per group is the
agreement on that group's rows; a group the rules describe poorly is named."""

from __future__ import annotations

import json

import jax.numpy as jnp
import numpy as np
import pytest

from audit import explain
from audit.data import Dataset, stratified_split
from audit.errors import AuditInputError
from audit.explain import SurrogateResult
from audit.models import Model
from audit.results import metric_spec, to_jsonable


def _column(data, name):
    j = data.encoding.raw_names.index(name)
    return data.encoding.columns[j], data.encoding.groups[j]


def tree_model(data) -> Model:
    """Predicts class 1 exactly when debt_ratio > 0.45 and employment is unemployed."""
    debt, (d,) = _column(data, "debt_ratio")
    emp, group = _column(data, "employment")
    u = group[emp.categories.index("unemployed")]

    def apply(p, x):
        hit = (x[:, d] * debt.std + debt.mean > 0.45) & (x[:, u] > 0.5)
        z = jnp.where(hit, 5.0, -5.0)
        return jnp.stack([jnp.zeros_like(z), z], axis=1)

    return Model.from_function(apply, {}, input_shape=data.input_shape, class_names=data.class_names)


def test_a_tree_shaped_model_is_recovered_as_readable_rules(credit_small):
    res = explain.surrogate_tree(tree_model(credit_small), credit_small, max_depth=2, min_samples_leaf=1)
    assert res.fidelity == 1.0 and res.train_fidelity == 1.0
    positive = [r for r in res.rules if r.prediction == credit_small.class_names[1]]
    assert len(positive) == 1
    cond = positive[0].conditions
    assert "employment = unemployed" in cond
    (bound,) = [c for c in cond if "debt_ratio" in c]
    assert bound.startswith("debt_ratio > ")
    # the learned threshold lies between the nearest training values around 0.45
    assert 0.40 < float(bound.split(">")[1]) <= 0.45 + 1e-9
    assert positive[0].text.startswith("if ") and positive[0].confidence == 1.0
    assert sum(r.support for r in res.rules) == len(credit_small.splits["train"])


def test_group_fidelity_is_the_agreement_on_that_groups_rows(credit_small, credit_model):
    res = explain.surrogate_tree(credit_model, credit_small, max_depth=2, min_group_size=30)
    test = credit_small.splits["test"]
    assert res.n_held_out == len(test)
    sex = credit_small.sensitive["sex"][test]
    groups = {(g.attribute, g.group): g for g in res.groups}
    assert {("sex", "female"), ("sex", "male")} <= set(groups)
    assert sum(g.size for g in res.groups if g.attribute == "sex") == len(test)
    # recompute the agreement by hand from the rules' leaves: rebuild with the same tree
    from sklearn.tree import DecisionTreeClassifier

    from audit.explain._surrogate import _features

    feats, _ = _features(credit_small, credit_small.X)
    pred = credit_model.predict(credit_small.X)
    tree = DecisionTreeClassifier(max_depth=2, min_samples_leaf=20, random_state=0).fit(
        feats[credit_small.splits["train"]], pred[credit_small.splits["train"]])
    agree = tree.predict(feats[test]) == pred[test]
    assert res.fidelity == pytest.approx(agree.mean(), abs=1e-12)
    for label in ("female", "male"):
        assert groups[("sex", label)].fidelity == pytest.approx(agree[sex == label].mean(), abs=1e-12)
    # metrics are declared and the result round-trips JSON exactly
    for name in res.metrics():
        assert metric_spec(SurrogateResult.METRICS, name) is not None, name
    back = SurrogateResult.from_dict(json.loads(json.dumps(to_jsonable(res.to_dict()))))
    assert back == res and back.text() == res.text()


def _two_regimes(n: int = 4000) -> tuple[Dataset, Model]:
    """Group a (x0 <= 0): the model thresholds x1, easy for a tree. Group b (x0 > 0): the model
    follows sin(25 x1), which no shallow tree can follow."""
    rng = np.random.default_rng(0)
    X = rng.uniform(-1, 1, size=(n, 2)).astype(np.float32)
    group = np.where(X[:, 0] > 0, "b", "a")
    group[:3] = "c"  # a group too small to judge
    y = (X[:, 1] > 0).astype(np.int64)
    data = Dataset(X=X, y=y, feature_names=("x0", "x1"), class_names=("no", "yes"), sensitive={"g": group},
                   splits=stratified_split(y, seed=0), name="regimes")

    def apply(p, x):
        z = jnp.where(x[:, 0] > 0, jnp.sin(25.0 * x[:, 1]), x[:, 1])
        return jnp.stack([jnp.zeros_like(z), 10 * z], axis=1)

    return data, Model.from_function(apply, {}, input_shape=(2,), class_names=("no", "yes"))


def test_a_group_the_rules_describe_poorly_gets_a_finding_and_small_groups_none():
    data, model = _two_regimes()
    res = explain.surrogate_tree(model, data, max_depth=3)
    g = {x.group: x for x in res.groups}
    assert g["a"].fidelity > 0.95 and g["b"].fidelity < 0.8
    assert not g["c"].judged if "c" in g else True
    warned = [f for f in res.findings if f.status == "warn" and f.id.startswith("explain.surrogate.g.")]
    assert [f.id for f in warned] == ["explain.surrogate.g.b"]
    assert "g = b" in warned[0].title
    assert res.metrics()["surrogate_fidelity_gap"] == pytest.approx(res.fidelity - g["b"].fidelity)


@pytest.mark.parametrize("kwargs, match", [({"max_depth": 0}, "max_depth"), ({"min_samples_leaf": 1.5}, "min_samples_leaf")])
def test_bad_arguments(credit_small, credit_model, kwargs, match):
    with pytest.raises(AuditInputError, match=match):
        explain.surrogate_tree(credit_model, credit_small, **kwargs)


def test_images_and_missing_splits_are_refused(digits, credit_small, credit_model):
    flat = Model.from_function(lambda p, x: x.reshape(len(x), -1)[:, :10], {}, input_shape=(8, 8, 1),
                               class_names=digits.class_names)
    with pytest.raises(AuditInputError, match="tabular"):
        explain.surrogate_tree(flat, digits)
    nosplit = Dataset(X=credit_small.X, y=credit_small.y, feature_names=credit_small.feature_names,
                      class_names=credit_small.class_names, encoding=credit_small.encoding)
    with pytest.raises(AuditInputError, match="splits"):
        explain.surrogate_tree(credit_model, nosplit)


# ---- analyze(), figures ----------------------------------------------------------------------
def test_analyze_carries_interactions_and_rules_with_figures(credit_small, credit_model):
    from matplotlib.figure import Figure

    from audit.explain import ExplanationReport, analyze
    from audit.render.figures import interactions as ifig
    from audit.render.figures import surrogate as sfig
    from audit.render.sections import explain_figures

    r = analyze(credit_model, credit_small, n_examples=3, methods=("shap",), stability_samples=0,
                permutation_repeats=1, background_size=10, interaction_examples=12, seed=0)
    assert r.interactions.values.shape == (12, 10, 10) and r.surrogate.fidelity > 0.8
    m = r.metrics()
    assert "interaction_share" in m and "surrogate_fidelity:sex=female" in m
    assert {"explain.interactions", "explain.surrogate"} <= {f.id for f in r.findings}
    back = ExplanationReport.from_dict(json.loads(json.dumps(to_jsonable(r.to_dict()))))
    assert back.interactions == r.interactions and back.surrogate == r.surrogate
    old = r.to_dict()
    del old["interactions"], old["surrogate"]
    assert ExplanationReport.from_dict(json.loads(json.dumps(to_jsonable(old)))).interactions is None
    captions = [c for c, f in explain_figures(r)]
    assert any("interacting pairs" in c for c in captions) and any("surrogate" in c for c in captions)
    for _, fig in ifig.report_figures(r.interactions) + sfig.report_figures(r.surrogate):
        assert isinstance(fig, Figure)
    with pytest.raises(AuditInputError, match="interaction_examples"):
        analyze(credit_model, credit_small, interaction_examples=0)
