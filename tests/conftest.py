"""Shared fixtures: small data sets and small trained models, built once per test session."""

from __future__ import annotations

import os

import jax.numpy as jnp
import numpy as np
import pytest

from audit import datasets
from audit.models import Model, train

os.environ.setdefault("AUDIT_COMPILE_CACHE", "off")  # tests calling `audit run` in-process stay hermetic


@pytest.fixture(scope="session")
def credit_small():
    """3,000 rows of the synthetic credit data (same planted truths as the full set)."""
    return datasets.load("credit", n=3000, seed=0)


@pytest.fixture(scope="session")
def credit_model(credit_small):
    """A small MLP trained for a few epochs on `credit_small` (test accuracy ~0.93, majority 0.90)."""
    return train("mlp", credit_small, epochs=30, batch_size=64, widths=(32, 16), progress=False, seed=0)


@pytest.fixture(scope="session")
def digits():
    """scikit-learn's 8x8 digits as (n, 8, 8, 1) images in [0, 1]."""
    return datasets.load("digits", seed=0)


@pytest.fixture(scope="session")
def digits_cnn(digits):
    """A tiny zoo CNN (with the custom max-pool) trained on digits (~0.96 test accuracy)."""
    return train("cnn", digits, epochs=25, channels=(8, 16), hidden=32, progress=False, seed=0)


@pytest.fixture(scope="session")
def linear_model():
    """A two-class linear model on 5 inputs with known weights: logits = [0, x @ w + b]."""
    w = np.array([1.5, -2.0, 0.5, 0.0, 3.0], np.float32)
    params = {"w": jnp.asarray(w), "b": jnp.asarray(0.25, jnp.float32)}

    def apply(p, x):
        z = x @ p["w"] + p["b"]
        return jnp.stack([jnp.zeros_like(z), z], axis=-1)

    return Model.from_function(apply, params, input_shape=(5,), class_names=("neg", "pos"))
