"""Issue #12: every metric every registered analyzer yields has a declared direction and meaning
(its result class's METRICS), and diff / policy read them."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from audit.pipeline import ANALYZERS, AuditReport
from audit.pipeline._diff import diff_reports
from audit.pipeline._meaning import spec_of
from audit.pipeline._registry import run_analyzer
from audit.pipeline._policy import Rule
from audit.pipeline._report import Section
from audit.results import MetricSpec

# the smallest settings that still produce every kind of metric the analyzer can yield
SMALL = {
    "explain": dict(n_examples=2, steps=8, lime_samples=200, background_size=10, stability_samples=2,
                    permutation_repeats=2),
    "robustness": dict(n=40, eps=[0.1], attacks=["fgsm", "pgd"], steps=3, min_perturbation_n=4, search_steps=2,
                       bootstrap=20, examples_per_eps=1),
    "certify": dict(n=16, eps=[0.1], steps=3, n0=10, n_samples=50, smoothing_attack_steps=2,
                    smoothing_attack_samples=2, square_queries=20),
    "explanation_stability": dict(n=8, eps=[0.1], pgd_steps=2, attack_steps=2, attack_samples=2),
    "fairness": dict(n_bootstrap=20),
    "imbalance": dict(),
    "fairness_mitigation": dict(attribute="sex", methods=("reweighing", "thresholds"),
                                train_options={"epochs": 1}, n_bootstrap=10),
    "imbalance_mitigation": dict(methods=("none", "class_weight"), train_options={"epochs": 1}),
    "adversarial_training": dict(epochs=1, n=24, eval_eps=[0.1], eval_steps=2, bootstrap=10, steps=2),
}


def _contract_settings() -> dict:
    """The contract test's small settings (tests/test_contract.py lists every analyzer)."""
    import importlib.util
    import os

    path = os.path.join(os.path.dirname(__file__), "..", "test_contract.py")
    spec = importlib.util.spec_from_file_location("_contract_settings", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.SETTINGS


SMALL = {**_contract_settings(), **SMALL}  # the analyzers added since keep the contract's settings


@pytest.fixture(scope="module")
def every_result(credit_small, credit_model):
    results = {}
    for name, spec in ANALYZERS.items():
        if name not in SMALL:
            continue
        results[name] = run_analyzer(spec, credit_model, credit_small, settings=dict(SMALL[name]), seed=0,
                                     progress=False)
    return results


@pytest.mark.slow
def test_every_metric_declares_direction_and_meaning(every_result):
    missing = [n for n in ANALYZERS if n not in SMALL and n != "accuracy"]
    assert not missing, f"add small settings for {missing} to SMALL"
    problems = []
    for name, result in every_result.items():
        specs = type(result).METRICS
        assert specs and all(isinstance(s, MetricSpec) for s in specs), name
        metrics = result.metrics()
        assert metrics, name
        for key in metrics:
            spec = spec_of(f"{name}.{key}")
            if spec is None:
                problems.append(f"{name}.{key} has no MetricSpec in {type(result).__name__}.METRICS")
            elif not (spec.meaning.endswith(".") and len(spec.meaning.split()) >= 3) or "<" in spec.title_for(key):
                problems.append(f"{name}.{key}: {spec}")
    assert not problems, "\n".join(problems)


def test_declared_directions_where_word_lists_went_wrong():
    assert spec_of("fairness.proxy_probe_auc:sex").direction == "lower"  # more leakage is worse
    assert spec_of("fairness.demographic_parity_difference:sex:all_groups").pattern.endswith(":all_groups")
    assert spec_of("fairness.demographic_parity_difference:sex&age:yes").pattern.endswith(":<class>")
    assert spec_of("fairness.disparate_impact:sex").direction == "higher"
    assert spec_of("robustness.robust_accuracy:class=yes@0.1").title_for("robust_accuracy:class=yes@0.1") == \
        "Robust accuracy of yes at eps 0.1"
    assert spec_of("imbalance.threshold:f1_optimal").direction == "info"
    assert spec_of("nosuch.metric") is None


class _Fixed:
    """A stand-in result whose metrics() returns a fixed dict."""

    def __init__(self, metrics):
        self._m, self.findings = metrics, ()

    def metrics(self):
        return dict(self._m)


def _report(sections, policy=()):
    return AuditReport(name="r", sections={k: Section(k, k, _Fixed(v)) for k, v in sections.items()},
                       findings=(), metadata={"config": {"policy": [dict(r) for r in policy]}})


def test_diff_reads_directions_orders_by_policy_and_hides_bounds():
    old = _report({"fairness": {"proxy_probe_auc:sex": 0.6, "demographic_parity_difference:sex": 0.2,
                                "demographic_parity_difference_ci_low:sex": 0.1},
                   "imbalance": {"ece": 0.05, "accuracy": 0.9}},
                  policy=[{"metric": "imbalance.ece", "max": 0.1}])
    new = _report({"fairness": {"proxy_probe_auc:sex": 0.8, "demographic_parity_difference:sex": 0.1,
                                "demographic_parity_difference_ci_low:sex": 0.02},
                   "imbalance": {"ece": 0.08, "accuracy": 0.9}},
                  policy=[{"metric": "imbalance.ece", "max": 0.1}])
    d = diff_reports(old, new)
    verdicts = {c.metric: c.verdict for c in d.metrics}
    assert verdicts["fairness.proxy_probe_auc:sex"] == "worse"  # more proxy leakage is not an improvement
    assert verdicts["fairness.demographic_parity_difference:sex"] == "better"
    lines = d.lines()
    assert lines[0] == "policy metrics:" and "imbalance.ece" in lines[1]
    assert not any("_ci_low" in line for line in lines) and "--all" in lines[-1]
    assert any("_ci_low" in line for line in d.lines(show_all=True))
    assert not d.warnings


def test_diff_flags_a_collapsed_constant_predictor():
    groups = {"selection_rate:sex=female": 0.3, "selection_rate:sex=male": 0.45,
              "demographic_parity_difference:sex": 0.15}
    old = _report({"fairness": groups, "imbalance": {"accuracy": 0.93, "recall:no": 0.97, "recall:yes": 0.6}})
    new = _report({"fairness": {"selection_rate:sex=female": 0.0, "selection_rate:sex=male": 0.0,
                                "demographic_parity_difference:sex": 0.0},
                   "imbalance": {"accuracy": 0.9, "recall:no": 1.0, "recall:yes": 0.0}})
    d = diff_reports(old, new)
    verdict = {c.metric: c.verdict for c in d.metrics}
    assert verdict["fairness.demographic_parity_difference:sex"] == "changed"  # not "better"
    assert verdict["imbalance.accuracy"] == "worse"
    assert len(d.warnings) == 1 and "accuracy 0.930 -> 0.900" in d.warnings[0]
    assert d.lines()[0].startswith("warning: the new model predicts one class")


def test_policy_message_states_the_declared_meaning():
    rule = Rule(metric="fairness.demographic_parity_difference:sex", max=0.1)
    f = rule.evaluate({"fairness.demographic_parity_difference:sex": 0.2})
    assert f.status == "fail"
    assert f.message.startswith("Demographic parity difference by sex: Largest gap in selection rate")
    assert "groups large enough to judge" in f.message and f.message.endswith("The policy requires <= 0.1.")


def test_policy_on_a_disparity_no_two_groups_can_judge():
    rule = Rule(metric="fairness.demographic_parity_difference:sex", max=0.1)
    f = rule.evaluate({"fairness.demographic_parity_difference:sex:all_groups": 0.9})
    assert f.status == "fail" and "cannot be judged" in f.title and "0.9" in f.message
