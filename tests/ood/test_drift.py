"""Data drift: the tests against scipy/statsmodels definitions, a planted shift found, none on a fresh sample."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import stats

from audit.data import _credit
from audit.errors import AuditInputError
from audit.ood import drift
from audit.ood._drift import holm, mmd_test, psi
from audit.results import to_jsonable


def test_holm_matches_the_step_down_definition():
    p = np.array([0.01, 0.04, 0.03, 0.005, 0.5])
    order = np.argsort(p)
    expected = np.empty(5)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (5 - rank) * p[i]))
        expected[i] = running
    np.testing.assert_allclose(holm(p), expected)


def test_psi_zero_for_equal_samples_and_large_for_a_shift():
    rng = np.random.default_rng(0)
    a = rng.normal(size=5000)
    assert psi(a, a) == pytest.approx(0.0, abs=1e-12)
    assert psi(a, a + 1.0) > 0.25 > psi(a, rng.normal(size=5000))
    assert psi(np.array([0, 0, 1, 1]), np.array([0, 0, 0, 1]), categorical=True) == pytest.approx(
        (0.75 - 0.5) * np.log(0.75 / 0.5) + (0.25 - 0.5) * np.log(0.25 / 0.5))


def test_mmd_permutation_test_separates_shifted_samples():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(150, 3)), rng.normal(size=(150, 3))
    _, p_same = mmd_test(a, b, n_permutations=200, rng=rng)
    value, p_shift = mmd_test(a, b + 0.8, n_permutations=200, rng=rng)
    assert p_shift < 0.01 < p_same and value > 0


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    """Fresh credit applicants with income cut by 40% (a recession), and a fresh unshifted sample."""
    folder = tmp_path_factory.mktemp("drift")
    fresh = _credit.credit_frame(3000, seed=11)
    shifted = fresh.copy()
    shifted["income"] = shifted["income"] * 0.6
    fresh.to_csv(folder / "fresh.csv", index=False)
    shifted.to_csv(folder / "shifted.csv", index=False)
    return folder


def test_planted_income_shift_is_found_and_named(credit_small, credit_model, planted):
    r = drift(credit_model, credit_small, current={"csv": str(planted / "shifted.csv"), "target": "default"},
              n_permutations=100, max_rows=400)
    assert r.drifted == ("income",)
    ks = stats.ks_2samp(credit_small.train.raw[:, credit_small.encoding.raw_names.index("income")],
                        np.asarray(__import__("pandas").read_csv(planted / "shifted.csv")["income"]))
    income = next(c for c in r.columns if c.column == "income")
    assert income.statistic == pytest.approx(ks.statistic) and income.p_value == pytest.approx(ks.pvalue)
    assert r.prediction_p_value < 0.05 and r.mmd_p_value < 0.05
    assert any(f.id == "columns" and "income" in f.message and f.status == "warn" for f in r.findings)
    assert r.accuracy_current is not None
    assert DriftCopy(r)


def DriftCopy(r):
    copy = type(r).from_dict(json.loads(json.dumps(to_jsonable(r.to_dict()))))
    assert copy == r
    return True


def test_a_fresh_sample_of_the_same_population_does_not_drift(credit_small, credit_model, planted):
    r = drift(credit_model, credit_small, current={"csv": str(planted / "fresh.csv"), "target": "default"},
              n_permutations=100, max_rows=400)
    assert r.drifted == ()
    assert r.mmd_p_value > 0.01
    for name in r.metrics():
        assert any(spec.matches(name) for spec in type(r).METRICS), name


def test_current_data_errors_are_named(credit_small, credit_model, tmp_path):
    _credit.credit_frame(50, seed=2).drop(columns=["income"]).to_csv(tmp_path / "bad.csv", index=False)
    with pytest.raises(AuditInputError, match="income"):
        drift(credit_model, credit_small, current={"csv": str(tmp_path / "bad.csv")})
    with pytest.raises(AuditInputError, match="does not exist"):
        drift(credit_model, credit_small, current={"csv": str(tmp_path / "none.csv")})
    with pytest.raises(AuditInputError, match="alpha"):
        drift(credit_model, credit_small, alpha=2.0)


def test_drift_runs_from_a_config_into_the_html_report(tmp_path, credit_small, credit_model, planted):
    from audit import run
    from audit.pipeline import AuditConfig

    config = AuditConfig(name="drift", analyzers={"drift": {"current": {"csv": str(planted / "shifted.csv")},
                                                            "n_permutations": 50, "max_rows": 200}},
                         policy=[{"metric": "drift.drifted_columns", "max": 0}])
    report = run(credit_model, credit_small, config, progress=False)
    assert not report.passed
    html = open(report.to_html(str(tmp_path / "r.html"))).read()
    assert "population stability index per raw column" in html
