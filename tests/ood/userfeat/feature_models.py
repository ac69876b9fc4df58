"""Factories whose modules name a feature method (imported by tests/ood/test_named_features.py)."""

from __future__ import annotations

import jax
from flax import linen as nn
from flax import nnx


class LinenTwoTower(nn.Module):
    """Dense-ReLU embedding, then a head; `embed` is the representation the user names."""

    n_classes: int

    def setup(self):
        self.body = nn.Dense(8)
        self.head = nn.Dense(self.n_classes)

    def embed(self, x, train: bool = False):
        return nn.relu(self.body(x)) * (2.0 if train else 1.0)  # the flag must arrive as inference

    def __call__(self, x, train: bool = False):
        return self.head(self.embed(x, train))


class NnxTwoTower(nnx.Module):
    def __init__(self, d: int, k: int, *, rngs: nnx.Rngs):
        self.body = nnx.Linear(d, 6, rngs=rngs)
        self.head = nnx.Linear(6, k, rngs=rngs)

    def embed(self, x):
        return jax.nn.relu(self.body(x))

    def __call__(self, x):
        return self.head(self.embed(x))


def make_linen(n_classes: int) -> LinenTwoTower:
    return LinenTwoTower(n_classes=n_classes)


def make_nnx(input_shape, n_classes: int, rngs: nnx.Rngs) -> NnxTwoTower:
    return NnxTwoTower(int(input_shape[0]), n_classes, rngs=rngs)


def squares(params, x):
    """A plain feature function: called as function(params, x)."""
    return x ** 2
