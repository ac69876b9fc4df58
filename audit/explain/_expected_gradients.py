"""Expected gradients: SHAP values for differentiable models from gradients.

phi(x) = E_{b ~ background, a ~ U(0,1)} [ (x - b) * grad f(b + a (x - b)) ]
(Erion et al. 2021, "Improving performance of deep learning models with axiomatic attribution
priors and expected gradients"; the algorithm of shap's GradientExplainer, which has no JAX
support). Efficiency holds in expectation; the error shrinks with `n_samples`.

Variance reduction: background rows are visited in shuffled full cycles (each row used
equally often) and interpolation points are stratified over [0, 1]. The draws depend only on
the seed and are shared by all examples, so one example gets the same values alone or in a batch.
"""

from __future__ import annotations

import functools
from typing import Callable

import jax
import numpy as np

from audit import parallel
from audit.explain._players import output_fn
from audit.models._xla import jit as xla_jit


def draws(n_samples: int, n_background: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Background row per sample (full shuffled cycles) and stratified interpolation points."""
    rng = np.random.default_rng(seed)
    cycles = -(-n_samples // n_background)
    rows = np.concatenate([rng.permutation(n_background) for _ in range(cycles)])[:n_samples]
    alphas = (np.arange(n_samples) + rng.random(n_samples)) / n_samples
    return rows, rng.permutation(alphas)


@functools.lru_cache(maxsize=32)
def _step(apply: Callable, output: str, input_shape: tuple[int, ...], treedef) -> Callable:
    """Jitted: a block of examples x one chunk of samples -> summed (x - b) * gradient.
    Params come in as flat leaves (flattening e.g. an NNX State per call is slow)."""
    out_fn = output_fn(apply, output)

    def one(params, x, cls, base, alphas, keep):
        points = base + alphas[:, None] * (x[None, :] - base)

        def total(pts):
            out = out_fn(params, pts.reshape((len(pts), *input_shape)))
            return (out[:, cls] * keep).sum()

        grads = jax.grad(total)(points)
        return ((x[None, :] - base) * grads).sum(axis=0)

    def step(leaves, xs, cls, base, alphas, keep):
        params = jax.tree_util.tree_unflatten(treedef, leaves)
        return jax.vmap(one, in_axes=(None, 0, 0, None, None, None))(params, xs, cls, base, alphas, keep)

    return xla_jit(step)


def expected_gradients(model, x: np.ndarray, cls: np.ndarray, background: np.ndarray, *,
                       n_samples: int, seed: int, output: str, chunk_rows: int) -> np.ndarray:
    """Attributions per flat input (n, d): the mean over `n_samples` of (x - b) * gradient."""
    n, d = x.shape
    rows, alphas = draws(n_samples, len(background), seed)
    per_s = min(n_samples, chunk_rows)
    s_pad = -(-n_samples // per_s) * per_s
    base = np.zeros((s_pad, d), np.float32)
    base[:n_samples] = background[rows]
    alpha = np.zeros(s_pad, np.float32)
    alpha[:n_samples] = alphas
    keep = (np.arange(s_pad) < n_samples).astype(np.float32)
    per_x = parallel.round_up(max(1, min(n, chunk_rows // per_s)))  # example blocks split over the mesh
    x_pad = -(-n // per_x) * per_x
    xs = np.zeros((x_pad, d), np.float32)
    xs[:n] = x
    cs = np.zeros(x_pad, np.int32)
    cs[:n] = cls
    leaves, treedef = jax.tree_util.tree_flatten(model.params)
    step = _step(model.apply, output, tuple(model.input_shape), treedef)
    lv, base_d, alpha_d, keep_d = parallel.replicate((tuple(leaves), base, alpha, keep))

    def block(xb, cb):
        acc = None
        for j in range(0, s_pad, per_s):
            part = step(lv, xb, cb, base_d[j:j + per_s], alpha_d[j:j + per_s], keep_d[j:j + per_s])
            acc = part if acc is None else acc + part
        return acc

    out = parallel.map_chunks(block, [xs, cs], per_x)
    return np.concatenate(out).astype(np.float64)[:n] / n_samples
