"""Fixtures for the robustness tests: a tiny model that sees sensitive inputs, a gradient-masked
copy of the digits CNN, and evaluation reports shared by several test files."""

from __future__ import annotations

import jax.numpy as jnp
import pytest

from audit import datasets
from audit.models import Model, train
from audit.robustness import evaluate

FAST = dict(steps=8, square_queries=100, bootstrap=200, min_perturbation_n=40, search_steps=5)


@pytest.fixture(scope="session")
def credit_sensitive():
    """Credit data with sex (one-hot) and age fed to the model."""
    return datasets.load("credit", n=1500, seed=1, include_sensitive=True)


@pytest.fixture(scope="session")
def credit_sensitive_model(credit_sensitive):
    return train("mlp", credit_sensitive, epochs=8, widths=(16,), progress=False, seed=0)


@pytest.fixture(scope="session")
def masked_cnn(digits_cnn):
    """The digits CNN behind input quantisation (round to 4 levels): gradients vanish everywhere,
    the classic gradient-masking 'defence' that white-box attacks fail on."""
    inner = digits_cnn.apply

    def apply(params, x):
        return inner(params, jnp.round(x * 3.0) / 3.0)

    return Model.from_function(apply, digits_cnn.params, input_shape=digits_cnn.input_shape,
                               class_names=digits_cnn.class_names)


@pytest.fixture(scope="session")
def credit_report(credit_small, credit_model):
    """Every default attack on the credit MLP (shared by the evaluate and figure tests)."""
    return evaluate(credit_model, credit_small, n=200, eps=(0.0, 0.1, 0.3, 1.0), batch_size=200, **FAST)


@pytest.fixture(scope="session")
def digits_report(digits, digits_cnn):
    return evaluate(digits_cnn, digits, n=96, eps=(0.0, 0.05, 0.1, 0.2), batch_size=96, **FAST)


@pytest.fixture(scope="session")
def masked_report(digits, masked_cnn):
    # Square gets 300 queries: enough for the black-box attack to get through the masking on any
    # sample of rows (100 left it within a few points of the test's 0.2 margin on some samples)
    return evaluate(masked_cnn, digits, n=96, eps=(0.0, 0.1, 0.2), batch_size=96, **{**FAST, "square_queries": 300})
