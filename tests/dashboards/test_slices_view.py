"""The error-analysis page: the saved cohorts as a table, and the cohort builder's numbers equal the
model's error on exactly the rows the filters pick."""

from __future__ import annotations

import os

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from audit import run
from audit.pipeline import AuditConfig, AuditReport

APP = os.path.join(os.path.dirname(__file__), "..", "..", "dashboards", "app.py")


@pytest.fixture(scope="module")
def slices_report(tmp_path_factory, credit_small, credit_model):
    folder = tmp_path_factory.mktemp("dash-slices")
    credit_model.save(str(folder / "model"))
    config = AuditConfig(name="credit-slices", seed=0, data={"dataset": "credit", "options": {"n": 3000}},
                         model={"path": str(folder / "model")}, analyzers={"slices": {"min_size": 15}})
    return run(credit_model, credit_small, config, progress=False).to_json(os.path.join(folder, "report.json"))


def test_cohort_table_and_builder(slices_report, credit_small, credit_model):
    at = AppTest.from_file(APP, default_timeout=120)
    at.session_state["report_path"] = slices_report
    at.run()
    at.switch_page("views/slices.py").run()
    assert not at.exception, [e.value for e in at.exception]
    result = AuditReport.load(slices_report).sections["slices"].result
    shown = at.dataframe[0].value
    assert list(shown["cohort"]) == [c.name for c in result.cohorts]
    metric = {m.label: m.value for m in at.metric}
    assert metric["Cohorts tried"] == str(result.n_tried)
    # no filter: the whole split
    test = credit_small.part("test")
    wrong = credit_model.predict(test.X) != test.y
    assert metric["Rows"] == str(len(test.y)) and metric["Error"] == f"{wrong.mean():.3f}"
    # filter sector to retail: the numbers are the model's on those rows
    at.multiselect(key="slices_columns").set_value(["sector"]).run()
    at.multiselect(key="slices_levels:sector").set_value(["retail"]).run()
    assert not at.exception, [e.value for e in at.exception]
    j = list(test.encoding.raw_names).index("sector")
    retail = test.raw[:, j] == test.encoding.columns[j].categories.index("retail")
    metric = {m.label: m.value for m in at.metric}
    assert metric["Rows"] == str(int(retail.sum()))
    assert metric["Error"] == f"{wrong[retail].mean():.3f}"
    assert metric["Rest's error"] == f"{wrong[~retail].mean():.3f}"
    # start from the top cohort the audit found: its rows and error, as the report says
    top = result.cohorts[0]
    at.multiselect(key="slices_columns").set_value([]).run()
    at.selectbox(key="slices_start").set_value(top.name).run()
    metric = {m.label: m.value for m in at.metric}
    assert metric["Rows"] == str(top.size) and metric["Error"] == f"{top.error:.3f}"
