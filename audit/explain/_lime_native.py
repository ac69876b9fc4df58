"""Native JAX LIME for tabular data: lime's continuous-mode sampling and kernel, weighted ridge.

Same estimator as `lime.lime_tabular.LimeTabularExplainer(discretize_continuous=False)` with all
columns kept (Ribeiro et al. 2016): numeric columns are drawn from N(train mean, train std)
(lime's `sample_around_instance=False`), categorical columns from their training frequencies and
turned into "same category as the instance" indicators; distances on standardised columns;
kernel sqrt(exp(-d^2 / width^2)) with width 0.75 sqrt(d); ridge (alpha 1) with intercept,
weighted by the kernel. Sampling, model evaluation and the fit run for many explanations in
one jitted, vmapped call; the draws come from numpy on the host (other streams than lime's).
Categorical codes are drawn by inverse CDF (one uniform per cell).
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from audit.errors import AuditInputError
from audit.explain._attribution import Attribution, probabilities
from audit.explain._lime import RawSpace, raw_space
from audit.explain._saliency import targets
from audit.results import Provenance, timer

MAX_POINTS = 65536  # perturbed rows fitted per call with a shared neighbourhood (bounds memory)
MAX_EVAL_POINTS = 10240  # perturbed rows through the model per call otherwise (cache-sized;
# bigger calls run ~2x slower on CPU, see bench/explain_lime_ig.py)


def lime_statistics(space: RawSpace) -> dict[str, np.ndarray]:
    """lime's training statistics: mean / std per numeric column (population std; 1 when
    constant; 0 / 1 for categorical columns), and per categorical column the cumulative
    frequencies of its category codes (for inverse-CDF sampling)."""
    train = space.train
    mean, scale = train.mean(axis=0), train.std(axis=0)
    scale = np.where(scale > 0, scale, 1.0)
    mean, scale = np.where(space.categorical, 0.0, mean), np.where(space.categorical, 1.0, scale)
    cat = np.flatnonzero(space.categorical)
    width = max([len(space.categories[j]) for j in cat] + [1])
    cdf = np.ones((len(cat), width))
    for i, j in enumerate(cat):
        counts = np.bincount(np.rint(train[:, j]).astype(int), minlength=len(space.categories[j]))
        cdf[i, :len(counts)] = np.cumsum(counts) / counts.sum()
    return {"mean": mean, "scale": scale, "cdf": cdf}


def weighted_ridge(Z: jax.Array, y: jax.Array, w: jax.Array, *, alpha: float):
    """Ridge with intercept on kernel-weighted rows, as scikit-learn's `Ridge(alpha)` with
    `sample_weight=w`: (coef, intercept, weighted R^2)."""
    wsum = w.sum()
    zbar, ybar = (w[:, None] * Z).sum(0) / wsum, (w * y).sum() / wsum
    Zc, yc = Z - zbar, y - ybar
    gram = (Zc * w[:, None]).T @ Zc + alpha * jnp.eye(Z.shape[1], dtype=Z.dtype)
    coef = jax.scipy.linalg.cho_solve(jax.scipy.linalg.cho_factor(gram), (Zc * w[:, None]).T @ yc)
    intercept = ybar - zbar @ coef
    resid = y - (Z @ coef + intercept)
    score = 1.0 - (w * resid ** 2).sum() / jnp.maximum((w * yc ** 2).sum(), 1e-30)
    return coef, intercept, score


def _functions(space: RawSpace, apply, *, num_samples: int, kernel_width: float, alpha: float):
    """(sample(rng) -> raw rows, probs(params, raw) -> class probabilities, fit(...) -> coef)."""
    host = lime_statistics(space)
    stats = {k: jnp.asarray(v, jnp.float32) for k, v in host.items()}
    categorical = jnp.asarray(space.categorical)
    num, cat = np.flatnonzero(~space.categorical), np.flatnonzero(space.categorical)

    def sample(rng: np.random.Generator, count: int = 1) -> np.ndarray:
        """`count` neighbourhoods (count, S, d) from lime's proposal: N(mean, std) numeric, training
        frequencies categorical. Drawn on the host with numpy (cheap, no PRNG kernel to compile)."""
        raw = np.zeros((count, num_samples, space.n_columns), np.float32)
        z = rng.standard_normal((count, num_samples, len(num)))
        raw[..., num] = z * host["scale"][num] + host["mean"][num]
        if len(cat):
            u = rng.random((count, num_samples, len(cat)))
            codes = (u[..., None] >= host["cdf"]).sum(-1)
            raw[..., cat] = np.minimum(codes, host["cdf"].shape[1] - 1)
        return raw

    def probs(params, raw):
        return jax.nn.softmax(apply(params, space.encode_jax(raw)).astype(jnp.float32), axis=-1)

    def fit(raw, y, x, y0):
        """Local ridge for instance x (row 0 of the neighbourhood) with outputs y, y0 at x."""
        raw, y = raw.at[0].set(x), y.at[0].set(y0)
        same = (raw == x).astype(jnp.float32)
        scaled = jnp.where(categorical, same, (raw - stats["mean"]) / stats["scale"])
        d2 = jnp.sum((scaled - scaled[0]) ** 2, axis=1)
        w = jnp.sqrt(jnp.exp(-d2 / kernel_width ** 2))
        coef, intercept, score = weighted_ridge(scaled, y, w, alpha=alpha)
        local = scaled[0] @ coef + intercept
        return coef * scaled[0], {"weights": coef, "intercept": intercept, "score": score,
                                  "local_prediction": local, "output": y0}

    return sample, probs, fit


@functools.lru_cache(maxsize=16)
def _compiled(space: RawSpace, apply, num_samples: int, kernel_width: float, alpha: float):
    sample, probs, fit = _functions(space, apply, num_samples=num_samples,
                                    kernel_width=kernel_width, alpha=alpha)

    @jax.jit
    def shared_fit(raw, P, xs, ts, p0):
        """One shared neighbourhood `raw` with class probabilities P for all instances xs."""
        return jax.vmap(lambda x, t, y0: fit(raw, P[:, t], x, y0))(xs, ts, p0)

    @jax.jit
    def independent_fit(params, raws, xs, ts):
        """One neighbourhood per instance; the model runs inside (S rows per instance)."""
        def one(raw, x, t):
            raw = raw.at[0].set(x)
            y = probs(params, raw)[:, t]
            return fit(raw, y, x, y[0])

        return jax.vmap(one)(raws, xs, ts)

    return sample, shared_fit, independent_fit


def lime_native(model, data, raw: Any, *, target: Any = None, num_samples: int = 5000,
                kernel_width: float | None = None, alpha: float = 1.0, seed: int = 0,
                shared_samples: bool = True, batch_size: int | None = None) -> Attribution:
    """Native JAX LIME for raw tabular rows; one weight per raw column (see module docstring).

    raw: (n, d) raw rows (numeric values, categorical codes), e.g. `data.test.raw[:10]`.
    shared_samples: lime's continuous-mode proposal does not depend on the instance (numeric
        columns are drawn around the training mean; only the kernel weights, the row 0 and the
        categorical "same as instance" indicators do), so by default one neighbourhood drawn
        from `seed` and its model outputs serve every explanation of the call (common random
        numbers: each explanation has exactly lime's distribution, their sampling errors are
        correlated, and an explanation does not depend on which other rows are in the call).
        False draws an independent neighbourhood per example (one numpy stream per call) and
        evaluates the model on each.
    Values are the surrogate's contributions at the instance, weight x standardised value
    (categorical indicators are 1 there); extras: "weights" (lime's coefficients), "intercept",
    "score" (weighted R^2 of the local fit), "local_prediction", "output" (model probability of
    the target class at the instance).
    """
    space = raw_space(model, data)
    raw = space.check_rows(raw)
    if int(num_samples) < 2 or not alpha >= 0:
        raise AuditInputError(f"lime_native needs num_samples >= 2 and alpha >= 0, got "
                              f"{num_samples}, {alpha}.")
    width = float(kernel_width) if kernel_width is not None else 0.75 * np.sqrt(space.n_columns)
    inputs = space.encode(raw)
    t = targets(model, inputs, target)
    n, S = len(raw), int(num_samples)
    bound = MAX_POINTS if shared_samples else MAX_EVAL_POINTS
    chunk = int(batch_size or max(1, bound // S))  # fixed: one compilation for any n
    total = -(-n // chunk) * chunk
    pad = lambda a: np.concatenate([a, np.repeat(a[:1], total - n, axis=0)])
    rows, tp = pad(raw.astype(np.float32)), pad(t)
    with timer() as clock:
        sample, shared_fit, independent_fit = _compiled(space, model.apply, S, width, float(alpha))
        rng = np.random.default_rng(seed)
        if shared_samples:  # the model's own batched predict_proba: nothing new to compile
            shared_raw = sample(rng)[0]
            P = probabilities(model, space.encode(shared_raw)).astype(np.float32)
            p0 = pad(probabilities(model, inputs)[np.arange(n), t].astype(np.float32))
            outs = [shared_fit(shared_raw, P, rows[i:i + chunk], tp[i:i + chunk], p0[i:i + chunk])
                    for i in range(0, total, chunk)]
        else:
            outs = [independent_fit(model.params, sample(rng, chunk), rows[i:i + chunk], tp[i:i + chunk])
                    for i in range(0, total, chunk)]
        outs = jax.device_get(outs)
        values = np.concatenate([o[0] for o in outs])[:n]
        extras = {k: np.concatenate([o[1][k] for o in outs])[:n].astype(np.float64) for k in outs[0][1]}
    settings = {"num_samples": int(num_samples), "kernel_width": width, "alpha": float(alpha),
                "backend": "native", "shared_samples": bool(shared_samples)}
    return Attribution(method="lime", values=values, target=t, level="raw", inputs=raw,
                       feature_names=space.names, extras=extras,
                       provenance=Provenance("lime", settings, seed, clock[0]))
