"""MNIST against uniform noise: the issue's reference check on a real-sized image model (slow)."""

from __future__ import annotations

import pytest

from audit import datasets, ood
from audit.models import train


@pytest.mark.slow
def test_mnist_vs_uniform_noise_energy_and_mahalanobis_separate():
    data = datasets.load("mnist", seed=0)
    model = train("cnn", data, epochs=5, progress=False, seed=0)
    r = ood.evaluate(model, data, n=500, detectors=["energy", "mahalanobis", "msp"], shifts=["uniform_noise"],
                     n_bootstrap=100)
    assert r.features == "penultimate"
    assert r.separation("energy", "uniform_noise").auroc > 0.95
    assert r.separation("mahalanobis", "uniform_noise").auroc > 0.95
