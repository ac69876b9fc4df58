"""'What would change this decision?' on the Explanations page: live counterfactuals for the picked
row; the fixed and one-way columns chosen in the page hold in what is shown."""

from __future__ import annotations

import os

from streamlit.testing.v1 import AppTest

APP = os.path.join(os.path.dirname(__file__), "..", "..", "dashboards", "app.py")


def test_counterfactuals_for_the_picked_row(credit_report):
    at = AppTest.from_file(APP, default_timeout=240)
    at.session_state["report_path"] = credit_report
    at.run()
    at.switch_page("views/explanations.py").run()
    assert not at.exception, [e.value for e in at.exception]
    assert any(s.value == "What would change this decision?" for s in at.subheader)
    table = at.dataframe[0].value
    assert list(table["kind"])[0] == "original" and (table["kind"] == "counterfactual").any()
    n_cf = int((table["kind"] == "counterfactual").sum())
    assert any(c.value.startswith(f"Of 3 requested: {n_cf} valid") for c in at.caption)  # the validity split
    at.multiselect(key="cf_immutable").set_value(["income", "debt_ratio"]).run()
    at.multiselect(key="cf_up").set_value(["late_payments"]).run()
    assert not at.exception, [e.value for e in at.exception]
    table = at.dataframe[0].value
    orig, cfs = table.iloc[0], table[table["kind"] == "counterfactual"]
    assert len(cfs) >= 1
    assert (cfs["income"] == orig["income"]).all() and (cfs["debt_ratio"] == orig["debt_ratio"]).all()
    assert (cfs["late_payments"] >= orig["late_payments"]).all()
