"""A user's own architectures, written without flax-audit: a Linen CNN with batch norm and
dropout (digits), and an NNX residual MLP with one sigmoid logit (binary credit decisions).

The two `make_*` functions are the factories the audit configs name
(`factory: "models:make_cnn"`): they build the architecture, and the audit fills its weights
from the checkpoint that `train.py` wrote with Orbax.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import linen as nn
from flax import nnx


class DigitsCNN(nn.Module):
    """conv-BN-ReLU-maxpool, conv-ReLU-maxpool, dense-ReLU-dropout, logits."""

    n_classes: int
    channels: tuple[int, int] = (8, 16)
    hidden: int = 32
    dropout: float = 0.2

    @nn.compact
    def __call__(self, x, train: bool = False):
        x = nn.Conv(self.channels[0], (3, 3))(x)
        x = nn.BatchNorm(use_running_average=not train, momentum=0.9)(x)
        x = nn.max_pool(nn.relu(x), (2, 2), strides=(2, 2))
        x = nn.Conv(self.channels[1], (3, 3))(x)
        x = nn.max_pool(nn.relu(x), (2, 2), strides=(2, 2))
        x = x.reshape(x.shape[0], -1)
        x = nn.Dropout(self.dropout, deterministic=not train)(nn.relu(nn.Dense(self.hidden)(x)))
        return nn.Dense(self.n_classes)(x)


class ResidualMLP(nnx.Module):
    """in -> hidden, `blocks` residual blocks h + W2 relu(W1 h) with dropout, one logit."""

    def __init__(self, in_features: int, hidden: int = 32, blocks: int = 2, dropout: float = 0.1, *,
                 rngs: nnx.Rngs):
        self.stem = nnx.Linear(in_features, hidden, rngs=rngs)
        self.inner = nnx.List([nnx.Linear(hidden, hidden, rngs=rngs) for _ in range(blocks)])
        self.outer = nnx.List([nnx.Linear(hidden, hidden, rngs=rngs) for _ in range(blocks)])
        self.dropout = nnx.Dropout(dropout, rngs=rngs)
        self.head = nnx.Linear(hidden, 1, rngs=rngs)

    def embed(self, x: jax.Array) -> jax.Array:
        """The representation the head reads (the audit's OOD detectors use it: `features: embed`)."""
        h = jax.nn.relu(self.stem(x))
        for inner, outer in zip(self.inner, self.outer):
            h = h + outer(self.dropout(jax.nn.relu(inner(h))))
        return jax.nn.relu(h)

    def __call__(self, x: jax.Array) -> jax.Array:
        return self.head(self.embed(x))[:, 0]  # one logit per row: P(class 1) = sigmoid


def make_cnn(n_classes: int, hidden: int = 32) -> DigitsCNN:
    """Factory for the audit: the Linen CNN (the input shape comes from the data)."""
    return DigitsCNN(n_classes=n_classes, hidden=hidden)


def make_mlp(input_shape: tuple[int, ...], rngs: nnx.Rngs, hidden: int = 32, blocks: int = 2) -> ResidualMLP:
    """Factory for the audit: the NNX residual MLP for inputs of `input_shape`."""
    return ResidualMLP(int(jnp.prod(jnp.array(input_shape))), hidden, blocks, rngs=rngs)
