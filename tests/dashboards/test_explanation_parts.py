"""The Explanations page shows a saved report's interactions and surrogate rules (issue #18)."""

from __future__ import annotations

import os

import pytest

from audit import run
from audit.pipeline import AuditConfig
from tests.dashboards.test_app import open_page


@pytest.fixture(scope="module")
def explain_report(tmp_path_factory, credit_small, credit_model):
    folder = tmp_path_factory.mktemp("dash") / "credit-explain"
    model_dir = str(folder / "model")
    credit_model.save(model_dir)
    config = AuditConfig(name="credit-explain", seed=0, data={"dataset": "credit", "options": {"n": 3000}},
                         model={"path": model_dir},
                         analyzers={"explain": {"n_examples": 3, "methods": ["shap"], "stability_samples": 0,
                                                "permutation_repeats": 1, "background_size": 10,
                                                "interaction_examples": 12, "surrogate_depth": 2}},
                         policy=({"metric": "explain.surrogate_fidelity", "min": 0.5},))
    report = run(credit_model, credit_small, config, progress=False)
    assert report.passed
    return report.to_json(os.path.join(folder, "report.json"))


def test_interactions_and_rules_render_and_the_dependence_picker_works(explain_report):
    at = open_page(explain_report, "explanations")
    heads = [h.value for h in at.subheader]
    assert "Feature interactions" in heads and "Global surrogate rules" in heads
    box = at.selectbox(key="exp_dependence")
    other = [o for o in box.options if o != box.value][0]
    box.set_value(other).run()
    assert not at.exception
    assert any(c.value.startswith("Coloured by ") for c in at.caption)
    assert any("agrees with the model on" in c.value for c in at.caption)
