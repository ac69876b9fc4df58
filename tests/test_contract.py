"""The result contract, over every registered analyzer and every attack: a result is a `Result`
with a schema of its own, round-trips through JSON exactly (through to_dict / from_dict and
through the pipeline's report file with its array sidecar), and `==` compares it field by field."""

from __future__ import annotations

import dataclasses
import json
import math
import re

import numpy as np
import pytest

from audit import AuditConfig, AuditInputError, AuditReport, run
from audit.pipeline import ANALYZERS
from audit.results import Finding, Provenance, Result, to_jsonable
from audit.robustness import ATTACKS, RobustnessReport, evaluate

# Small settings: every analyzer runs on the credit test fixtures in seconds (retraining ones on
# a couple of epochs); what is checked is the result's form, not its numbers.
SETTINGS = {
    "explain": {"n_examples": 3, "methods": ["shap", "lime", "integrated_gradients"], "steps": 8,
                "lime_samples": 200, "background_size": 10, "stability_samples": 2, "permutation_repeats": 2},
    "robustness": {"n": 80, "eps": [0.0, 0.1], "steps": 3, "square_queries": 20, "min_perturbation_n": 10,
                   "search_steps": 3, "bootstrap": 20, "impute_k": [1]},
    "certify": {"n": 40, "eps": [0.0, 0.05], "steps": 3, "square_queries": 20, "n0": 10, "n_samples": 50,
                "smoothing_attack_steps": 2, "smoothing_attack_samples": 2},
    "explanation_stability": {"methods": ["gradient"], "n": 16, "eps": [0.05], "pgd_steps": 3,
                              "attack_steps": 3, "attack_samples": 2, "batch_size": 16},
    "fairness": {"n_bootstrap": 20, "attributes": ["sex"], "intersections": False},
    "imbalance": {},
    "slices": {"max_order": 2, "min_size": 20},
    "corruptions": {"n": 100, "severities": [1, 3]},
    "recourse": {"max_rows": 20, "n_bootstrap": 20},
    "ood": {"n": 100, "autoencoder_epochs": 1, "n_bootstrap": 10, "detectors": ["msp", "energy", "mahalanobis", "knn"]},
    "drift": {"n_permutations": 20, "max_rows": 100},
    "adversarial_detection": {"n": 30, "steps": 3, "detectors": ["energy", "msp"]},
    "transfer": {"epochs": 1, "n": 60, "steps": 3, "eps": [0.1]},
    "missing": {"rates": [0.2]},
    "missing_strategies": {"strategies": ["mean", "median"], "train_options": {"epochs": 2}},
    "fairness_mitigation": {"attribute": "sex", "methods": ["reweighing"], "train_options": {"epochs": 2},
                            "n_bootstrap": 20},
    "imbalance_mitigation": {"methods": ["none", "class_weight"], "train_options": {"epochs": 2}},
    "adversarial_training": {"method": "fgsm", "eps": 0.1, "epochs": 1, "n": 60, "eval_steps": 2,
                             "bootstrap": 20, "attacks": ["fgsm"]},
}


RETRAINING = sorted(n for n, spec in ANALYZERS.items() if spec.retrains)
QUICK = sorted(n for n, spec in ANALYZERS.items() if not spec.retrains)
# the analyzers that retrain the model take minutes together: they run with -m slow
ALL = QUICK + [pytest.param(n, marks=pytest.mark.slow) for n in RETRAINING]


def test_every_analyzer_has_settings_here():
    assert set(SETTINGS) == set(ANALYZERS), "add the new analyzer to SETTINGS so the contract covers it"


@pytest.fixture(scope="module")
def reports(credit_model, credit_small):
    """One audit per group of analyzers, run on first use (the retraining group only under -m slow)."""
    cache = {}

    def get(retrains: bool) -> AuditReport:
        if retrains not in cache:
            names = RETRAINING if retrains else QUICK
            config = AuditConfig(name="contract", seed=3, analyzers={n: SETTINGS[n] for n in names})
            cache[retrains] = run(credit_model, credit_small, config, progress=False)
        return cache[retrains]
    return get


@pytest.fixture
def report(reports, request):
    name = getattr(request, "param", None) or request.node.callspec.params["name"]
    return reports(ANALYZERS[name].retrains)


def _through_json(d):
    return json.loads(json.dumps(to_jsonable(d), allow_nan=False))


def _same_metrics(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(a[k] == b[k] or (math.isnan(a[k]) and math.isnan(b[k])) for k in a)


@pytest.mark.parametrize("name", ALL)
def test_result_round_trips_exactly(report, name):
    section = report.sections[name]
    assert section.skipped is None, section.skipped
    result = section.result
    cls = ANALYZERS[name].result
    assert type(result) is cls and isinstance(result, Result)
    assert re.fullmatch(r"audit\.[a-z_]+(\.[a-z_]+)?/\d+", cls.SCHEMA), cls.SCHEMA
    d = result.to_dict()
    assert d["schema"] == cls.SCHEMA
    assert all(isinstance(f, Finding) for f in result.findings) and isinstance(result.provenance, Provenance)
    for back in (cls.from_dict(d), cls.from_dict(_through_json(d))):
        assert back == result
        assert _same_metrics(back.metrics(), result.metrics())
        assert back.findings == result.findings
    assert json.dumps(to_jsonable(cls.from_dict(_through_json(d)).to_dict())) == json.dumps(to_jsonable(d))


@pytest.mark.parametrize("name", ALL)
def test_equality_is_defined(report, name):
    result = report.sections[name].result
    assert result == result and not result != result
    changed = dataclasses.replace(result, provenance=dataclasses.replace(result.provenance, seed=-1))
    assert changed != result and result != changed  # arrays inside never make == raise
    with pytest.raises(TypeError):
        hash(result)  # results hold arrays: equality by value, not hashable


@pytest.mark.parametrize("name", ALL)
def test_a_wrong_schema_is_one_clear_error(report, name):
    cls = ANALYZERS[name].result
    d = report.sections[name].result.to_dict()
    with pytest.raises(AuditInputError, match="schema"):
        cls.from_dict({**d, "schema": "audit.other/99"})
    with pytest.raises(AuditInputError, match="no field"):
        cls.from_dict({k: v for k, v in d.items() if k != "provenance"})


@pytest.mark.parametrize("retrains", [False, pytest.param(True, marks=pytest.mark.slow)])
def test_report_file_round_trips_every_section(reports, retrains, tmp_path):
    report = reports(retrains)
    path = report.to_json(tmp_path / "report.json")
    loaded = AuditReport.load(path)
    assert set(loaded.sections) == set(report.sections)
    for name, section in report.sections.items():
        assert loaded.sections[name].result == section.result, name
    assert _same_metrics(loaded.metrics(), report.metrics())
    assert [f.to_dict() for f in loaded.findings] == [f.to_dict() for f in report.findings]


@pytest.mark.parametrize("attack", sorted(ATTACKS))
def test_every_attack_round_trips(digits_cnn, digits, attack):
    """Each attack's robustness result on images (10 classes, so every attack applies), with
    adversarial examples inside, comes back equal."""
    norm = "linf" if "linf" in ATTACKS[attack].norms else ATTACKS[attack].norms[0]
    eps = (0.0, 0.3) if norm == "linf" else (0.0, 2.0)  # L2 budgets are larger for the same effect
    result = evaluate(digits_cnn, digits, attacks=(attack,), n=24, eps=eps, steps=3, square_queries=30,
                      min_perturbation_n=4, search_steps=2, bootstrap=10, seed=1, norm=norm)
    assert result.attacks == (attack,)
    back = RobustnessReport.from_dict(_through_json(result.to_dict()))
    assert back == result and _same_metrics(back.metrics(), result.metrics())
    if attack != "cw":  # C&W at 3 optimiser steps finds no example here; its curves still round-trip
        assert back.examples and back.examples[0].adversarial.dtype == np.float32
        assert back.examples[0].adversarial.shape == digits.input_shape
