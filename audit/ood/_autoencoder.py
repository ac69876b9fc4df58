"""An autoencoder trained with Optax on the training inputs; its reconstruction error is an OOD score.

Tabular data: an MLP (inputs -> 64 -> 16 -> 64 -> inputs). Images: a small convolutional one
(two stride-2 convolutions down, two transposed convolutions up). Seeded, full-batch-free
mini-batch Adam; the score is the mean squared error per row, computed in padded batches.
"""

from __future__ import annotations

import functools
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from audit.models._batching import step_blocks


class _DenseAE(nnx.Module):
    def __init__(self, d: int, *, rngs: nnx.Rngs):
        self.enc1, self.enc2 = nnx.Linear(d, 64, rngs=rngs), nnx.Linear(64, 16, rngs=rngs)
        self.dec1, self.dec2 = nnx.Linear(16, 64, rngs=rngs), nnx.Linear(64, d, rngs=rngs)

    def __call__(self, x):
        shape = x.shape
        h = x.reshape(shape[0], -1)
        h = jax.nn.relu(self.enc2(jax.nn.relu(self.enc1(h))))
        return self.dec2(jax.nn.relu(self.dec1(h))).reshape(shape)


class _ConvAE(nnx.Module):
    def __init__(self, channels: int, *, rngs: nnx.Rngs):
        self.down1 = nnx.Conv(channels, 16, kernel_size=(3, 3), strides=(2, 2), rngs=rngs)
        self.down2 = nnx.Conv(16, 32, kernel_size=(3, 3), strides=(2, 2), rngs=rngs)
        self.up1 = nnx.ConvTranspose(32, 16, kernel_size=(3, 3), strides=(2, 2), rngs=rngs)
        self.up2 = nnx.ConvTranspose(16, channels, kernel_size=(3, 3), strides=(2, 2), rngs=rngs)

    def __call__(self, x):
        h = jax.nn.relu(self.down2(jax.nn.relu(self.down1(x))))
        out = self.up2(jax.nn.relu(self.up1(h)))
        return out[:, :x.shape[1], :x.shape[2], :]


@functools.lru_cache(maxsize=8)
def _initializer(use_conv: bool, size: int):
    """(graphdef, jitted key -> initial state): one compiled initialisation per architecture,
    the same weights as building the module eagerly with `nnx.Rngs(seed)` (whose key is `jax.random.key(seed)`), without compiling
    each initializer op separately."""
    def build(key):
        rngs = nnx.Rngs(key)
        return _ConvAE(size, rngs=rngs) if use_conv else _DenseAE(size, rngs=rngs)

    graphdef = nnx.graphdef(nnx.eval_shape(lambda: build(jax.random.key(0))))
    return graphdef, jax.jit(lambda key: nnx.state(build(key)))


def fit_autoencoder(x: np.ndarray, *, kind: str, seed: int, epochs: int = 20, batch_size: int = 128,
                    learning_rate: float = 1e-3) -> Callable[[np.ndarray], np.ndarray]:
    """Train on `x`; return rows -> reconstruction MSE (float64 numpy)."""
    x = np.asarray(x, np.float32)
    use_conv = kind == "image" and x.ndim == 4 and min(x.shape[1:3]) >= 8
    graphdef, init = _initializer(use_conv, int(x.shape[-1]) if use_conv else int(np.prod(x.shape[1:])))
    params = init(jax.random.key(seed))
    optimizer = optax.adam(learning_rate)
    state = optimizer.init(params)

    def loss(p, batch):
        return jnp.mean((nnx.merge(graphdef, p)(batch) - batch) ** 2)

    @jax.jit
    def step(p, s, batch):
        value, grads = jax.value_and_grad(loss)(p, batch)
        updates, s = optimizer.update(grads, s, p)
        return optax.apply_updates(p, updates), s, value

    @jax.jit
    def steps(p, s, batches, count):
        """The first `count` steps of a block of batches as one compiled loop (flat rows: the
        per-step dispatch costs more than the step); one block length, one compile."""
        return jax.lax.fori_loop(0, count, lambda i, carry: step(*carry, batches[i])[:2], (p, s))

    size = min(batch_size, len(x))
    n_steps = len(x) // size  # full batches only: one compiled shape
    order_rng = np.random.default_rng(seed)
    for _ in range(epochs):
        order = order_rng.permutation(len(x))[: n_steps * size].reshape(n_steps, size)
        if use_conv:  # conv nets: a host loop over one jitted step is faster on CPU than a compiled loop
            for rows in order:
                params, state, _ = step(params, state, x[rows])
        else:
            for _, count, rows in step_blocks(order, x[0].nbytes):
                params, state = steps(params, state, x[rows], np.int32(count))

    @jax.jit
    def errors(p, batch):
        diff = nnx.merge(graphdef, p)(batch) - batch
        return jnp.mean(diff.reshape(diff.shape[0], -1) ** 2, axis=1)

    def score(rows: np.ndarray) -> np.ndarray:
        rows = np.asarray(rows, np.float32)
        n = len(rows)
        padded = np.zeros(((n + size - 1) // size * size, *x.shape[1:]), np.float32)
        padded[:n] = rows
        return np.concatenate([np.asarray(errors(params, padded[i:i + size]), np.float64)
                               for i in range(0, len(padded), size)])[:n]

    return score
