"""Injection scenarios, imputation strategies and multiple imputation of the missing-data audit:
Rubin's rules against a hand computation, multiple imputation against scikit-learn's
IterativeImputer draws redone by hand, the group scenario leaving other groups untouched, the
important scenario aimed at the column the model uses, imputers fitted on training rows only, and
the retraining comparison against training by hand."""

from __future__ import annotations

import dataclasses

import jax.numpy as jnp
import numpy as np
import pytest
from scipy.stats import norm, t

import audit
from audit.missing import compare_strategies, evaluate, rubin, strategy_encodings
from audit.missing._evaluate import _column_shares
from audit.models import Model


@pytest.fixture(scope="module")
def mnar():
    return audit.datasets.load("credit", n=3000, missing="mnar")


def _on(data, columns, weight=3.0):
    """A linear model that reads only the inputs named in `columns` (class 1 when they are high)."""
    w = np.zeros((data.X.shape[1], data.n_classes), np.float32)
    for name in columns:
        w[data.feature_names.index(name), 1] = weight
    return Model.from_function(lambda p, x: x @ p - jnp.array([0.0, 1.5]), jnp.asarray(w),
                               input_shape=data.X.shape[1:], class_names=data.class_names)


def test_rubin_rules_by_hand():
    # three estimates: mean 0.75, W = 0.015, B = 0.0025, T = W + (1 + 1/3) B, df = 2 (1 + W / (4/3 B))^2
    mean, total, lo, hi = rubin(np.array([0.7, 0.8, 0.75]), np.array([0.01, 0.02, 0.015]), confidence=0.9)
    assert mean == pytest.approx(0.75, abs=1e-15)
    assert total == pytest.approx(0.015 + 4 / 3 * 0.0025, abs=1e-15)
    half = t.ppf(0.95, 2 * (1 + 0.015 / (4 / 3 * 0.0025)) ** 2) * np.sqrt(0.015 + 4 / 3 * 0.0025)
    assert (lo, hi) == pytest.approx((0.75 - half, 0.75 + half), abs=1e-12)
    # draws that agree (B = 0): the total variance is the within variance, the interval normal
    mean, total, lo, hi = rubin(np.full(4, 0.6), np.full(4, 0.0024))
    assert total == pytest.approx(0.0024, abs=1e-15)
    assert hi - mean == pytest.approx(norm.ppf(0.975) * np.sqrt(0.0024), abs=1e-12)
    with pytest.raises(ValueError):
        rubin(np.array([0.5]), np.array([0.1]))


def test_multiple_imputation_pools_iterative_imputer_draws_by_rubin():
    from sklearn.experimental import enable_iterative_imputer  # noqa: F401
    from sklearn.impute import IterativeImputer

    mnar = audit.datasets.load("credit", n=1200, missing="mnar")
    model = _on(mnar, ["income", "debt_ratio"])
    report = evaluate(model, mnar, rates=(0.3,), scenarios=("mcar",), strategies=("multiple",), draws=3,
                      attributes=["sex"], seed=4)
    curve = next(c for c in report.curves if c.strategy == "multiple")
    enc, rows, train = mnar.encoding, mnar.splits["test"], mnar.splits["train"]
    numeric = [j for j, c in enumerate(enc.columns) if c.kind == "numeric"]
    raw = np.where(mnar.missing_mask, np.nan, mnar.raw)
    base = raw[rows]
    injected = base.copy()
    part = injected[:, numeric]
    part[np.random.default_rng((4, 0)).random(part.shape) < 0.3] = np.nan
    injected[:, numeric] = part
    y = mnar.y[rows]
    accuracies = {0: [], 1: []}
    for k in range(3):  # each draw: its own seeded imputer, called on the same rows in the same order
        imputer = IterativeImputer(max_iter=10, random_state=4 + k, sample_posterior=True,
                                   keep_empty_features=True).fit(raw[train][:, numeric])
        for i, x in enumerate((base, injected)):
            filled = x.copy()
            holes = np.isnan(x[:, numeric]).any(axis=1)
            block = filled[:, numeric]
            block[holes] = imputer.transform(x[holes][:, numeric])
            filled[:, numeric] = block
            accuracies[i].append(np.mean(model.predict(enc.encode(filled)) == y))
    for i, point in enumerate(curve.points):
        acc = np.array(accuracies[i])
        mean, _, lo, hi = rubin(acc, acc * (1 - acc) / len(y))
        assert point.accuracy.rate == pytest.approx(mean, abs=1e-12)
        assert (point.accuracy.ci_low, point.accuracy.ci_high) == pytest.approx((lo, hi), abs=1e-12)
    assert np.ptp(accuracies[1]) > 0  # the draws differ, so Rubin's interval is wider than one draw's


def test_group_scenario_leaves_every_other_group_untouched(mnar):
    report = evaluate(_on(mnar, ["income", "debt_ratio"]), mnar, rates=(0.2, 0.6), scenarios=("mcar", "group"),
                      groups={"sex": "male"}, attributes=["sex"])
    curve = next(c for c in report.curves if c.scenario == "group:sex")
    assert curve.description == "missing from sex=male rows only"
    female = [next(g for g in p.groups if g.accuracy.label == "female") for p in curve.points]
    male = [next(g for g in p.groups if g.accuracy.label == "male") for p in curve.points]
    assert len({g.accuracy.count for g in female}) == 1  # the female rows keep every value
    assert male[-1].accuracy.count != male[0].accuracy.count  # the male rows lose values
    # default group: the profile's group missing income more often (female in the planted data)
    default = evaluate(_on(mnar, ["income"]), mnar, rates=(0.2,), scenarios=("mcar", "group"), attributes=["sex"])
    assert next(c for c in default.curves if c.scenario == "group:sex").description.endswith("sex=female rows only")
    with pytest.raises(audit.AuditInputError, match="no group 'other'"):
        evaluate(_on(mnar, ["income"]), mnar, scenarios=("mcar", "group"), groups={"sex": "other"}, attributes=["sex"])


def test_important_scenario_aims_at_the_column_the_model_uses(mnar):
    """Labels are the model's own decisions from debt_ratio alone, so every flipped decision is an
    error: the important scenario blanks debt_ratio first and must cost far more than MCAR."""
    model = _on(mnar, ["debt_ratio"])
    mnar = dataclasses.replace(mnar, y=model.predict(mnar.X))
    report = evaluate(model, mnar, rates=(0.2, 0.4), scenarios=("mcar", "important"), attributes=["sex"])
    importance = {c.column: c.importance for c in report.importance}
    assert importance["debt_ratio"] > 0.01
    assert all(v == 0.0 for k, v in importance.items() if k != "debt_ratio")  # unused columns change nothing
    mcar, important = report.curves[0], next(c for c in report.curves if c.scenario == "important")
    assert "debt_ratio" in important.description
    m = report.metrics()
    for rate in (0.2, 0.4):
        # the top third of the columns takes the share first: debt_ratio loses far more values than at random
        assert abs(m[f"accuracy_drop@{rate:g}:important"]) > abs(m[f"accuracy_drop@{rate:g}"]) + 0.01
    assert important.points[0].accuracy.rate == mcar.points[0].accuracy.rate


def test_column_shares_keep_the_total_and_fill_the_top_first():
    order = np.array([3, 0, 1, 2, 4])
    for rate in (0.1, 0.3, 0.5, 0.9):
        shares = _column_shares(rate, order, 2)
        assert shares.mean() == pytest.approx(rate, abs=1e-12)
        assert shares.max() <= 1.0 and shares[3] == shares[0] == min(1.0, rate * 5 / 2)
        assert shares[3] >= shares[1]


def test_every_strategy_is_fitted_on_training_rows_only(mnar):
    raw = np.where(mnar.missing_mask, np.nan, mnar.raw)
    numeric = [j for j, c in enumerate(mnar.encoding.columns) if c.kind == "numeric"]
    train = raw[mnar.splits["train"]][:, numeric]
    for strategy in ("data", "mean", "knn", "iterative", "multiple"):
        for enc in strategy_encodings(mnar, strategy, draws=2):
            np.testing.assert_array_equal(enc.imputation.fit_rows, train)
            assert enc.imputation.imputer().n_features_in_ == len(numeric)


def test_strategies_and_multiple_in_the_pipeline_round_trip(mnar):
    config = audit.AuditConfig(name="m", analyzers={"missing": {"rates": [0.2], "strategies": ["mean"],
                                                                "attributes": ["sex"]}})
    report = audit.run(_on(mnar, ["income", "debt_ratio"]), mnar, config, progress=False)
    result = report.sections["missing"].result
    assert {(c.scenario, c.strategy) for c in result.curves} == {
        (s, t) for s in ("mcar", "important", "group:sex") for t in ("data", "mean")}
    assert type(result).from_dict(result.to_dict()) == result
    assert any(f.id == "missing.strategy" for f in result.findings)
    assert any(f.id == "missing.fairness:sex" for f in result.findings)


@pytest.mark.slow
def test_compare_strategies_equals_training_by_hand(mnar):
    trained = audit.train("mlp", mnar, epochs=2, widths=(16,), progress=False, seed=0)
    result = compare_strategies(trained, mnar, strategies=("mean", "median"), rate=0.2, attributes=["sex"],
                                train_options={"epochs": 2}, seed=0)
    assert len(result.cells) == 4
    best = max(result.cells, key=lambda c: c.worst_group.rate)
    assert (result.best_train, result.best_evaluate) == (best.train, best.evaluate)
    # the (median, mean) cell by hand: fill with median, retrain, blank the test rows, fill with mean
    enc_median, enc_mean = strategy_encodings(mnar, "median")[0], strategy_encodings(mnar, "mean")[0]
    raw = np.where(mnar.missing_mask, np.nan, mnar.raw)
    by_hand = audit.train("mlp", dataclasses.replace(mnar, X=enc_median.encode(raw), raw=enc_median.impute(raw),
                                                     encoding=enc_median),
                          epochs=2, widths=(16,), progress=False, seed=0)
    rows = mnar.splits["test"]
    numeric = [j for j, c in enumerate(mnar.encoding.columns) if c.kind == "numeric"]
    test = raw[rows].copy()
    part = test[:, numeric]
    part[np.random.default_rng((0, 0)).random(part.shape) < 0.2] = np.nan
    test[:, numeric] = part
    correct = by_hand.predict(enc_mean.encode(test)) == mnar.y[rows]
    cell = next(c for c in result.cells if (c.train, c.evaluate) == ("median", "mean"))
    assert cell.accuracy.rate == pytest.approx(correct.mean(), abs=1e-12)
    sex = mnar.sensitive["sex"][rows]
    assert cell.worst_group.rate == pytest.approx(min(correct[sex == g].mean() for g in np.unique(sex)), abs=1e-12)


def test_config_rejects_unknown_strategies_and_scenarios_at_load():
    with pytest.raises(audit.AuditInputError, match=r"analyzers\.missing\.strategies.*'multi'.*Did you mean 'multiple'"):
        audit.AuditConfig.from_dict({"analyzers": {"missing": {"strategies": ["median", "multi"]}}})
    with pytest.raises(audit.AuditInputError, match=r"analyzers\.missing\.draws.*>= 2"):
        audit.AuditConfig.from_dict({"analyzers": {"missing": {"draws": 1}}})
    with pytest.raises(audit.AuditInputError, match=r"analyzers\.missing_strategies\.strategies.*'multiple'"):
        audit.AuditConfig.from_dict({"analyzers": {"missing_strategies": {"strategies": ["mean", "multiple"]}}})


def test_reports_written_before_the_scenarios_still_load(mnar):
    report = evaluate(_on(mnar, ["income"]), mnar, rates=(0.2,), scenarios=("mcar",), attributes=["sex"])
    old = report.to_dict()
    old["schema"] = "audit.missing/1"
    old["curve"] = old.pop("curves")[0]["points"]
    for p in old["curve"]:
        p.pop("gaps")
    del old["importance"]
    back = type(report).from_dict(old)
    assert [p.accuracy.rate for p in back.curve] == [p.accuracy.rate for p in report.curve]
    assert back.metrics()["accuracy_drop@0.2"] == report.metrics()["accuracy_drop@0.2"]


def test_mask_auc_closed_form_equals_sklearn():
    from sklearn.metrics import roc_auc_score

    from audit.missing._evaluate import _mask_auc

    rng = np.random.default_rng(0)
    for p_mask in (0.01, 0.3, 0.9):
        positive = rng.random(5000) < 0.1
        mask = rng.random(5000) < np.where(positive, p_mask, 0.2)
        assert _mask_auc(mask, positive) == pytest.approx(roc_auc_score(positive, mask.astype(float)), abs=1e-12)
    assert np.isnan(_mask_auc(np.ones(10, bool), np.zeros(10, bool)))


def test_multiple_imputation_runs_on_complete_data():
    """No missing values at training (read-only raw rows): IterativeImputer draws still fit and fill."""
    complete = audit.datasets.load("credit", n=600)
    report = evaluate(_on(complete, ["income", "debt_ratio"]), complete, rates=(0.3,), scenarios=("mcar",),
                      strategies=("multiple",), draws=2, attributes=["sex"])
    assert [c.strategy for c in report.curves] == ["data", "multiple"]
    for c in report.curves:
        assert c.points[0].accuracy.rate == report.curves[0].points[0].accuracy.rate  # nothing missing at rate 0
        assert 0 <= c.points[1].accuracy.ci_low <= c.points[1].accuracy.rate <= c.points[1].accuracy.ci_high <= 1
