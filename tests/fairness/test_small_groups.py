"""Issue #12: groups too small to judge never realise a headline; exact per-group intervals;
the equalized-odds finding names the rate, the groups and both gaps."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.stats
from fairlearn import metrics as flm

from audit.fairness import assess
from audit.fairness import _findings, _stats
from audit.fairness._report import FairnessReport
from audit.results import Provenance


def _three_groups(seed=0):
    """Groups of 3000, 3000 and 1 row; the one-row group has no positives and is predicted 1."""
    rng = np.random.default_rng(seed)
    g = np.array(["a"] * 3000 + ["b"] * 3000 + ["lonely"])
    y = np.r_[rng.random(3000) < 0.4, rng.random(3000) < 0.4, [False]].astype(np.int64)
    p = np.where(g == "a", 0.42, 0.38)
    pred = np.r_[(rng.random(6000) < p[:6000]), [True]].astype(np.int64)
    return y, pred, g


def _report(result) -> FairnessReport:
    return FairnessReport(attributes=(result,), proxies=(), class_names=("0", "1"), classes=("1",),
                          favorable_class="1", split="test", n_rows=len(result.table().groups),
                          findings=_findings.fairness_findings([result], [], max_difference=0.1),
                          provenance=Provenance(method="test", settings={}, seed=0, seconds=0.0))


def test_a_one_row_group_never_realises_the_headline():
    y, pred, g = _three_groups()
    r = assess(y, pred, g, name="g", n_bootstrap=200, seed=0)
    big = g != "lonely"
    for name, ref in (("demographic_parity_difference", flm.demographic_parity_difference),
                      ("equalized_odds_difference", flm.equalized_odds_difference)):
        d = r.disparity(name)
        assert d.value == pytest.approx(ref(y[big], pred[big], sensitive_features=g[big]), abs=1e-12)
        assert d.all_groups_value == pytest.approx(ref(y, pred, sensitive_features=g), abs=1e-12)
        assert d.all_groups_value > 0.5 > d.value  # the one row alone makes fairlearn's number large
        assert {d.high_group, d.low_group} == {"a", "b"} and "lonely" in d.small_groups
    di = r.disparity("disparate_impact")
    assert di.value == pytest.approx(flm.demographic_parity_ratio(y[big], pred[big], sensitive_features=g[big]))
    report = _report(r)
    m = report.metrics()
    assert m["demographic_parity_difference:g"] == pytest.approx(r.disparity("demographic_parity_difference").value)
    assert m["demographic_parity_difference:g:all_groups"] == pytest.approx(
        flm.demographic_parity_difference(y, pred, sensitive_features=g), abs=1e-12)
    headline = [f for f in report.findings if f.id.startswith("fairness.demographic_parity")
                or f.id.startswith("fairness.disparities")]
    assert headline and all("'lonely'" not in f.message.split("Too small")[0] for f in headline)
    assert all("Too small to judge" in f.message and "'lonely'" in f.message for f in headline)
    small = next(f for f in report.findings if f.id == "fairness.small_groups:g")
    assert "'lonely'" in small.message and "all_groups" in small.message


def test_per_group_rates_carry_exact_intervals():
    y, pred, g = _three_groups()
    t = assess(y, pred, g, n_bootstrap=0, confidence=0.9).table()
    for k, group in enumerate(t.groups):
        rows = g == group
        for metric, (num, den) in {"selection_rate": (pred[rows].sum(), rows.sum()),
                                   "fpr": (pred[rows & (y == 0)].sum(), (rows & (y == 0)).sum())}.items():
            ref = scipy.stats.binomtest(int(num), int(den)).proportion_ci(confidence_level=0.9, method="exact")
            assert t.ci_low[metric][k] == pytest.approx(ref.low, abs=1e-9)
            assert t.ci_high[metric][k] == pytest.approx(ref.high, abs=1e-9)
    lonely = t.groups.index("lonely")
    assert np.isnan(t.ci_low["tpr"][lonely])  # no positives: undefined, not a tight interval
    assert t.ci_high["selection_rate"][lonely] - t.ci_low["selection_rate"][lonely] > 0.8
    assert t.small_groups("selection_rate") == ("lonely",) and t.small_groups("fpr") == ("lonely",)


def test_exact_interval_edges():
    low, high = _stats.exact_interval(np.array([0, 5, 3]), np.array([5, 5, 0]), confidence=0.95)
    assert low[0] == 0 and high[1] == 1 and np.isnan(low[2]) and np.isnan(high[2])
    assert high[0] == pytest.approx(1 - 0.025 ** (1 / 5), abs=1e-12)  # closed form when k = 0


def test_equalized_odds_finding_names_the_rate_groups_and_both_gaps():
    """A recidivism-like set: the FPR gap between the two large groups is the story; a 68-row
    group with 6 positives has a large TPR gap that must not realise the headline."""
    rng = np.random.default_rng(4)
    sizes = {"black": 3000, "white": 2000, "other": 68}
    g = np.concatenate([[k] * n for k, n in sizes.items()])
    y = np.r_[rng.random(5000) < 0.45, np.arange(68) < 6].astype(np.int64)
    fpr = np.select([g == "black", g == "white"], [0.45, 0.22], 0.3)
    tpr = np.select([g == "black", g == "white"], [0.70, 0.62], 0.1)
    pred = (rng.random(len(y)) < np.where(y == 1, tpr, fpr)).astype(np.int64)
    r = assess(y, pred, g, name="race", n_bootstrap=200, seed=1)
    d = r.disparity("equalized_odds_difference")
    assert d.metric == "fpr" and (d.high_group, d.low_group) == ("black", "white")
    assert "other" in d.small_groups
    assert d.all_groups_value == pytest.approx(flm.equalized_odds_difference(y, pred, sensitive_features=g))
    t = r.table()
    gaps = {x.metric: x for x in d.gaps}
    assert gaps["tpr"].value == pytest.approx(t.metric("tpr")["black"] - t.metric("tpr")["white"], abs=1e-12)
    assert gaps["fpr"].value == pytest.approx(d.value)
    f = next(f for f in _findings.fairness_findings([r], [], max_difference=0.1)
             if f.id == "fairness.equalized_odds_difference:race")
    assert "false-positive rate (FPR)" in f.message and "true-positive rate (TPR)" in f.message
    assert f"{d.value:.3f}" in f.message and f"{gaps['tpr'].value:.3f}" in f.message
    assert f.message.index("'black'") < f.message.index("Too small")
    assert "'other'" in f.message.split("Too small")[1]


def test_fewer_than_two_judged_groups_leave_no_headline():
    y, pred, g = _three_groups()
    keep = (g == "a") | (g == "lonely")
    r = assess(y[keep], pred[keep], g[keep], name="g", n_bootstrap=0)
    d = r.disparity("demographic_parity_difference")
    assert np.isnan(d.value) and np.isfinite(d.all_groups_value)
    m = _report(r).metrics()
    assert "demographic_parity_difference:g" not in m and "demographic_parity_difference:g:all_groups" in m


def test_new_fields_round_trip_through_json():
    import json

    from audit.results import to_jsonable

    y, pred, g = _three_groups()
    report = _report(assess(y, pred, g, name="g", n_bootstrap=20))
    back = FairnessReport.from_dict(json.loads(json.dumps(to_jsonable(report.to_dict()))))
    a, b = report.attribute("g"), back.attribute("g")
    assert a.disparities == b.disparities  # values, all-groups values, gaps, small groups
    for name in ("ci_low", "ci_high", "too_small"):
        for m, v in getattr(a.table(), name).items():
            np.testing.assert_array_equal(getattr(b.table(), name)[m], v)
            assert getattr(b.table(), name)[m].dtype == v.dtype
    assert back.metrics() == report.metrics()
