"""The Robustness page shows the corruption grid (by severity, class and group) and the transfer
curves when the audit ran those analyzers."""

from __future__ import annotations

import os

import pytest
from streamlit.testing.v1 import AppTest

from audit import run
from audit.pipeline import AuditConfig

APP = os.path.join(os.path.dirname(__file__), "..", "..", "dashboards", "app.py")


def open_page(report_path: str, page: str) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=180)
    at.session_state["report_path"] = report_path
    at.run()
    at.switch_page(f"views/{page}.py").run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def texts(at: AppTest) -> str:
    return "\n".join([m.value for m in at.markdown] + [c.value for c in at.caption] + [i.value for i in at.info])


@pytest.fixture(scope="module")
def corrupted_report(tmp_path_factory, credit_small, credit_model):
    folder = tmp_path_factory.mktemp("dash") / "credit-corrupted"
    model_dir = str(folder / "model")
    credit_model.save(model_dir)
    config = AuditConfig(name="credit-corrupted", seed=0, data={"dataset": "credit", "options": {"n": 3000}},
                         model={"path": model_dir},
                         analyzers={"corruptions": {"n": 120, "severities": [1, 5]},
                                    "transfer": {"n": 60, "epochs": 2, "eps": [0.5], "steps": 5}})
    report = run(credit_model, credit_small, config, progress=False)
    return report.to_json(os.path.join(folder, "report.json"))


def test_robustness_page_shows_corruption_grid_and_transfer(corrupted_report):
    at = open_page(corrupted_report, "robustness")
    text = texts(at)
    assert "mean corruption error" in text
    assert "Most damaging corruption" in text and "transfer.gradient_masking" not in text
    heads = [h.value for h in at.subheader]
    assert "Common corruptions" in heads and any(h.startswith("Transfer attacks") for h in heads)
    at.radio(key="rob_corr_by").set_value("class").run()
    assert not at.exception
    at.radio(key="rob_corr_by").set_value("group").run()
    at.selectbox(key="rob_corr_attr").set_value("age").run()
    assert not at.exception
