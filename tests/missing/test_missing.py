"""The missing-data analyzer: finds the planted MNAR credit missingness (and nothing with MCAR),
Wilson intervals against scipy, robustness curve equal to the same injection done by hand with
scikit-learn, the pipeline registry and the JSON codec."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest
from scipy.stats import binomtest
from sklearn.impute import SimpleImputer
from sklearn.metrics import roc_auc_score

import audit
from audit.missing import MissingReport, evaluate, wilson
from audit.models import Model


def _linear(data, seed=0):
    """A fixed linear model on the data's inputs (no training: the analyzer only reads predictions)."""
    w = np.random.default_rng(seed).normal(size=(data.X.shape[1], data.n_classes)).astype(np.float32)
    w[:, 1] += 0.5 * np.where(np.array([n.startswith("income") for n in data.feature_names]), -3.0, 0.3)
    return Model.from_function(lambda p, x: x @ p["w"] - jnp.array([0.0, 2.0]), {"w": jnp.asarray(w)},
                               input_shape=data.X.shape[1:], class_names=data.class_names)


@pytest.fixture(scope="module")
def mnar():
    return audit.datasets.load("credit", n=6000, missing="mnar")


@pytest.fixture(scope="module")
def mcar():
    return audit.datasets.load("credit", n=6000, missing="mcar")


def test_wilson_matches_scipy():
    for k, n in [(0, 10), (3, 10), (10, 10), (41, 250)]:
        ci = binomtest(k, n).proportion_ci(confidence_level=0.9, method="wilson")
        lo, hi = wilson(k, n, confidence=0.9)
        assert (float(lo), float(hi)) == pytest.approx((ci.low, ci.high), abs=1e-12)


def test_planted_mnar_is_found_for_the_right_group_and_label(mnar):
    report = evaluate(_linear(mnar), mnar, rates=(0.2,))
    ids = {f.id: f for f in report.findings}
    unequal = ids["missing.unequal:sex:income"]
    assert unequal.status == "warn" and "sex=female" in unequal.message.split("vs")[0]
    sex = next(a for a in report.attributes if a.attribute == "sex")
    assert sex.high_group == "female" and sex.low_group == "male" and sex.unequal
    female = next(g for g in sex.groups if g.label == "female")
    rows = mnar.sensitive["sex"] == "female"
    assert female.rate == pytest.approx(mnar.missing_mask[rows, 0].mean(), abs=1e-12)
    informative = ids["missing.informative:income"]
    assert informative.status == "warn" and "'yes'" in informative.message
    income = report.columns[0]
    assert income.column == "income" and income.informative
    assert income.mask_auc == pytest.approx(roc_auc_score(mnar.y == 1, mnar.missing_mask[:, 0]), abs=1e-12)
    assert income.mask_auc > 0.65
    assert report.metrics()["rate_gap:sex"] == pytest.approx(sex.rate_gap)


def test_mcar_gives_no_such_finding(mcar):
    report = evaluate(_linear(mcar), mcar, rates=(0.2,))
    assert not any(a.unequal for a in report.attributes)
    assert not any(c.informative for c in report.columns)
    assert not any(f.status != "pass" for f in report.findings if f.id.startswith(("missing.unequal", "missing.informative")))
    assert report.findings[0].id.startswith("missing.unequal") and report.columns[0].rate > 0.1


def test_robustness_curve_equals_injection_by_hand_with_sklearn(mnar):
    """MCAR injection redone by hand: one uniform per numeric value from default_rng((seed, chunk)),
    blanked below the rate, filled by scikit-learn's SimpleImputer fitted on the training rows."""
    model = _linear(mnar)
    report = evaluate(model, mnar, rates=(0.1, 0.4), seed=7, attributes=["sex"], scenarios=("mcar",))
    enc, rows, train = mnar.encoding, mnar.splits["test"], mnar.splits["train"]
    numeric = [j for j, c in enumerate(enc.columns) if c.kind == "numeric"]
    raw_nan = np.where(mnar.missing_mask, np.nan, mnar.raw)
    imputer = SimpleImputer(strategy="median").fit(raw_nan[train][:, numeric])
    u = np.random.default_rng((7, 0)).random((len(rows), len(numeric)))
    y, female = mnar.y[rows], mnar.sensitive["sex"][rows] == "female"
    assert report.curve[0].accuracy.rate == pytest.approx(np.mean(model.predict(mnar.X[rows]) == y))
    for point in report.curve[1:]:
        raw = raw_nan[rows].copy()
        part = raw[:, numeric]
        part[u < point.rate] = np.nan
        filled = raw.copy()
        filled[:, numeric] = imputer.transform(part)
        pred = model.predict(enc.encode(filled))  # complete now: encode only scales
        correct = pred == y
        assert point.accuracy.rate == pytest.approx(correct.mean(), abs=1e-12)
        minority = y == 1
        assert point.minority_recall.rate == pytest.approx(correct[minority].mean(), abs=1e-12)
        group = next(g for g in point.groups if g.accuracy.label == "female")
        assert group.accuracy.rate == pytest.approx(correct[female].mean(), abs=1e-12)
        # the fairness gaps are audit.fairness's, which equal fairlearn's (tests/fairness)
        rate = lambda m: (pred[m] == 1).mean()  # noqa: E731
        gap = next(g for g in point.gaps if g.attribute == "sex")
        assert gap.demographic_parity == pytest.approx(abs(rate(female) - rate(~female)), abs=1e-12)
        tpr = lambda m: (pred[m & minority] == 1).mean()  # noqa: E731
        fpr = lambda m: (pred[m & ~minority] == 1).mean()  # noqa: E731
        assert gap.equalized_odds == pytest.approx(max(abs(tpr(female) - tpr(~female)),
                                                       abs(fpr(female) - fpr(~female))), abs=1e-12)


def test_pipeline_registry_json_and_bad_input(mnar):
    config = audit.AuditConfig(name="m", seed=1, analyzers={"missing": {"rates": [0.2]}},
                               policy=[{"metric": "missing.rate_gap:sex", "max": 0.1}])
    report = audit.run(_linear(mnar), mnar, config, progress=False)
    result = report.sections["missing"].result
    assert isinstance(result, MissingReport)
    assert MissingReport.from_dict(result.to_dict()) == result
    assert not report.passed  # the planted gap (~0.28) breaks the rule
    with pytest.raises(audit.AuditInputError, match="increasing shares"):
        evaluate(_linear(mnar), mnar, rates=(0.4, 0.2))


def test_html_report_draws_the_missing_section(mnar, tmp_path):
    from audit.render.figures.missing import report_figures

    report = audit.run(_linear(mnar), mnar, audit.AuditConfig(name="m", analyzers={"missing": {
        "rates": [0.2, 0.4], "attributes": ["sex"]}}), progress=False)
    figures = report_figures(report.sections["missing"].result)
    captions = [c for c, _ in figures]
    assert len(figures) == 4 and captions[2].startswith("Injection scenarios") and captions[3].startswith("Fairness")
    assert len(figures[2][1].axes[0].lines) == 3  # mcar, important, the sex group
    assert figures[1][1].axes[0].lines[0].get_ydata().shape == (3,)  # rate 0 and the two injected rates
    report.to_html(tmp_path / "r.html")
    html = (tmp_path / "r.html").read_text()
    assert "Missing rate per sensitive group" in html and "data:image/png;base64" in html


def test_config_data_section_takes_missing(tmp_path):
    from audit.data import _credit
    from audit.pipeline._run import load_data

    path = tmp_path / "credit.csv"
    _credit.credit_frame(600, missing="mcar").to_csv(path, index=False)
    config = audit.AuditConfig.from_dict({"data": {"csv": str(path), "target": "default", "sensitive": ["sex", "age"],
                                                   "categorical": ["employment", "housing", "purpose", "sector"],
                                                   "missing": {"strategy": "knn", "indicators": True}}})
    data = load_data(config)
    assert data.encoding.imputation.strategy == "knn" and "income__missing" in data.feature_names
    with pytest.raises(audit.AuditInputError, match=r"data\.missing.*strategy is 'zero'"):
        audit.AuditConfig.from_dict({"data": {"csv": str(path), "target": "default", "missing": {"strategy": "zero"}}})
    bare = audit.AuditConfig.from_dict({"data": {"csv": str(path), "target": "default", "sensitive": ["sex", "age"],
                                                 "categorical": ["employment", "housing", "purpose", "sector"]}})
    with pytest.raises(audit.AuditInputError, match=r"\['income'\] have missing values.*missing="):
        load_data(bare)


def test_complete_data_and_every_metric_is_declared(mnar):
    from audit.results import metric_spec

    complete = audit.datasets.load("credit", n=2000)
    report = evaluate(_linear(complete), complete, rates=(0.2,), scenarios=("mcar",), attributes=())
    assert report.columns == () and report.findings[0].id == "missing.none"
    assert "mean" in report.imputer and set(report.metrics()) == {"accuracy@0.2", "accuracy_drop@0.2",
                                                                 "minority_recall@0.2"}
    full = evaluate(_linear(mnar), mnar, rates=(0.2,), strategies=("data", "mean"), draws=2)
    assert {"accuracy_drop@0.2:important", "accuracy_drop@0.2:group:sex", "accuracy_drop@0.2:mcar/mean",
            "demographic_parity_difference@0:sex", "equalized_odds_difference@0.2:sex:group:sex",
            "importance:income"} <= set(full.metrics())
    for r in (report, full):
        assert all(metric_spec(MissingReport.METRICS, name) is not None for name in r.metrics())


def test_shap_of_a_raw_column_includes_its_mask_input():
    """Linear logit on (a, a__missing, ...): the exact interventional SHAP value of raw column a is
    w_a * (x_a - mean_a) + w_m * (m - mean_m), value and mask moving as one player."""
    rng = np.random.default_rng(0)
    n = 300
    frame = audit.datasets.credit.credit_frame(n, missing="mnar")[["income", "debt_ratio", "default"]]
    data = audit.data.from_pandas(frame, target="default", missing={"strategy": "indicator"})
    assert data.feature_names == ("income", "income__missing", "debt_ratio")
    w = jnp.asarray(rng.normal(size=(3, 2)), jnp.float32)
    model = Model.from_function(lambda p, x: x @ p, w, input_shape=(3,), class_names=data.class_names)
    X, bg = data.X[:6], data.X[100:140]
    ex = audit.explain.shap_values(model, X, bg, method="exact", output="logit", target=1, data=data)
    assert ex.values.shape == (6, 2)  # one player per raw column
    wd = np.asarray(w[:, 1])  # output="logit", target=1: the class-1 logit x @ w[:, 1]
    expected_income = (X[:, 0] - bg[:, 0].mean()) * wd[0] + (X[:, 1] - bg[:, 1].mean()) * wd[1]
    np.testing.assert_allclose(ex.values[:, 0], expected_income, atol=1e-4)
