"""Fixtures for the robustness tests: a tiny model that sees sensitive inputs, and a gradient-masked
copy of the digits CNN."""

from __future__ import annotations

import jax.numpy as jnp
import pytest

from audit import datasets
from audit.models import Model, train


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
