"""Native JAX LIME for tabular data: lime's continuous-mode sampling and kernel, weighted ridge.

Same estimator as `lime.lime_tabular.LimeTabularExplainer(discretize_continuous=False)` with all
columns kept (Ribeiro et al. 2016): numeric columns are drawn from N(train mean, train std)
(lime's `sample_around_instance=False`), categorical columns from their training frequencies and
turned into "same category as the instance" indicators; distances on standardised columns;
kernel sqrt(exp(-d^2 / width^2)) with width 0.75 sqrt(d); ridge (alpha 1) with intercept,
weighted by the kernel. Sampling, model evaluation and the fit run for many explanations in
one jitted, vmapped call; only the random draws differ from lime's (JAX PRNG, not numpy).
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from audit.errors import AuditInputError
from audit.explain._attribution import Attribution
from audit.explain._lime import RawSpace, raw_space
from audit.explain._saliency import targets
from audit.results import Provenance, timer

MAX_POINTS = 65536  # perturbed rows evaluated per chunk (bounds memory)


def lime_statistics(space: RawSpace) -> dict[str, np.ndarray]:
    """lime's training statistics: mean / std per numeric column (population std; 1 when
    constant), and per categorical column the log frequency of each category code."""
    train = space.train
    mean, scale = train.mean(axis=0), train.std(axis=0)
    scale = np.where(scale > 0, scale, 1.0)
    mean, scale = np.where(space.categorical, 0.0, mean), np.where(space.categorical, 1.0, scale)
    width = max([len(c) for c in space.categories] + [1])
    logfreq = np.full((space.n_columns, width), -np.inf)
    for j in np.flatnonzero(space.categorical):
        counts = np.bincount(np.rint(train[:, j]).astype(int), minlength=len(space.categories[j]))
        with np.errstate(divide="ignore"):
            logfreq[j, :len(counts)] = np.log(counts / counts.sum())
    logfreq[~space.categorical, 0] = 0.0  # unused; keeps the array finite where sampled
    return {"mean": mean, "scale": scale, "logfreq": logfreq}


def weighted_ridge(Z: jax.Array, y: jax.Array, w: jax.Array, *, alpha: float):
    """Ridge with intercept on kernel-weighted rows, as scikit-learn's `Ridge(alpha)` with
    `sample_weight=w`: (coef, intercept, weighted R^2)."""
    wsum = w.sum()
    zbar, ybar = (w[:, None] * Z).sum(0) / wsum, (w * y).sum() / wsum
    Zc, yc = Z - zbar, y - ybar
    gram = (Zc * w[:, None]).T @ Zc + alpha * jnp.eye(Z.shape[1], dtype=Z.dtype)
    coef = jnp.linalg.solve(gram, (Zc * w[:, None]).T @ yc)
    intercept = ybar - zbar @ coef
    resid = y - (Z @ coef + intercept)
    score = 1.0 - (w * resid ** 2).sum() / jnp.maximum((w * yc ** 2).sum(), 1e-30)
    return coef, intercept, score


def _explainer(space: RawSpace, apply, *, num_samples: int, kernel_width: float, alpha: float):
    stats = {k: jnp.asarray(v, jnp.float32) for k, v in lime_statistics(space).items()}
    categorical = jnp.asarray(space.categorical)

    def neighbourhood(key, x):
        """(scaled interpretable rows, raw rows), row 0 the instance, as lime builds them."""
        k_num, k_cat = jax.random.split(key)
        z = jax.random.normal(k_num, (num_samples, space.n_columns))
        numeric = z * stats["scale"] + stats["mean"]
        codes = jax.random.categorical(k_cat, stats["logfreq"], shape=(num_samples, space.n_columns))
        raw = jnp.where(categorical, codes.astype(jnp.float32), numeric).at[0].set(x)
        same = (raw == x).astype(jnp.float32).at[0].set(1.0)
        scaled = jnp.where(categorical, same, (raw - stats["mean"]) / stats["scale"])
        return scaled, raw

    def explain_one(params, key, x, t):
        scaled, raw = neighbourhood(key, x)
        d = jnp.sqrt(jnp.sum((scaled - scaled[0]) ** 2, axis=1))
        w = jnp.sqrt(jnp.exp(-(d ** 2) / kernel_width ** 2))
        prob = jax.nn.softmax(apply(params, space.encode_jax(raw)).astype(jnp.float32), axis=-1)[:, t]
        coef, intercept, score = weighted_ridge(scaled, prob, w, alpha=alpha)
        local = scaled[0] @ coef + intercept
        return coef, {"intercept": intercept, "score": score, "local_prediction": local, "output": prob[0]}

    return jax.jit(jax.vmap(explain_one, in_axes=(None, 0, 0, 0)))


@functools.lru_cache(maxsize=16)
def _cached(space: RawSpace, apply, num_samples: int, kernel_width: float, alpha: float):
    return _explainer(space, apply, num_samples=num_samples, kernel_width=kernel_width, alpha=alpha)


def lime_native(model, data, raw: Any, *, target: Any = None, num_samples: int = 5000,
                kernel_width: float | None = None, alpha: float = 1.0, seed: int = 0,
                batch_size: int | None = None) -> Attribution:
    """Native JAX LIME for raw tabular rows; one weight per raw column (see module docstring).

    raw: (n, d) raw rows (numeric values, categorical codes), e.g. `data.test.raw[:10]`.
    Example i uses the PRNG key `fold_in(PRNGKey(seed), i)`. Extras: "intercept", "score"
    (weighted R^2 of the local fit), "local_prediction", "output" (model probability of the
    target class at the instance).
    """
    space = raw_space(model, data)
    raw = space.check_rows(raw)
    if int(num_samples) < 2 or not alpha >= 0:
        raise AuditInputError(f"lime_native needs num_samples >= 2 and alpha >= 0, got "
                              f"{num_samples}, {alpha}.")
    width = float(kernel_width) if kernel_width is not None else 0.75 * np.sqrt(space.n_columns)
    inputs = space.encode(raw)
    t = targets(model, inputs, target)
    n = len(raw)
    chunk = max(1, min(n, batch_size or MAX_POINTS // int(num_samples)))
    with timer() as clock:
        fn = _cached(space, model.apply, int(num_samples), width, float(alpha))
        base = jax.random.PRNGKey(seed)
        keys = np.asarray(jax.vmap(lambda i: jax.random.fold_in(base, i))(jnp.arange(n)))
        total = -(-n // chunk) * chunk
        pad = lambda a: np.concatenate([a, np.repeat(a[:1], total - n, axis=0)])
        rows, kp, tp = pad(raw.astype(np.float32)), pad(keys), pad(t)
        outs = [fn(model.params, kp[i:i + chunk], rows[i:i + chunk], tp[i:i + chunk])
                for i in range(0, total, chunk)]
        values = np.asarray(jnp.concatenate([o[0] for o in outs]))[:n]
        extras = {k: np.asarray(jnp.concatenate([o[1][k] for o in outs]))[:n].astype(np.float64)
                  for k in outs[0][1]}
    settings = {"num_samples": int(num_samples), "kernel_width": width, "alpha": float(alpha),
                "backend": "native"}
    return Attribution(method="lime", values=values, target=t, level="raw", inputs=raw,
                       feature_names=space.names, extras=extras,
                       provenance=Provenance("lime", settings, seed, clock[0]))
