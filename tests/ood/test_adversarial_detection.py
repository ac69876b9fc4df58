"""Adversarial-input detection: thresholds hold their false-alarm rate, and the adaptive attack
must lower a detector's detection rate (or it is not adaptive)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from audit.errors import AuditInputError
from audit.ood import AdversarialDetectionReport, detect_adversarial
from audit.results import to_jsonable


@pytest.fixture(scope="module")
def digits_detection(digits, digits_cnn):
    return detect_adversarial(digits_cnn, digits, n=120, steps=15, detectors=["squeeze", "energy"])


def test_adaptive_attack_lowers_detection_and_is_never_weaker_than_pgd(digits_detection):
    for d in digits_detection.detections:
        assert d.clean_flagged <= 0.05 + 1.5 / digits_detection.n  # the threshold's false-alarm rate
        assert d.adaptive_success >= d.pgd_success
        assert d.adaptive_evasion >= d.pgd_success * (1 - d.pgd_detected) - 1e-9
    squeeze = next(d for d in digits_detection.detections if d.detector == "squeeze")
    energy = next(d for d in digits_detection.detections if d.detector == "energy")
    assert energy.adaptive_detected < energy.pgd_detected
    assert squeeze.adaptive_detected <= squeeze.pgd_detected


def test_report_round_trips_and_declares_its_metrics(digits_detection):
    r = digits_detection
    assert AdversarialDetectionReport.from_dict(json.loads(json.dumps(to_jsonable(r.to_dict())))) == r
    for name in r.metrics():
        assert any(spec.matches(name) for spec in r.METRICS), name
    assert {f.id for f in r.findings} == {f"adaptive:{d.detector}" for d in r.detections
                                          if np.isfinite(d.pgd_detected)}


def test_squeezing_is_refused_on_tables(credit_small, credit_model):
    with pytest.raises(AuditInputError, match="squeeze"):
        detect_adversarial(credit_model, credit_small, detectors=["squeeze"])


def test_detection_runs_from_a_config_into_the_html_report(tmp_path, credit_small, credit_model):
    from audit import run
    from audit.pipeline import AuditConfig

    config = AuditConfig(name="det", analyzers={"adversarial_detection": {"n": 60, "steps": 5,
                                                                          "detectors": ["energy"]}})
    report = run(credit_model, credit_small, config, progress=False)
    assert "adversarial_detection.adaptive_evasion:energy" in report.metrics()
    html = open(report.to_html(str(tmp_path / "r.html"))).read()
    assert "an attack that also lowers the detector" in html
