"""`analyze()` end to end on the zoo models: contents, metrics, findings, JSON, seeds, figures."""

from __future__ import annotations

import json

import numpy as np
import pytest
from matplotlib.figure import Figure

from audit.errors import AuditInputError
from audit.explain import ExplanationReport, analyze
from audit.explain._attribution import Attribution
from audit.explain._analyze import explained_class, pick_examples
from audit.render.figures import saliency as figures
from audit.results import to_jsonable


@pytest.fixture(scope="module")
def credit_report(credit_model, credit_small):
    return analyze(credit_model, credit_small, n_examples=6, seed=0, permutation_repeats=4)


@pytest.fixture(scope="module")
def digits_report(digits_cnn, digits):
    return analyze(digits_cnn, digits, n_examples=4, seed=0, stability_samples=2,
                   methods=("shap", "lime", "gradient", "integrated_gradients", "smoothgrad"))


def test_credit_report_contents(credit_report, credit_small, credit_model):
    r = credit_report
    assert r.methods == ("shap", "lime", "integrated_gradients", "deeplift")
    assert r.misclassified.any() and len(r.rows) == 6
    test = credit_small.test
    assert np.array_equal(r.labels, test.y[r.rows])
    assert np.array_equal(r.predictions, credit_model.predict(test.X[r.rows]))
    assert np.all(r.target == 1)  # two classes: the positive class, as SHAP explains it
    for a in r.attributions.values():
        assert isinstance(a, Attribution) and a.values.shape == (6, len(credit_small.raw_feature_names))
        assert np.array_equal(a.target, r.target)
    m = r.metrics()
    assert m["ig_completeness_error"] < 0.01
    for name in ("deletion_auc:lime", "insertion_auc:shap", "stability:integrated_gradients",
                 "rank_agreement:shap~integrated_gradients", "top_k_overlap:shap~lime",
                 "deletion_auc:random", "lime_local_fit", "permutation_importance:income",
                 "shap.importance.income"):
        assert name in m and np.isfinite(m[name]), name
    # SHAP and IG both split f(x) - f(baseline) over the raw columns: they rank alike
    assert m["rank_agreement:shap~integrated_gradients"] > 0.6
    # the planted label drivers lead both global views
    important = {"income", "debt_ratio", "late_payments", "credit_history_years", "employment"}
    for view in r.global_importance().values():
        top = sorted(view, key=view.get, reverse=True)[:3]
        assert set(top) <= important, top
    ids = {f.id for f in r.findings}
    assert {"explain.completeness.integrated_gradients", "explain.agreement",
            "explain.stability.lime", "explain.faithfulness.shap"} <= ids


def test_credit_faithfulness_beats_random(credit_report):
    m = credit_report.metrics()
    assert m["deletion_auc:shap"] < m["deletion_auc:random"]
    assert m["deletion_auc:integrated_gradients"] < m["deletion_auc:random"]
    assert m["insertion_auc:shap"] > m["insertion_auc:random"]


def test_report_json_round_trip_is_exact(credit_report, digits_report):
    for r in (credit_report, digits_report):
        text = json.dumps(to_jsonable(r.to_dict()))
        back = ExplanationReport.from_dict(json.loads(text))
        assert json.dumps(to_jsonable(back.to_dict())) == text and back == r
        assert back.metrics() == r.metrics()
        assert [f.to_dict() for f in back.findings] == [f.to_dict() for f in r.findings]


def test_same_seed_same_report(credit_model, credit_small, credit_report):
    again = analyze(credit_model, credit_small, n_examples=6, seed=0, permutation_repeats=4)
    a, b = to_jsonable(again.to_dict()), to_jsonable(credit_report.to_dict())
    a["provenance"]["seconds"] = b["provenance"]["seconds"] = 0
    for d in (a, b):
        for att in d["attributions"].values():
            att["provenance"]["seconds"] = 0
        if d["shap"]:
            d["shap"]["provenance"]["seconds"] = 0
        d["permutation"]["provenance"]["seconds"] = 0
        for part in ("interactions", "surrogate"):
            d[part]["provenance"]["seconds"] = 0
    assert a == b


def test_digits_report(digits_report, digits_cnn, digits):
    r = digits_report
    assert r.kind == "image" and r.permutation is None
    for m, a in r.attributions.items():
        assert a.values.shape == (4, 8, 8, 1), m
    t = r.target
    assert np.array_equal(t, digits_cnn.predict(digits.test.X[r.rows]))  # multi-class: the prediction
    assert np.array_equal(r.shap.class_index, t)  # SHAP explained the same classes
    m = r.metrics()
    assert m["ig_completeness_error"] < 0.01
    for method in r.methods:
        assert m[f"deletion_auc:{method}"] < m["deletion_auc:random"], method
    assert "explain.agreement" in {f.id for f in r.findings}


def test_pick_examples_includes_misclassified(credit_model, credit_small):
    test = credit_small.test
    rows = pick_examples(credit_model, test, n_examples=8, seed=3)
    wrong = credit_model.predict(test.X[rows]) != test.y[rows]
    assert len(rows) == 8 and len(set(rows)) == 8 and 1 <= wrong.sum() <= 2
    assert np.array_equal(rows, pick_examples(credit_model, test, n_examples=8, seed=3))
    assert explained_class(credit_model, test.X[:3]).tolist() == [1, 1, 1]


def test_non_differentiable_models(credit_model, credit_small):
    frozen = credit_model.replace(differentiable=False)
    r = analyze(frozen, credit_small, n_examples=4, methods=None, stability_samples=0, permutation_repeats=2)
    assert "integrated_gradients" in r.skipped and "integrated_gradients" not in r.attributions
    with pytest.raises(AuditInputError, match="differentiable"):
        analyze(frozen, credit_small, methods=("integrated_gradients",))


def test_bad_input(credit_model, credit_small, digits):
    with pytest.raises(AuditInputError, match="unknown explanation methods"):
        analyze(credit_model, credit_small, methods=("occlusion",))
    with pytest.raises(AuditInputError, match="n_examples"):
        analyze(credit_model, credit_small, n_examples=1)
    with pytest.raises(AuditInputError, match="model takes"):
        analyze(credit_model, digits)


def test_figures(credit_report, digits_report):
    figs = [figures.method_grid(digits_report), figures.heatmap_overlay(digits_report.attributions["gradient"]),
            figures.lime_weights(digits_report.attributions["lime"]),
            figures.lime_weights(credit_report.attributions["lime"], example=1),
            figures.faithfulness_curves(credit_report), figures.agreement_matrix(digits_report),
            figures.permutation_importance(credit_report.permutation)]
    for fig in figs:
        assert isinstance(fig, Figure) and fig.axes
    with pytest.raises(ValueError):
        figures.heatmap_overlay(credit_report.attributions["lime"])
