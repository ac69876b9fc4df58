"""Small saved audit reports (credit: tabular, two classes, sensitive attributes; digits:
images, ten classes) with their model checkpoints, for the dashboard tests."""

from __future__ import annotations

import os

import pytest

from audit import run
from audit.pipeline import AuditConfig


def _save(tmp, name, model, data_section, analyzers, policy=()):
    folder = tmp / name
    model_dir = str(folder / "model")
    model.save(model_dir)
    config = AuditConfig(name=name, seed=0, data=data_section, model={"path": model_dir}, analyzers=analyzers,
                         policy=policy)
    return config, folder


@pytest.fixture(scope="session")
def credit_report(tmp_path_factory, credit_small, credit_model):
    """Path of a saved credit report: imbalance, fairness, robustness (tiny settings)."""
    config, folder = _save(
        tmp_path_factory.mktemp("dash"), "credit-small", credit_model,
        {"dataset": "credit", "options": {"n": 3000}},
        {"imbalance": {}, "fairness": {"n_bootstrap": 50, "proxies": False},
         "robustness": {"n": 40, "eps": [0.1, 0.5], "attacks": ["fgsm", "pgd"], "steps": 5,
                        "min_perturbation_n": 0, "bootstrap": 50, "impute_k": []},
         "ood": {"n": 200, "autoencoder_epochs": 3, "n_bootstrap": 50,
                 "detectors": ["msp", "energy", "mahalanobis", "knn"]}},
        policy=({"metric": "fairness.disparate_impact:sex", "min": 0.8},))
    report = run(credit_model, credit_small, config, progress=False)
    return report.to_json(os.path.join(folder, "report.json"))


@pytest.fixture(scope="session")
def digits_report(tmp_path_factory, digits, digits_cnn):
    """Path of a saved digits report: imbalance and robustness (tiny settings)."""
    config, folder = _save(
        tmp_path_factory.mktemp("dash"), "digits-small", digits_cnn, {"dataset": "digits"},
        {"imbalance": {}, "robustness": {"n": 30, "eps": [0.05, 0.2], "attacks": ["fgsm"],
                                         "min_perturbation_n": 0, "bootstrap": 50}})
    report = run(digits_cnn, digits, config, progress=False)
    return report.to_json(os.path.join(folder, "report.json"))
