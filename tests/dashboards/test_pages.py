"""The dashboard's certification, explanation-stability, adversarial-training and error-analysis
pages on one small credit report (AppTest): each renders without exceptions, shows the report's
numbers, and the live parts (per-group certificates, the cohort builder) equal a direct
computation on the same rows. The fairness page opens on the attribute that failed the policy."""

from __future__ import annotations

import os

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from audit import run
from audit.pipeline import AuditConfig, AuditReport

APP = os.path.join(os.path.dirname(__file__), "..", "..", "dashboards", "app.py")
PAGES = ("overview", "certification", "stability", "adversarial_training", "slices", "fairness", "imbalance",
         "robustness", "explanations", "ood", "missing")


def _report(folder, model, data, name: str, analyzers: dict) -> str:
    model.save(str(folder / "model"))
    config = AuditConfig(name=name, seed=0, data={"dataset": "credit", "options": {"n": 3000}},
                         model={"path": str(folder / "model")}, analyzers=analyzers,
                         policy=({"metric": "fairness.demographic_parity_difference:sex", "max": 0.0},))
    return run(model, data, config, progress=False).to_json(os.path.join(folder, "report.json"))


LIGHT = {"slices": {"max_order": 2, "min_size": 20}, "fairness": {"n_bootstrap": 20, "proxies": False},
         "imbalance": {}}


@pytest.fixture(scope="module")
def light_report(tmp_path_factory, credit_small, credit_model):
    """credit (3,000 rows) with slices, fairness and imbalance; the policy fails on sex's
    demographic parity."""
    return _report(tmp_path_factory.mktemp("dash-light"), credit_model, credit_small, "credit-light", LIGHT)


@pytest.fixture(scope="module")
def pages_report(tmp_path_factory, credit_small, credit_model):
    """The light report plus certify, explanation_stability and adversarial_training (tiny settings)."""
    return _report(tmp_path_factory.mktemp("dash-pages"), credit_model, credit_small, "credit-pages", {
        "certify": {"n": 60, "eps": [0.0, 0.05, 0.1], "steps": 3, "attacks": ["fgsm", "pgd"], "n0": 10,
                    "n_samples": 50, "smoothing_attack_steps": 2, "smoothing_attack_samples": 2},
        "explanation_stability": {"methods": ["gradient"], "n": 16, "eps": [0.05, 0.1], "pgd_steps": 3,
                                  "attack_steps": 3, "attack_samples": 2, "batch_size": 16},
        "adversarial_training": {"method": "fgsm", "eps": 0.1, "epochs": 1, "n": 60, "eval_steps": 2,
                                 "bootstrap": 20, "attacks": ["fgsm"]},
        **LIGHT})


def open_page(path: str, page: str) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=180)
    at.session_state["report_path"] = path
    at.run()
    at.switch_page(f"views/{page}.py").run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def frame(at: AppTest, *columns: str):
    """The first table on the page with all of `columns`."""
    for d in at.dataframe:
        if set(columns) <= set(d.value.columns):
            return d.value
    raise AssertionError(f"no table with columns {columns}")


def markdown(at: AppTest) -> str:
    return "\n".join(m.value for m in at.markdown)


@pytest.mark.slow
@pytest.mark.parametrize("page", PAGES)
def test_every_page_renders(pages_report, page):
    open_page(pages_report, page)


@pytest.mark.slow
def test_certification_shows_the_report_table_and_per_group_certificates(pages_report, credit_small):
    from audit.data import attribute_groups
    from audit.robustness._evaluate import sample_rows

    result = AuditReport.load(pages_report).sections["certify"].result
    at = open_page(pages_report, "certification")
    shown = frame(at, "eps", "clean")
    for row, expected in zip(shown.to_dict("records"), result.table()):
        assert row == pytest.approx(expected)
    for f in result.findings:  # findings show their text
        assert f.message in markdown(at)
    # smoothing at the audit's grid eps equals the report's certified accuracy
    for j, e in enumerate(result.eps):
        at.slider(key="cert_eps").set_value(float(e)).run()
        assert metrics(at)[f"Smoothing certified accuracy at eps {float(e):.4g}"] == f"{result.accuracy['smoothing'][j]:.3f}"
    # per group: the certified rows re-drawn, grouped and counted directly
    at.selectbox(key="cert_attr").set_value("sex").run()
    at.select_slider(key="cert_grid_eps").set_value(float(result.eps[1])).run()
    groups = frame(at, "group", "method", "certified accuracy")
    test = credit_small.splits["test"]
    rows = test[sample_rows(len(test), result.n, seed=0)]
    assert np.array_equal(credit_small.y[rows], result.labels)
    grouping = attribute_groups(credit_small, "sex", rows)
    ibp = result.ibp_margin[1] > 0
    for g, label in enumerate(grouping.labels):
        row = groups[(groups["group"] == label) & (groups["method"] == "ibp")].iloc[0]
        members = grouping.codes == g
        assert row["rows"] == members.sum()
        if members.sum() >= 30:
            assert row["certified accuracy"] == pytest.approx(ibp[members].mean())
        else:
            assert row["too small to judge"] and np.isnan(row["certified accuracy"])
    # the groups together give the report's IBP certified accuracy
    assert ibp.mean() == pytest.approx(result.accuracy["ibp"][1])


@pytest.mark.slow
def test_stability_and_adversarial_training_pages_show_the_report_numbers(pages_report):
    report = AuditReport.load(pages_report)
    stab = report.sections["explanation_stability"].result
    at = open_page(pages_report, "stability")
    table = frame(at, "top-k overlap (explanation attack)")
    assert table["top-k overlap (explanation attack)"].tolist() == pytest.approx(
        [stab.attack_top_k[m][j] for j in range(len(stab.eps)) for m in stab.methods])
    at.select_slider(key="stab_eps").set_value(float(stab.eps[0])).run()
    assert not at.exception
    adv = report.sections["adversarial_training"].result
    at = open_page(pages_report, "adversarial_training")
    shown = frame(at, "model", "clean").to_dict("records")
    for row, expected in zip(shown, adv.table()):
        assert row["model"] == expected["model"]
        assert {k: v for k, v in row.items() if k != "model"} == pytest.approx(
            {k: v for k, v in expected.items() if k != "model"})
    m = metrics(at)
    assert m["Clean accuracy after"] == f"{adv.after.clean_accuracy:.3f}"
    for f in adv.findings:
        assert f.message in markdown(at)


def test_fairness_opens_on_the_attribute_that_failed(light_report):
    report = AuditReport.load(light_report)
    failed = [f for f in report.findings if f.status == "fail" and f.id.startswith("policy:fairness.")]
    assert [f.metric for f in failed] == ["fairness.demographic_parity_difference:sex"]
    names = [a.name for a in report.sections["fairness"].result.attributes]
    assert names[0] != "sex"  # so opening on sex is a choice, not the default
    at = open_page(light_report, "fairness")
    assert at.selectbox(key="fair_attr").value == "sex"
    assert failed[0].message in markdown(at)  # the failed rule shows its text


def test_cohort_builder_equals_a_direct_computation(light_report, credit_small, credit_model):
    from audit.data import attribute_groups
    from audit.fairness import demographic_parity_difference

    report = AuditReport.load(light_report)
    at = open_page(light_report, "slices")
    test = credit_small.part("test")
    proba = np.asarray(credit_model.predict_proba(test.X), np.float64)
    pred = proba.argmax(1)
    # the whole split: the report's accuracy, ECE and fairness gaps
    imb = report.sections["imbalance"].result
    assert metrics(at)["Accuracy"] == f"{imb.summary['accuracy']:.3f}"
    assert metrics(at)["ECE"] == f"{imb.reliability.ece:.3f}"
    gaps = frame(at, "attribute", "disparity")
    fair = report.sections["fairness"].result
    for attr in ("sex", "age"):
        saved = fair.attribute(attr).disparity("demographic_parity_difference").value
        row = gaps[(gaps["attribute"] == attr) & (gaps["disparity"] == "demographic_parity_difference")].iloc[0]
        assert row["value"] == pytest.approx(saved)
    # a cohort: sector = retail and income at most 60,000
    at.multiselect(key="slices_columns").set_value(["sector", "income"]).run()
    at.multiselect(key="slices_levels:sector").set_value(["retail"]).run()
    lo = at.slider(key="slices_range:income").value[0]
    at.slider(key="slices_range:income").set_value((lo, 60000.0)).run()
    assert not at.exception, [e.value for e in at.exception]
    names = list(test.encoding.raw_names)
    j, a = names.index("sector"), names.index("income")
    mask = (test.raw[:, j] == test.encoding.columns[j].categories.index("retail")) & (test.raw[:, a] <= 60000.0)
    mask &= test.raw[:, a] >= lo
    m = metrics(at)
    assert m["Rows"] == str(int(mask.sum()))
    assert m["Accuracy"] == f"{(pred[mask] == test.y[mask]).mean():.3f}"
    assert m["Rest's error"] == f"{(pred[~mask] != test.y[~mask]).mean():.3f}"
    classes = frame(at, "class", "recall")
    for k, name in enumerate(test.class_names):
        row = classes[classes["class"] == name].iloc[0]
        of_class = mask & (test.y == k)
        assert row["rows"] == of_class.sum()
        if of_class.sum() >= 10:
            assert row["recall"] == pytest.approx((pred[of_class] == k).mean())
        else:
            assert row["too small to judge"] and np.isnan(row["recall"])
    conf, correct = proba[mask].max(1), pred[mask] == test.y[mask]
    bins = np.minimum((conf * 10).astype(int), 9)
    ece = sum(abs(correct[bins == b].mean() - conf[bins == b].mean()) * (bins == b).sum()
              for b in range(10) if (bins == b).any()) / mask.sum()
    assert m["ECE"] == f"{ece:.3f}"
    gaps = frame(at, "attribute", "disparity")
    sex = attribute_groups(credit_small, "sex", credit_small.splits["test"]).codes[mask]
    row = gaps[(gaps["attribute"] == "sex") & (gaps["disparity"] == "demographic_parity_difference")].iloc[0]
    assert (np.bincount(sex) >= 30).all()  # both groups large enough to judge: fairlearn's number
    assert row["value"] == pytest.approx(demographic_parity_difference(test.y[mask], pred[mask],
                                                                       sensitive_features=sex))
    assert row["low"] <= row["value"] <= row["high"]


def test_threshold_counts_equal_scikit_learn(credit_small, credit_model):
    """The imbalance page's instant threshold what-if counts sorted scores; it must give
    `audit.imbalance.class_metrics`'s (scikit-learn's) numbers at any threshold, ties included."""
    from audit.imbalance import class_metrics
    from dashboards import _live

    key = _live.key_of(credit_model, credit_small)
    proba = _live.probabilities(credit_model, credit_small, key)
    y = credit_small.part("test").y
    for t in (0.01, 0.2, 0.5, float(np.median(proba[:, 1])), 0.93, 0.99):
        at = _live.binary_at(credit_model, credit_small, key, t)
        pred = (proba[:, 1] >= t).astype(np.int64)
        per_class, summary, confusion = class_metrics(y, pred, proba, 2)
        assert np.array_equal(at["confusion"], confusion)
        assert at["precision"] == pytest.approx(per_class["precision"][1])
        assert at["recall"] == pytest.approx(per_class["recall"][1])
        assert at["balanced_accuracy"] == pytest.approx(summary["balanced_accuracy"])
        assert at["fpr"] == pytest.approx(confusion[0, 1] / confusion[0].sum())
