"""Credit models for the planted-bias tests: one that sees the biased signal, one that cannot."""

from __future__ import annotations

import pytest

from audit import datasets
from audit.data import _credit, from_pandas
from audit.models import train

N = 8000  # large enough that the planted gap is measured with an interval clear of zero


@pytest.fixture(scope="session")
def credit_sens():
    """Credit with sex and age as model inputs (so the model can learn the label bias)."""
    return datasets.load("credit", n=N, seed=0, include_sensitive=True)


@pytest.fixture(scope="session")
def sens_model(credit_sens):
    return train("mlp", credit_sens, epochs=10, batch_size=128, widths=(32, 16), progress=False, seed=0)


@pytest.fixture(scope="session")
def credit_blind():
    """The same applicants with neither sex nor its proxy `sector` among the inputs."""
    frame = _credit.credit_frame(N, seed=0)
    return from_pandas(frame, target="default", sensitive=["sex", "age"],
                       categorical=["employment", "housing", "purpose"], drop=["sector"],
                       class_names=("no", "yes"), seed=0, name="credit-blind")


@pytest.fixture(scope="session")
def blind_model(credit_blind):
    return train("mlp", credit_blind, epochs=10, batch_size=128, widths=(32, 16), progress=False, seed=0)
