import json

import numpy as np
import pytest

from audit import AuditConfig, AuditReport, run
from audit.errors import AuditInputError
from audit.pipeline._diff import diff_reports


def config(registry, **policy_bounds):
    return AuditConfig(name="unit", seed=1, analyzers={"accuracy": {"sample": 300}}, registry=registry,
                       policy=[{"metric": "accuracy.accuracy", **policy_bounds}])


def numbers(report):
    d = report.to_dict()
    d["metadata"].pop("durations")
    d["metadata"]["provenance"].pop("date")  # wall-clock time of the run, not a number the seed governs
    for section in d["sections"].values():
        section.pop("seconds")
        section["result"]["provenance"].pop("seconds")
    return d


def test_policy_verdicts(credit_model, credit_small, registry):
    passing = run(credit_model, credit_small, config(registry, min=0.8), progress=False)
    failing = run(credit_model, credit_small, config(registry, min=0.99), progress=False)
    assert passing.passed and passing.verdict == "pass"
    assert not failing.passed and failing.verdict == "fail"
    finding = failing.findings[0]
    assert finding.id == "policy:accuracy.accuracy" and finding.status == "fail"
    assert abs(finding.value - credit_model.accuracy(credit_small.test.X, credit_small.test.y)) < 0.05
    assert "accuracy:accuracy" in {f.id for f in failing.findings}  # the analyzer's own finding, namespaced


def test_missing_metric_is_refused_at_load_with_a_suggestion(registry):
    with pytest.raises(AuditInputError, match="Did you mean accuracy.accuracy"):
        AuditConfig(analyzers={"accuracy": {}}, registry=registry, policy=[{"metric": "accuracy.acuracy", "min": 0.5}])


def test_json_round_trip_with_sidecar(tmp_path, credit_model, credit_small, registry):
    report = run(credit_model, credit_small, AuditConfig(analyzers={"accuracy": {}}, registry=registry), progress=False)
    assert report.sections["accuracy"].result.scores.size >= 1024  # big enough for the sidecar
    path = report.to_json(tmp_path / "report.json")
    document = json.loads(open(path).read())
    assert document["sidecar"] == "report.arrays.npz" and (tmp_path / "report.arrays.npz").exists()
    loaded = AuditReport.load(path, registry=registry)
    assert loaded.to_dict() == report.to_dict()
    assert np.array_equal(loaded.sections["accuracy"].result.scores, report.sections["accuracy"].result.scores)


def test_same_seed_same_numbers(credit_model, credit_small, registry):
    a = run(credit_model, credit_small, config(registry, min=0.5), progress=False)
    b = run(credit_model, credit_small, config(registry, min=0.5), progress=False)
    assert json.dumps(numbers(a)) == json.dumps(numbers(b))
    c = run(credit_model, credit_small, AuditConfig(seed=2, analyzers={"accuracy": {"sample": 300}}, registry=registry), progress=False)
    assert c.sections["accuracy"].result.accuracy != a.sections["accuracy"].result.accuracy or \
        not np.array_equal(c.sections["accuracy"].result.scores, a.sections["accuracy"].result.scores)


def test_metadata_records_provenance(credit_model, credit_small, registry):
    report = run(credit_model, credit_small, config(registry, min=0.5), progress=False)
    meta = report.metadata
    assert meta["data"]["fingerprint"] == credit_small.fingerprint()
    assert meta["model"]["fingerprint"] == credit_model.fingerprint()
    assert meta["seed"] == 1 and "jax" in meta["libraries"] and "accuracy" in meta["durations"]


def test_inapplicable_analyzer_is_skipped_with_reason(digits_cnn, digits, accuracy_spec, registry):
    import dataclasses
    picky = {**registry, "accuracy": dataclasses.replace(accuracy_spec, needs_sensitive=True)}
    report = run(digits_cnn, digits, AuditConfig(analyzers={"accuracy": {}}, registry=registry), registry=picky,
                 progress=False)
    assert report.sections["accuracy"].skipped == "Accuracy <by class> needs sensitive attributes and the data has none"


def test_registry_is_an_argument_not_a_global(credit_model, credit_small, registry):
    import pytest
    from audit import AuditInputError
    from audit.pipeline import ANALYZERS
    assert "accuracy" not in ANALYZERS  # the tests never add to the global
    with pytest.raises(AuditInputError, match="unknown analyzer 'analyzers.accuracy'"):
        AuditConfig(analyzers={"accuracy": {}})
    config = AuditConfig(analyzers={"accuracy": {"sample": 50}}, registry=registry)
    with pytest.raises(AuditInputError, match="unknown analyzer 'accuracy'"):
        run(credit_model, credit_small, config, registry=ANALYZERS, progress=False)  # checked before any work
    assert run(credit_model, credit_small, config, progress=False).sections["accuracy"].result.accuracy > 0.5


def test_mismatched_model_and_data(credit_model, digits, registry):
    import pytest
    from audit import AuditInputError
    with pytest.raises(AuditInputError, match="takes inputs of shape"):
        run(credit_model, digits, config(registry, min=0.5), progress=False)


def test_diff_flags_a_planted_regression(credit_model, credit_small, registry):
    import jax
    good = run(credit_model, credit_small, config(registry, min=0.92), progress=False)
    broken = credit_model.replace(params=jax.tree.map(lambda v: v * 0.0, credit_model.params))
    bad = run(broken, credit_small, config(registry, min=0.92), progress=False)  # predicts the majority: 0.90
    diff = diff_reports(good, bad)
    assert diff.regressed
    assert any(c.id == "policy:accuracy.accuracy" and c.old == "pass" and c.new == "fail" for c in diff.findings)
    assert any(c.metric == "accuracy.recall:1" and c.verdict == "worse" for c in diff.metrics)
    assert not diff_reports(good, good).regressed


def test_metric_directions():
    from audit.pipeline._diff import direction
    from audit.pipeline import Rule
    higher = ["robustness.robust_accuracy@0.1", "imbalance.recall:yes", "imbalance.pr_auc:yes",
              "certify.certified_accuracy:ibp@0.1", "adversarial_training.robust_accuracy_gain@0.1",
              "explain.stability:shap", "robustness.median_min_perturbation", "fairness.disparate_impact:sex"]
    lower = ["fairness.equalized_odds_difference:sex", "adversarial_training.clean_accuracy_drop",
             "robustness.min_perturbation_found_rate", "imbalance.ece", "robustness.attack_success_rate@0.1",
             "explain.ig_completeness_error", "fairness_mitigation.reweighing:accuracy_cost",
             "robustness.robust_accuracy_gap:sex@0.1", "certify.smoothing_abstain_rate"]
    neutral = ["imbalance.imbalance_ratio", "fairness.size:sex=female", "imbalance.threshold:f1_optimal"]
    assert [direction(m) for m in higher] == [1] * len(higher)
    assert [direction(m) for m in lower] == [-1] * len(lower)
    assert [direction(m) for m in neutral] == [0] * len(neutral)
    assert direction("x.custom", [Rule(metric="x.custom", max=1.0)]) == -1


def test_nan_finding_values_are_written_as_null(tmp_path, credit_model, credit_small, registry):
    import dataclasses
    from audit.results import Finding
    report = run(credit_model, credit_small, config(registry, min=0.5), progress=False)
    odd = dataclasses.replace(report, findings=report.findings + (
        Finding(id="x:nan", status="warn", title="undefined", message="m", value=float("nan")),))
    loaded = AuditReport.load(odd.to_json(tmp_path / "r.json"), registry=registry)
    assert loaded.findings[-1].value is None
