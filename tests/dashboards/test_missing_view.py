"""The missing-data page: the profile table and the robustness table from a saved report."""

from __future__ import annotations

import os

import jax.numpy as jnp
import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

import audit
from audit.models import Model

APP = os.path.join(os.path.dirname(__file__), "..", "..", "dashboards", "app.py")


@pytest.fixture(scope="module")
def missing_report(tmp_path_factory):
    data = audit.datasets.load("credit", n=3000, missing="mnar")
    w = jnp.asarray(np.random.default_rng(0).normal(size=(data.X.shape[1], 2)), jnp.float32)
    model = Model.from_function(lambda p, x: x @ p, w, input_shape=data.X.shape[1:], class_names=data.class_names)
    config = audit.AuditConfig(name="missing", data={"dataset": "credit", "options": {"n": 3000, "missing": "mnar"}},
                               analyzers={"missing": {"rates": [0.2, 0.4], "attributes": ["sex"]}})
    report = audit.run(model, data, config, progress=False)
    return report.to_json(str(tmp_path_factory.mktemp("missing") / "report.json"))


def test_missing_page_shows_profile_and_curve(missing_report):
    result = audit.AuditReport.load(missing_report).sections["missing"].result
    at = AppTest.from_file(APP, default_timeout=180)
    at.session_state["report_path"] = missing_report
    at.run()
    at.switch_page("views/missing.py").run()
    assert not at.exception, [e.value for e in at.exception]
    profile, curve = at.dataframe[0].value, at.dataframe[1].value
    assert profile["column"].tolist() == ["income"]
    assert float(profile["mask AUC"].iloc[0]) == pytest.approx(result.columns[0].mask_auc)
    assert curve["missing share"].tolist() == [0.0, 0.2, 0.4]
    assert any("sex=female" in m.value for m in at.markdown)
    assert float(curve["DP gap (sex)"].iloc[1]) == pytest.approx(result.curve[1].gaps[[g.attribute for g in
                                                                                      result.curve[1].gaps].index("sex")].demographic_parity)
    picker = at.selectbox(key="missing_curve")
    assert len(picker.options) == len(result.curves) and any("sex=female rows only" in o for o in picker.options)
    group = next(c for c in result.curves if c.scenario == "group:sex")
    picker.select(next(o for o in picker.options if "sex=female rows only" in o)).run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.dataframe[1].value["accuracy"].tolist() == pytest.approx([p.accuracy.rate for p in group.points])
