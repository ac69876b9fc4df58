"""Randomized smoothing: a certified L2 radius for the Gaussian-smoothed classifier.

Cohen, Rosenfeld & Kolter, "Certified adversarial robustness via randomized smoothing" (ICML 2019).
The smoothed classifier g(x) = argmax_c P(f(x + d) = c), d ~ N(0, sigma^2 I), predicts the same
class within L2 radius sigma * Phi^-1(p_A) whenever p_A, the top-class probability, is above
1/2. CERTIFY picks the class from n0 samples, lower-bounds p_A with a one-sided Clopper-Pearson
interval from n fresh samples, and abstains when that bound is not above 1/2. PREDICT returns
the top class only if a binomial test separates it from the runner-up at level alpha.

Noise is drawn per example from `fold_in(key, row)`, so a result never depends on batching;
counting runs inside `jit` over chunks of samples (`lax.fori_loop`), vectorised over examples.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np
from scipy import stats

from audit.errors import AuditInputError
from audit.models._batching import padded_batches
from audit.models._xla import jit as xla_jit

ABSTAIN = -1
SAMPLE_CHUNK = 128  # noise samples per example per forward pass


@functools.partial(xla_jit, kind="forward", static_argnums=(0, 6, 7))
def _count(apply_fn: Callable, params, x, keys, sigma_mask, n: jax.Array, chunk: int, k: int):
    """Class counts (b, k) of f(x + sigma * mask * N(0, I)) over n samples per example. `n` is
    traced, so every sample count shares one compile; samples past `n` in the last chunk are
    drawn but not counted."""
    steps = (n + chunk - 1) // chunk

    def body(i, counts):
        noise = jax.vmap(lambda kk: jax.random.normal(jax.random.fold_in(kk, i), (chunk,) + x.shape[1:]))(keys)
        points = x[:, None] + noise * sigma_mask  # (b, chunk, ...)
        logits = apply_fn(params, points.reshape((-1,) + x.shape[1:]))
        pred = jnp.argmax(logits, axis=-1).reshape(x.shape[0], chunk)
        valid = (i * chunk + jnp.arange(chunk)) < n
        return counts + jnp.sum(jax.nn.one_hot(pred, k, dtype=jnp.int32) * valid[None, :, None], axis=1)

    return jax.lax.fori_loop(0, steps, body, jnp.zeros((x.shape[0], k), jnp.int32))


def _check(model, x, sigma, n, alpha, mutable):
    x = np.asarray(x, np.float32)
    if x.ndim < 2 or x.shape[1:] != tuple(model.input_shape):
        raise AuditInputError(f"smoothing: x has shape {x.shape}; the model takes (n, "
                              f"{', '.join(map(str, model.input_shape))}).")
    if not np.isfinite(x).all():
        raise AuditInputError("smoothing: x has NaN or infinite values.")
    if not (np.isfinite(sigma) and sigma > 0):
        raise AuditInputError(f"smoothing: sigma must be a positive number (noise std), got {sigma}.")
    if int(n) != n or n < 1:
        raise AuditInputError(f"smoothing: sample counts must be positive integers, got {n}.")
    if not 0 < alpha < 0.5:
        raise AuditInputError(f"smoothing: alpha must be in (0, 0.5) (failure probability), got {alpha}.")
    mask = np.ones(model.input_shape, np.float32) if mutable is None else np.asarray(mutable, np.float32)
    if mask.shape != tuple(model.input_shape):
        raise AuditInputError(f"smoothing: the mutable mask has shape {mask.shape}; expected {model.input_shape}.")
    return x, mask


def class_counts(model, x, *, sigma: float, n: int, key: jax.Array, mutable=None, rows=None,
                 batch_size: int = 64, max_points: int = 8192) -> np.ndarray:
    """How often each class wins among `n` Gaussian-noised copies of each row (n_rows, n_classes).

    Noise of std `sigma` goes on mutable inputs only (`mutable`: 0/1 mask of the input shape).
    Row i draws from `fold_in(key, rows[i])` (rows defaults to 0..n_rows-1). At most
    `max_points` model inputs go through one forward pass (fewer rows per batch if needed);
    samples are drawn in chunks of SAMPLE_CHUNK, so results do not depend on the batch size.
    """
    x, mask = _check(model, x, sigma, n, 0.01, mutable)
    rows = np.arange(len(x)) if rows is None else np.asarray(rows)
    if len(x) == 0:
        return np.zeros((0, model.n_classes), np.int64)
    # One chunk size for every n: a row's noise never depends on batching, and the selection (n0) and
    # estimation (n) passes share one compile. Draws are counter-based (threefry, partitionable),
    # so the first n samples of a longer chunk are the very samples a chunk of n would draw.
    chunk = SAMPLE_CHUNK
    batch = max(1, min(int(batch_size), max(1, int(max_points) // chunk), len(x)))  # one shape for any row count
    sm = jnp.asarray(mask * sigma, jnp.float32)

    def run(xb, rb):
        keys = jax.vmap(lambda r: jax.random.fold_in(key, r))(jnp.asarray(rb, jnp.uint32))
        return _count(model.apply, model.params, jnp.asarray(xb), keys, sm, jnp.int32(n), chunk, model.n_classes)

    return padded_batches(run, [x, rows], batch).astype(np.int64)


def clopper_pearson_lower(successes: np.ndarray, trials: int, alpha: float) -> np.ndarray:
    """One-sided (1 - alpha) Clopper-Pearson lower confidence bound of a binomial proportion."""
    s = np.asarray(successes, np.float64)
    out = stats.beta.ppf(alpha, np.maximum(s, 1), trials - s + 1)
    return np.where(s > 0, out, 0.0)


@dataclasses.dataclass(frozen=True)
class SmoothingCertificate:
    """Per example: the smoothed `prediction` (-1 = abstain), the certified L2 `radius` (0 when
    abstaining), the lower bound `p_lower` of the top-class probability and the winning count."""

    prediction: np.ndarray
    radius: np.ndarray
    p_lower: np.ndarray
    count: np.ndarray
    sigma: float
    n0: int
    n: int
    alpha: float

    def certified(self, y, eps: float) -> np.ndarray:
        """True where the smoothed classifier is correct and certified at L2 radius >= eps."""
        return (self.prediction == np.asarray(y)) & (self.radius >= eps) & (self.prediction != ABSTAIN)


def certify_smoothed(model, x, *, sigma: float = 0.25, n0: int = 100, n: int = 1000, alpha: float = 0.001,
                     seed: int = 0, mutable=None, batch_size: int = 64,
                     max_points: int = 8192) -> SmoothingCertificate:
    """Cohen et al.'s CERTIFY for each row of x: prediction and certified L2 radius.

    With probability at least 1 - alpha per example, the smoothed classifier (noise std `sigma`
    on mutable inputs) returns `prediction` at every point within `radius` (L2) of the row.
    """
    x, mask = _check(model, x, sigma, n0, alpha, mutable)
    _check(model, x, sigma, n, alpha, mutable)
    key = jax.random.key(seed)
    common = dict(sigma=sigma, mutable=mask, batch_size=batch_size, max_points=max_points)
    select = class_counts(model, x, n=int(n0), key=jax.random.fold_in(key, 0), **common)
    top = select.argmax(axis=1)
    counts = class_counts(model, x, n=int(n), key=jax.random.fold_in(key, 1), **common)
    n_a = counts[np.arange(len(x)), top] if len(x) else np.zeros(0, np.int64)
    p_lower = clopper_pearson_lower(n_a, int(n), alpha)
    ok = p_lower > 0.5
    radius = np.where(ok, sigma * stats.norm.ppf(np.clip(p_lower, 0.5, 1.0)), 0.0)
    return SmoothingCertificate(prediction=np.where(ok, top, ABSTAIN).astype(np.int64),
                                radius=radius.astype(np.float64), p_lower=p_lower.astype(np.float64),
                                count=n_a.astype(np.int64), sigma=float(sigma), n0=int(n0), n=int(n),
                                alpha=float(alpha))


def predict_smoothed(model, x, *, sigma: float = 0.25, n: int = 1000, alpha: float = 0.001, seed: int = 0,
                     mutable=None, batch_size: int = 64, max_points: int = 8192) -> np.ndarray:
    """Cohen et al.'s PREDICT: the smoothed class, or -1 (abstain) when a two-sided binomial test
    cannot tell the top two classes apart at level alpha."""
    x, mask = _check(model, x, sigma, n, alpha, mutable)
    counts = class_counts(model, x, sigma=sigma, n=int(n), key=jax.random.fold_in(jax.random.key(seed), 2),
                          mutable=mask, batch_size=batch_size, max_points=max_points)
    order = np.argsort(-counts, axis=1, kind="stable")
    n_a = np.take_along_axis(counts, order[:, :1], 1)[:, 0]
    n_b = np.take_along_axis(counts, order[:, 1:2], 1)[:, 0]
    p_value = np.minimum(1.0, 2 * stats.binom.sf(n_a - 1, n_a + n_b, 0.5))
    return np.where(p_value <= alpha, order[:, 0], ABSTAIN).astype(np.int64)
