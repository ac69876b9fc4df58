"""The fairness audit on credit: planted bias found, proxy found, mitigation works, results round-trip."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from audit.data import _credit
from audit.errors import AuditInputError
from audit.fairness import FairnessMitigation, FairnessReport, evaluate, mitigate, reweighing_weights
from audit.fairness._proxy import permutation_importance
from audit.models import Model
from audit.results import to_jsonable


def test_planted_bias_is_detected_and_smaller_without_the_biased_signal(credit_sens, sens_model,
                                                                        credit_blind, blind_model):
    seen = evaluate(sens_model, credit_sens, attributes=["sex"], proxies=False)
    dp = seen.attribute("sex").disparity("demographic_parity_difference")
    assert dp.high_group == "female"  # documented: women are labelled defaulters more often
    assert dp.significant and dp.ci_low > 0
    assert any(f.id == "fairness.demographic_parity_difference:sex" or f.id == "fairness.four_fifths:sex"
               for f in seen.findings if f.status == "fail")
    blind = evaluate(blind_model, credit_blind, attributes=["sex"], proxies=False)
    assert blind.metrics()["demographic_parity_difference:sex"] < 0.5 * dp.value


def test_report_covers_attributes_intersections_and_round_trips(credit_model, credit_small):
    report = evaluate(credit_model, credit_small, n_bootstrap=100)
    assert [a.name for a in report.attributes] == ["age", "sex", "age&sex"]
    assert report.classes == ("yes",) and report.favorable_class == "yes"
    age = report.attribute("age")
    assert len(age.groups) == 4 and "quantiles" in age.rule
    assert sum(age.sizes) == report.n_rows == len(credit_small.splits["test"])
    assert len(report.attribute("age&sex").groups) == 8
    m = report.metrics()
    for name in ("demographic_parity_difference:sex", "equalized_odds_difference:sex", "disparate_impact:sex",
                 "equal_opportunity_difference:sex", "predictive_parity_difference:sex", "calibration_gap:sex",
                 "demographic_parity_difference_ci_low:sex", "selection_rate:sex=female",
                 "demographic_parity_difference:age&sex", "proxy_probe_auc:sex", "min_group_size:sex"):
        assert name in m and np.isfinite(m[name]), name
    assert all(isinstance(v, float) for v in m.values())
    again = FairnessReport.from_dict(json.loads(json.dumps(to_jsonable(report.to_dict()))))
    assert again == report and again.metrics() == m
    assert evaluate(credit_model, credit_small, n_bootstrap=100).attributes == \
        report.attributes  # same seed, same intervals


def test_sector_is_the_proxy_for_sex(credit_model, credit_small):
    report = evaluate(credit_model, credit_small, attributes=["sex", "age"], n_bootstrap=0)
    sex = report.proxy("sex")
    assert sex.ranked()[0][0] == "sector" and "sex" not in sex.columns
    assert sex.probe_auc > 0.65 and sex.attribution_share is None  # sex is not an input here
    assert report.proxy("age").ranked()[0][0] == "credit_history_years"  # history <= age - 18
    warn = next(f for f in report.findings if f.id == "fairness.proxy:sex")
    assert warn.status == "warn" and "sector" in warn.message


def test_attribution_share_when_the_attribute_is_an_input(credit_sens, sens_model):
    proxy = evaluate(sens_model, credit_sens, attributes=["sex"], n_bootstrap=0).proxy("sex")
    assert proxy.attribution_method.startswith("permutation")
    test = credit_sens.select(credit_sens.splits["test"])
    imp = dict(zip(credit_sens.raw_feature_names, permutation_importance(sens_model, test, seed=0)))
    assert proxy.attribution_share == pytest.approx(imp["sex"] / sum(imp.values()), rel=1e-6)
    # the planted label bias makes sex matter more than any documented irrelevant column
    assert imp["sex"] > 1.5 * max(imp[c] for c in _credit.IRRELEVANT)
    assert 0.02 < proxy.attribution_share < 0.5


def test_attributes_share_one_attribution_and_get_the_same_shares(credit_sens, sens_model):
    """The model's attribution per raw column is computed once for all attributes (it does not
    depend on the attribute): each share equals the one an audit of that attribute alone gives."""
    both = evaluate(sens_model, credit_sens, attributes=["sex", "age"], intersections=False, n_bootstrap=0)
    for attr in ("sex", "age"):
        alone = evaluate(sens_model, credit_sens, attributes=[attr], n_bootstrap=0).proxy(attr)
        assert alone.attribution_share is not None
        assert both.proxy(attr).attribution_share == alone.attribution_share


def test_threshold_mitigation_reduces_equalized_odds_gap(credit_sens, sens_model):
    result = mitigate(sens_model, credit_sens, attribute="sex", methods=("thresholds",), n_bootstrap=50)
    before = result.arm("baseline").value("equalized_odds_difference")
    after = result.arm("thresholds").value("equalized_odds_difference")
    assert after < 0.6 * before
    m = result.metrics()
    assert m["thresholds:accuracy_cost"] == pytest.approx(m["baseline:accuracy"] - m["thresholds:accuracy"])
    again = FairnessMitigation.from_dict(json.loads(json.dumps(to_jsonable(result.to_dict()))))
    assert again == result


def test_reweighing_retrains_the_same_architecture_and_narrows_the_gap(credit_sens, sens_model):
    result = mitigate(sens_model, credit_sens, attribute="sex", methods=("reweighing", "group_balanced"),
                      train_options={"patience": 4}, n_bootstrap=0)
    assert [a.name for a in result.arms] == ["baseline", "reweighing", "group_balanced"]
    settings = result.arm("reweighing").settings["train"]
    assert settings["patience"] == 4 and settings["batch_size"] == 128  # override; the model's history
    base, rew = result.arm("baseline"), result.arm("reweighing")
    gap = lambda arm: arm.value("demographic_parity_difference")
    assert gap(rew) < 0.75 * gap(base)  # Kamiran & Calders: label and group made independent in training
    assert abs(rew.accuracy - base.accuracy) < 0.01


def test_reweighing_weights_make_group_and_label_independent():
    rng = np.random.default_rng(0)
    g = rng.choice(["a", "b"], 1000, p=[0.7, 0.3])
    y = (rng.random(1000) < np.where(g == "a", 0.4, 0.1)).astype(int)
    w = reweighing_weights(y, g)
    assert w.mean() == pytest.approx(1.0)
    for gg in ("a", "b"):
        for yy in (0, 1):
            cell = w[(g == gg) & (y == yy)].sum()
            assert cell == pytest.approx((g == gg).sum() * (y == yy).sum() / 1000, rel=1e-12)


def test_bad_input(credit_model, credit_small):
    with pytest.raises(AuditInputError, match="no sensitive attribute"):
        evaluate(credit_model, credit_small, attributes=["religion"])
    renamed = credit_model.replace(class_names=("good", "bad"))
    with pytest.raises(AuditInputError, match="classes"):
        evaluate(renamed, credit_small)
    nan_model = Model.from_function(lambda p, x: x[:, :2] * np.nan, {}, input_shape=credit_small.input_shape,
                                    class_names=credit_small.class_names)
    with pytest.raises(AuditInputError, match="NaN"):
        evaluate(nan_model, credit_small, attributes=["sex"])
    one_group = dataclasses.replace(credit_small, sensitive={"sex": np.full(len(credit_small), "female")})
    with pytest.raises(AuditInputError, match="single group"):
        evaluate(credit_model, one_group, attributes=["sex"])
    with pytest.raises(AuditInputError, match="unknown fairness mitigation"):
        mitigate(credit_model, credit_small, attribute="sex", methods=("magic",))
    with pytest.raises(AuditInputError, match="constraint='magic' is not one that fairlearn"):
        mitigate(credit_model, credit_small, attribute="sex", methods=("thresholds",), constraint="magic")


def test_empty_intersection_and_small_groups_are_warnings(credit_model, credit_small):
    rows = credit_small.splits["test"]
    band = np.where(credit_small.sensitive["sex"] == "female", "band_f", "band_m").astype(object)
    band[rows[:5]] = "rare"  # five test rows in a tiny band, all of one sex at most
    sens = {**credit_small.sensitive, "band": band.astype(str)}
    data = dataclasses.replace(credit_small, sensitive=sens)
    report = evaluate(credit_model, data, attributes=["band", ("sex", "band")], n_bootstrap=20, proxies=False)
    ids = {f.id: f for f in report.findings}
    assert ids["fairness.empty_intersection:sex&band"].status == "warn"
    assert "female&band_m" in report.attribute("sex&band").empty_groups
    assert ids["fairness.small_groups:band"].status == "warn" and "rare" in ids["fairness.small_groups:band"].message


@pytest.mark.slow
def test_shap_attribution_share_agrees_with_permutation(credit_sens, sens_model):
    shap = evaluate(sens_model, credit_sens, attributes=["sex"], n_bootstrap=0, attribution="shap").proxy("sex")
    perm = evaluate(sens_model, credit_sens, attributes=["sex"], n_bootstrap=0).proxy("sex")
    assert shap.attribution_method.startswith("shap")
    assert 0.02 < shap.attribution_share < 0.5 and 0.02 < perm.attribution_share < 0.5
