"""Imbalance audit: metrics equal scikit-learn's, calibration and thresholds against brute force,
the minority class flagged on credit and helped by class weights, resampling kept valid."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
from sklearn import metrics as skm

from audit.errors import AuditInputError
from audit.imbalance import (ImbalanceReport, MitigationComparison, compare_mitigations, cost_threshold,
                             evaluate, f1_optimal_threshold, reliability, resample)
from audit.models import Model
from audit.results import to_jsonable


@pytest.fixture(scope="module")
def credit_report(credit_model, credit_small):
    return evaluate(credit_model, credit_small)


def test_metrics_equal_sklearn_on_the_same_predictions(credit_model, credit_small, credit_report):
    test = credit_small.test
    proba = credit_model.predict_proba(test.X).astype(np.float64)
    pred = proba.argmax(-1)
    m = credit_report.metrics()
    assert m["balanced_accuracy"] == pytest.approx(skm.balanced_accuracy_score(test.y, pred), abs=1e-9)
    assert m["macro_f1"] == pytest.approx(skm.f1_score(test.y, pred, average="macro"), abs=1e-9)
    assert m["weighted_f1"] == pytest.approx(skm.f1_score(test.y, pred, average="weighted"), abs=1e-9)
    assert m["mcc"] == pytest.approx(skm.matthews_corrcoef(test.y, pred), abs=1e-9)
    assert m["brier"] == pytest.approx(np.mean((proba[:, 1] - test.y) ** 2), abs=1e-9)
    assert m["recall:yes"] == pytest.approx(skm.recall_score(test.y, pred), abs=1e-9)
    assert m["pr_auc:yes"] == pytest.approx(skm.average_precision_score(test.y, proba[:, 1]), abs=1e-9)
    assert m["roc_auc:yes"] == pytest.approx(skm.roc_auc_score(test.y, proba[:, 1]), abs=1e-9)
    np.testing.assert_array_equal(credit_report.confusion, skm.confusion_matrix(test.y, pred))
    train_counts = np.bincount(credit_small.train.y)
    assert m["imbalance_ratio"] == pytest.approx(train_counts[0] / train_counts[1])
    assert credit_report.minority_class == "yes"


def test_minority_recall_is_flagged_on_credit(credit_report):
    finding = next(f for f in credit_report.findings if f.id == "imbalance.minority_recall")
    gap = next(f for f in credit_report.findings if f.id == "imbalance.recall_gap")
    assert finding.metric == "recall:yes" and gap.title == "Worst-served class 'yes'"
    assert finding.status == "fail" or gap.status == "warn"
    m = credit_report.metrics()
    assert m["min_class_recall"] == m["recall:yes"] < m["recall:no"] - 0.2
    assert next(f for f in credit_report.findings if f.id == "imbalance.accuracy_hides").status == "warn"


def test_class_weighting_raises_minority_recall(credit_model, credit_small):
    result = compare_mitigations(credit_model, credit_small, methods=("none", "class_weight"),
                                 train_options={"epochs": 8})
    v = result.values
    assert v["class_weight"]["minority_recall"] > v["none"]["minority_recall"] + 0.1
    assert result.minority == "yes"
    assert next(f for f in result.findings if f.id == "imbalance.mitigation.class_weight").status == "pass"
    again = MitigationComparison.from_dict(json.loads(json.dumps(to_jsonable(result.to_dict()))))
    assert again.metrics() == result.metrics()


def test_reliability_matches_a_loop_and_is_small_when_calibrated():
    rng = np.random.default_rng(0)
    p = rng.dirichlet(np.ones(3), size=20000)
    y = np.array([rng.choice(3, p=row) for row in p[:3000]])  # labels drawn from the probabilities
    rel = reliability(y, p[:3000], n_bins=8)
    conf, right = p[:3000].max(1), p[:3000].argmax(1) == y
    bins = np.minimum((conf * 8).astype(int), 7)
    ece = sum(abs(right[bins == b].mean() - conf[bins == b].mean()) * (bins == b).mean()
              for b in range(8) if (bins == b).any())
    assert rel.ece == pytest.approx(ece, abs=1e-12) and rel.mce >= rel.ece
    assert rel.counts.sum() == 3000 and rel.ece < 0.05
    overconfident = reliability(y, np.eye(3)[p[:3000].argmax(1)], n_bins=8)
    assert overconfident.ece > 0.3


def test_chosen_thresholds_are_optimal_by_brute_force():
    rng = np.random.default_rng(1)
    y = (rng.random(600) < 0.15).astype(int)
    score = np.clip(0.3 * y + rng.random(600) * 0.7, 0, 1).round(2)  # ties on purpose

    def f1(t):
        return skm.f1_score(y, score >= t, zero_division=0.0)

    def cost(t):
        pred = score >= t
        return 1.0 * np.sum(pred & (y == 0)) + 4.0 * np.sum(~pred & (y == 1))

    candidates = np.r_[np.unique(score), 1.5]
    assert f1(f1_optimal_threshold(y, score)) == pytest.approx(max(f1(t) for t in candidates), abs=1e-12)
    best = cost_threshold(y, score, fp_cost=1.0, fn_cost=4.0)
    assert cost(best) == min(cost(t) for t in candidates)


def test_threshold_analysis_on_credit(credit_report):
    th = credit_report.thresholds
    assert th.chosen_on == "val" and th.positive_class == "yes"
    assert len(th.precision) <= 256 and th.fpr[0] == 0 and th.tpr[-1] == 1
    d, c = th.point("default"), th.point("cost_weighted")
    assert d.threshold == 0.5 and c.recall > d.recall  # cost of a miss = class ratio: a lower threshold


def test_multiclass_report_and_round_trip(digits_cnn, digits):
    report = evaluate(digits_cnn, digits)
    assert report.thresholds is None and report.confusion.shape == (10, 10)
    m = report.metrics()
    assert all(f"pr_auc:{c}" in m for c in digits.class_names)
    test = digits.test
    pred = digits_cnn.predict(test.X)
    assert m["macro_f1"] == pytest.approx(skm.f1_score(test.y, pred, average="macro"), abs=1e-9)
    again = ImbalanceReport.from_dict(json.loads(json.dumps(to_jsonable(report.to_dict()))))
    assert again == report and again.metrics() == m


def test_resampling_keeps_validation_and_test_rows(credit_small):
    counts = np.bincount(credit_small.train.y)
    over = resample(credit_small, "oversample", seed=0)
    under = resample(credit_small, "undersample", seed=0)
    smote = resample(credit_small, "smote", seed=0)
    np.testing.assert_array_equal(np.bincount(over.train.y), [counts.max()] * 2)
    np.testing.assert_array_equal(np.bincount(under.train.y), [counts.min()] * 2)
    np.testing.assert_array_equal(np.bincount(smote.train.y), [counts.max()] * 2)
    for d in (over, under, smote):
        np.testing.assert_array_equal(d.test.X, credit_small.test.X)
        np.testing.assert_array_equal(d.val.y, credit_small.val.y)
    blocks = [g for g, c in zip(credit_small.encoding.groups, credit_small.encoding.columns)
              if c.kind == "categorical"]
    for g in blocks:  # synthetic SMOTE-NC rows keep exactly one category per one-hot block
        np.testing.assert_array_equal(smote.train.X[:, list(g)].sum(1), 1.0)


def test_smote_neighbours_do_not_depend_on_a_column_s_units():
    import pandas as pd

    from audit.data import from_pandas

    rng = np.random.default_rng(0)
    n = 400
    df = pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n), "c": rng.choice(["x", "y", "z"], n),
                       "label": np.where(rng.random(n) < 0.15, "yes", "no")})
    metres = from_pandas(df, target="label", categorical=["c"])
    millimetres = from_pandas(df.assign(b=df.b * 1000.0), target="label", categorical=["c"])
    one, other = resample(metres, "smote", seed=0), resample(millimetres, "smote", seed=0)
    m = len(metres.splits["train"])
    assert len(one.train.y) > m
    np.testing.assert_array_equal(one.raw[:m], metres.raw[metres.splits["train"]])  # originals unchanged
    # same synthetic rows in both units: neighbours are found on standardised columns
    np.testing.assert_allclose(one.train.X, other.train.X, atol=1e-4)
    np.testing.assert_allclose(other.raw[m:len(one.train.y), 1], 1000.0 * one.raw[m:len(one.train.y), 1], rtol=1e-6)


def test_bad_input(credit_model, credit_small):
    with pytest.raises(AuditInputError, match="classes"):
        evaluate(credit_model.replace(class_names=("a", "b")), credit_small)
    with pytest.raises(AuditInputError, match="split"):
        evaluate(credit_model, credit_small, split="holdout")
    nan_model = Model.from_function(lambda p, x: x[:, :2] * np.nan, {}, input_shape=credit_small.input_shape,
                                    class_names=credit_small.class_names)
    with pytest.raises(AuditInputError, match="NaN"):
        evaluate(nan_model, credit_small)
    with pytest.raises(AuditInputError, match="unknown imbalance mitigation"):
        compare_mitigations(credit_model, credit_small, methods=("bagging",))
    for settings, message in (({"n_bins": 0}, "n_bins=0 must be a positive integer"),
                              ({"fp_cost": -1.0}, "fp_cost=-1.0 must be a positive number"),
                              ({"fn_cost": float("nan")}, "fn_cost=nan"),
                              ({"min_recall": 2}, "min_recall=2 must be a number in"),
                              ({"max_points": "many"}, "max_points='many'")):
        with pytest.raises(AuditInputError, match=message):
            evaluate(credit_model, credit_small, **settings)
    no_arch = credit_model.replace(architecture=None)
    with pytest.raises(AuditInputError, match="architecture"):
        compare_mitigations(no_arch, credit_small, methods=("none",))
    missing = dataclasses.replace(credit_small, splits={**credit_small.splits, "test": np.arange(0)})
    with pytest.raises(AuditInputError, match="no rows"):
        evaluate(credit_model, missing)
