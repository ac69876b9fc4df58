"""The dashboard's robustness page shows AutoAttack's per-stage shares and the minimal-perturbation
distances per class (PGD bisection beside C&W L2), as the HTML report does."""

from __future__ import annotations

import os

import pytest
from streamlit.testing.v1 import AppTest

from audit import run
from audit.pipeline import AuditConfig

APP = os.path.join(os.path.dirname(__file__), "..", "..", "dashboards", "app.py")


@pytest.mark.slow
def test_dashboard_robustness_page_shows_the_tables(tmp_path, credit_small, credit_model):
    model_dir = str(tmp_path / "model")
    credit_model.save(model_dir)
    config = AuditConfig(name="credit-strong", seed=0, data={"dataset": "credit", "options": {"n": 3000}},
                         model={"path": model_dir},
                         analyzers={"robustness": {"attacks": ["pgd", "autoattack", "cw"], "norm": "l2", "n": 32,
                                                   "eps": [0.0, 1.0], "steps": 4, "bootstrap": 0,
                                                   "min_perturbation_n": 16, "search_steps": 2, "impute_k": [],
                                                   "sanity": False}})
    report = run(credit_model, credit_small, config, progress=False)
    result = report.sections["robustness"].result
    at = AppTest.from_file(APP, default_timeout=180)
    at.session_state["report_path"] = report.to_json(str(tmp_path / "report.json"))
    at.run()
    at.switch_page("views/robustness.py").run()
    assert not at.exception, [e.value for e in at.exception]
    captions = "\n".join(c.value for c in at.caption)
    assert "AutoAttack, stage by stage" in captions and "Distance to the nearest adversarial" in captions
    frames = [d.value for d in at.dataframe]
    stages = next(f for f in frames if "all stages" in list(f.index))
    assert list(stages.index) == ["apgd-ce", "apgd-t", "fab-t", "all stages"]
    assert stages.loc["apgd-ce", "eps 1"] == f"{result.autoattack_share['apgd-ce'][1]:.1%}"
    distances = next(f for f in frames if "all classes" in list(f.index))
    assert list(distances.columns) == ["PGD rows", "PGD bisection (l2)", "C&W rows", "C&W L2"]
    assert list(distances.index) == ["all classes", *result.class_names]
