"""The dashboard under Streamlit's AppTest: every page renders from a small saved report, and
the key widgets (example picker, eps slider, attribute choice, threshold sliders) change what
is shown. Bad files give a message, never an exception."""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

APP = os.path.join(os.path.dirname(__file__), "..", "..", "dashboards", "app.py")


def open_page(report_path: str | None, page: str) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=180)
    if report_path is not None:
        at.session_state["report_path"] = report_path
    at.run()
    at.switch_page(f"views/{page}.py").run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def texts(at: AppTest) -> str:
    return "\n".join([m.value for m in at.markdown] + [c.value for c in at.caption] + [i.value for i in at.info]
                     + [e.value for e in at.error] + [w.value for w in at.warning])


# ---- credit: tabular, two classes, sensitive attributes ------------------------------------
def test_overview_shows_verdict_findings_and_cards(credit_report):
    from audit.pipeline import AuditReport

    report = AuditReport.load(credit_report)
    at = open_page(credit_report, "overview")
    assert at.title[0].value == "Audit: credit-small"
    m = metrics(at)
    assert m["Failed"] == str(sum(f.status == "fail" for f in report.findings))
    assert m["Warnings"] == str(sum(f.status == "warn" for f in report.findings))
    shown = at.dataframe[0].value
    assert set(shown["status"]) <= {"fail", "warn"}
    at.multiselect(key="overview_status").set_value(["pass"]).run()
    assert set(at.dataframe[0].value["status"]) == {"pass"}
    assert len(at.dataframe[0].value) == sum(f.status == "pass" for f in report.findings)


def test_robustness_eps_slider_attack_and_example_picker(credit_report):
    at = open_page(credit_report, "robustness")
    assert "Robust accuracy (worst case over attacks) at eps 0.1" in metrics(at)
    at.selectbox(key="rob_attack").set_value("fgsm")
    at.slider(key="rob_eps").set_value(0.0).run()
    assert float(metrics(at)["Perturbation size (linf)"]) == 0.0
    assert metrics(at)["Prediction after"] == metrics(at)["Prediction before"]
    at.slider(key="rob_eps").set_value(0.25).run()
    size = float(metrics(at)["Perturbation size (linf)"])
    assert 0 < size <= 0.25 + 1e-6  # FGSM stays in the eps ball
    first = [c.value for c in at.caption if c.value.startswith("Test row")]
    at.number_input(key="rob_position").set_value(2).run()
    assert not at.exception
    second = [c.value for c in at.caption if c.value.startswith("Test row")]
    assert first != second
    at.select_slider(key="rob_grid_eps").set_value(0.5).run()
    assert "Robust accuracy (worst case over attacks) at eps 0.5" in metrics(at)


def test_fairness_attribute_choice_and_threshold_slider(credit_report):
    at = open_page(credit_report, "fairness")
    at.selectbox(key="fair_attr").set_value("sex").run()
    assert set(at.dataframe[0].value["group"]) == {"female", "male"}
    at.selectbox(key="fair_attr").set_value("age").run()
    age_groups = set(at.dataframe[0].value["group"])
    assert len(age_groups) >= 2 and "female" not in age_groups
    at.selectbox(key="fair_cross").set_value("sex").run()
    assert all("&" in g for g in at.dataframe[0].value["group"])
    at.selectbox(key="fair_cross").set_value("(none)").run()
    at.selectbox(key="fair_attr").set_value("sex").run()
    at.slider(key="fair_threshold").set_value(0.5).run()
    at_half = metrics(at)
    assert at_half["Accuracy"].startswith("0.")
    at.slider(key="fair_threshold").set_value(0.05).run()
    low = metrics(at)
    assert low != at_half
    assert not at.exception


def test_imbalance_threshold_slider_moves_precision_and_recall(credit_report):
    at = open_page(credit_report, "imbalance")
    recalls, precisions = [], []
    for t in (0.05, 0.5, 0.95):
        at.slider(key="imb_threshold").set_value(t).run()
        m = metrics(at)
        recalls.append(float(m["Recall"]))
        precisions.append(float(m["Precision"]))
    assert recalls[0] >= recalls[1] >= recalls[2]  # a higher threshold never finds more positives
    assert recalls[0] > recalls[2]
    at.toggle(key="imb_normalize").set_value(False).run()
    assert not at.exception


def test_ood_page_shows_separation_and_scores_a_picked_row(credit_report):
    from audit.pipeline import AuditReport

    result = AuditReport.load(credit_report).sections["ood"].result
    at = open_page(credit_report, "ood")
    table = at.dataframe[0].value
    assert len(table) == len(result.separations)
    assert float(table["AUROC"].iloc[0]) == pytest.approx(result.separations[0].auroc)
    shown = metrics(at)
    live = [d for d in ("msp", "energy", "mahalanobis", "knn") if d in result.inlier_scores]
    assert len(live) >= 3 and all(d in shown for d in live)  # every cheap detector, fitted as the audit fitted it


def test_explanations_example_picker_changes_the_explanation(credit_report):
    at = open_page(credit_report, "explanations")
    fx = lambda: [c.value for c in at.caption if c.value.startswith("f(x)")]
    first = fx()
    assert first
    at.selectbox(key="exp_filter").set_value("misclassified").run()
    assert not at.exception
    assert fx() != first or "No test example" in texts(at)
    at.selectbox(key="exp_filter").set_value("sex = female").run()
    assert not at.exception and fx()


# ---- digits: images, ten classes, no sensitive attributes ----------------------------------
@pytest.mark.parametrize("page", ["overview", "robustness", "explanations", "imbalance", "fairness"])
def test_digits_pages_render(digits_report, page):
    at = open_page(digits_report, page)
    if page == "fairness":
        assert "did not run" in texts(at) or "skipped" in texts(at)
    if page == "imbalance":
        assert not at.slider  # the threshold slider is for two-class models
    if page == "robustness":
        assert "Prediction after" in metrics(at)
    if page == "explanations":
        assert at.multiselect(key="exp_methods").value  # saliency methods next to SHAP


# ---- no report, bad files ------------------------------------------------------------------
def test_pages_without_a_report_point_to_start():
    at = open_page(None, "robustness")
    assert "No audit report is open" in texts(at)
    at = open_page(None, "start")
    assert at.title[0].value == "flax-audit dashboard"


@pytest.mark.parametrize("content, message", [
    ("{not json", "not valid JSON"),
    (json.dumps({"hello": 1}), "not a flax-audit report"),
    (json.dumps({"kind": "flax-audit-report", "schema": 99}), "schema 99"),
    (json.dumps([1, 2, 3]), "not a flax-audit report"),
])
def test_bad_report_files_show_a_message(tmp_path, content, message):
    path = tmp_path / "report.json"
    path.write_text(content)
    at = open_page(str(path), "overview")
    assert message in texts(at)


def test_missing_report_and_corrupt_checkpoint(tmp_path, credit_report):
    at = open_page(str(tmp_path / "nope.json"), "overview")
    assert "does not exist" in texts(at)
    folder = tmp_path / "copy"
    shutil.copytree(os.path.dirname(credit_report), folder)
    with open(folder / "model" / "params.msgpack", "r+b") as f:
        f.seek(100)
        f.write(b"\x00\x01\x02")
    document = json.loads((folder / "report.json").read_text())
    document["metadata"]["config"]["model"]["path"] = str(folder / "model")
    (folder / "report.json").write_text(json.dumps(document))
    at = open_page(str(folder / "report.json"), "robustness")
    assert "corrupt" in texts(at)
    assert "Robust accuracy (worst case over attacks) at eps 0.1" in metrics(at)  # the saved part still shows


def test_uploads_are_checked_and_never_unpickled(tmp_path, credit_report):
    from audit.errors import AuditInputError
    from dashboards._state import load_report, save_upload

    payload = open(credit_report, "rb").read()
    with pytest.raises(AuditInputError, match="limit"):
        save_upload([("report.json", payload)], max_bytes=100)
    with pytest.raises(AuditInputError, match="not valid JSON"):
        save_upload([("report.json", b"\xff\xfe")])
    with pytest.raises(AuditInputError, match="exactly one"):
        save_upload([("report.json", payload), ("model.pkl", b"x")])
    path = save_upload([("my report.json", payload)], folder=str(tmp_path))
    assert load_report(path).report.name == "credit-small"
    # a sidecar holding a pickled object array is refused, not unpickled
    document = json.loads(payload)
    document["sidecar"] = "report.arrays.npz"
    document["sections"]["imbalance"]["result"]["confusion"] = {"$array": "a0"}
    np.savez(tmp_path / "evil.npz", a0=np.array([object()], dtype=object))
    evil = save_upload([("report.json", json.dumps(document).encode()),
                        ("report.arrays.npz", (tmp_path / "evil.npz").read_bytes())], folder=str(tmp_path / "u"))
    loaded = load_report(evil)
    assert loaded.report is None and "array file" in loaded.error
    with pytest.raises(AuditInputError, match="upload that file"):
        save_upload([("report.json", json.dumps(document).encode())], folder=str(tmp_path / "v"))
