"""Native JAX LIME for tabular data: lime's continuous-mode sampling and kernel, weighted ridge.

Same estimator as `lime.lime_tabular.LimeTabularExplainer(discretize_continuous=False)` with all
columns kept (Ribeiro et al. 2016): numeric columns are drawn from N(train mean, train std)
(lime's `sample_around_instance=False`), categorical columns from their training frequencies and
turned into "same category as the instance" indicators; distances on standardised columns;
kernel sqrt(exp(-d^2 / width^2)) with width 0.75 sqrt(d); ridge (alpha 1) with intercept,
weighted by the kernel.

Sampling (other streams than lime's): the host draws uniform 32-bit words with one call of a
numpy generator's raw bits, one word per sample and column; the jitted code turns a numeric
column's word into a normal by inverse CDF, sqrt(2) erfinv((2k + 1) / 2^23 - 1) with k its top
23 bits (the map of `jax.random.normal`, at cell midpoints), and a categorical column's word
into a code by inverse CDF on the training frequencies (`category_thresholds`: exact to 2^-32,
no gather from the training rows). On CPU, 5000 x 10 words cost ~0.04 ms of host bits this way,
against ~0.25 ms for the 5000 x 6 normals alone from numpy's ziggurat and ~0.5 ms from
`jax.random`'s threefry in the call. Everything after the draw (normals, codes, model inputs,
kernel, model, fit) runs for many explanations in one jitted, vmapped call, column-major
(columns x samples, so reductions run along the long axis; reductions over a few columns are
unrolled), dispatched asynchronously so the host draws the next rows while the device works. Per
explanation on the zoo credit MLP (bench/explain_lime_ig.py) the call costs ~1.4x the bare model
on its 5,000 rows: the rest is the normals (`normal`), the encoding to model inputs and the 11 x
11 weighted Gram matrix.
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from audit import parallel
from audit.errors import AuditInputError
from audit.explain._attribution import Attribution, check_seed
from audit.explain._lime import RawSpace, raw_space
from audit.explain._saliency import targets
from audit.results import Provenance, timer
from audit.models._xla import jit as xla_jit

MAX_POINTS = 65536  # perturbed rows fitted per call with a shared neighbourhood (bounds memory)
MAX_EVAL_POINTS = 20480  # perturbed rows through the model per call otherwise (cache-sized;
# bigger calls run slower on CPU, see bench/explain_lime_ig.py)


def lime_statistics(space: RawSpace) -> dict[str, np.ndarray]:
    """lime's training statistics: mean / std per numeric column (population std; 1 when
    constant; 0 / 1 for categorical columns), and the training rows' category codes of the
    categorical columns (n_train, n_categorical), which sampling draws from."""
    train = space.train
    mean, scale = train.mean(axis=0), train.std(axis=0)
    scale = np.where(scale > 0, scale, 1.0)
    mean, scale = np.where(space.categorical, 0.0, mean), np.where(space.categorical, 1.0, scale)
    codes = np.rint(train[:, space.categorical]).astype(np.int32)
    return {"mean": mean, "scale": scale, "codes": codes}


def draw(rng: np.random.Generator | np.random.BitGenerator, space: RawSpace,
         num_samples: int) -> tuple[np.ndarray, np.ndarray]:
    """One neighbourhood of S samples in compact, column-major form: uniform 32-bit words, (numeric,
    S) for the numeric columns (see `normal`) and (categorical, S) for the categorical ones (see
    `category_thresholds`), from one call of the generator's raw bits."""
    n_num, d = int((~space.categorical).sum()), space.n_columns
    words = _words(getattr(rng, "bit_generator", rng), d * num_samples).reshape(d, num_samples)
    return words[:n_num], words[n_num:]


def _words(bit_generator: np.random.BitGenerator, m: int) -> np.ndarray:
    """m uniform 32-bit words: the generator's next ceil(m / 2) raw 64-bit outputs, split."""
    return bit_generator.random_raw(-(-m // 2)).view(np.uint32)[:m]


def draw_rows(seed: int, rows: np.ndarray, space: RawSpace, num_samples: int) -> np.ndarray:
    """`draw` for each row from its own stream (`_row_rng`), as one (rows, d, S) array of words
    (numeric columns first): the same words, without a stacking copy."""
    d = space.n_columns
    out = np.empty((len(rows), d * num_samples), np.uint32)
    for i, row in enumerate(rows):
        out[i] = _words(_row_rng(seed, row), d * num_samples)
    return out.reshape(len(rows), d, num_samples)


def category_thresholds(space: RawSpace) -> list[np.ndarray]:
    """Per categorical column, the uint32 thresholds T_k = ceil(2^32 F(k)) for k >= 1, F(k) the
    training share of codes below k: a uniform word u takes code #{k: u >= T_k} (inverse CDF), so
    each code has its training frequency to within 2^-32 (finer than the 2^-23 cells of `normal`).
    Codes past the last one seen in training get no threshold (they are never drawn)."""
    out = []
    for j, codes in zip(np.flatnonzero(space.categorical), lime_statistics(space)["codes"].T):
        counts = np.bincount(codes, minlength=len(space.categories[j]))
        n, cum = int(counts.sum()), np.cumsum(counts)[:-1].tolist()
        out.append(np.array([-(-(c << 32) // n) for c in cum if c < n], np.uint32))
    return out


# Giles' single-precision erfinv ("Approximating the erfinv function", GPU Computing Gems, 2010):
# polynomials in w - 2.5 (central, w < 5) and sqrt(w) - 3 (tails), w = -log(1 - v^2)
_ERFINV_CENTRAL = (2.81022636e-08, 3.43273939e-07, -3.5233877e-06, -4.39150654e-06, 0.00021858087,
                   -0.00125372503, -0.00417768164, 0.246640727, 1.50140941)
_ERFINV_TAIL = (-0.000200214257, 0.000100950558, 0.00134934322, -0.00367342844, 0.00573950773,
                -0.0076224613, 0.00943887047, 1.00167406, 2.83297682)


def normal(bits: jax.Array) -> jax.Array:
    """Standard normals from uniform 32-bit words by inverse CDF on the top 23 bits (midpoints,
    so the map is symmetric and finite: |z| <= 5.3): sqrt(2) erfinv(v), v = (2k + 1) / 2^23 - 1.

    Giles' erfinv, as XLA's `erf_inv`, but with w = -log((1 - v)(1 + v)) from the two factors
    (exact in float32 for these v) instead of log1p(-v^2) and no |v| = 1 case: ~30% faster on
    CPU and within 3e-7 of the float64 quantile (XLA's: 6e-6)."""
    k = jax.lax.shift_right_logical(bits, jnp.uint32(9)).astype(jnp.int32)
    v = (2 * k + 1 - (1 << 23)).astype(jnp.float32) * (1.0 / (1 << 23))  # exact, in (-1, 1)
    w = -jnp.log((1.0 - v) * (1.0 + v))
    central = w < 5.0
    w = jnp.where(central, w - 2.5, jnp.sqrt(w) - 3.0)
    p = jnp.where(central, np.float32(_ERFINV_CENTRAL[0]), np.float32(_ERFINV_TAIL[0]))
    for a, b in zip(_ERFINV_CENTRAL[1:], _ERFINV_TAIL[1:]):
        p = jnp.where(central, np.float32(a), np.float32(b)) + p * w
    return np.float32(np.sqrt(2.0)) * (p * v)


def weighted_ridge(A: jax.Array, w: jax.Array, *, alpha: float):
    """Ridge with intercept on kernel-weighted samples, as scikit-learn's `Ridge(alpha)` with
    `sample_weight=w`, from one weighted Gram matrix. A: (d + 1, S), the d regressors then the
    target, one column per sample. Returns (coef, intercept, weighted R^2).

    One pass: the Gram matrix of [(A - a0) sqrt(w); sqrt(w)] holds the weighted moments of A about
    its first column a0 (the instance, near which the kernel-weighted mean lies, so removing the
    mean afterwards cancels little: coefficients within ~1e-5 of float64, where a pass to find
    the mean first gives ~1e-6, against Monte Carlo noise of ~1e-2)."""
    r = jnp.sqrt(w)
    B = jnp.concatenate([(A - A[:, :1]) * r, r[None]])
    G = B @ B.T
    sw, s = G[-1, -1], G[:-1, -1]
    M = G[:-1, :-1] - jnp.outer(s, s) / sw
    mean = A[:, 0] + s / sw
    d = A.shape[0] - 1
    gram, zy, yy = M[:d, :d], M[:d, d], M[d, d]
    coef = jax.scipy.linalg.cho_solve(
        jax.scipy.linalg.cho_factor(gram + alpha * jnp.eye(d, dtype=A.dtype)), zy)
    intercept = mean[d] - mean[:d] @ coef
    ssr = yy - 2 * coef @ zy + coef @ gram @ coef  # weighted sum of squared residuals
    return coef, intercept, 1.0 - ssr / jnp.maximum(yy, 1e-30)


def _functions(space: RawSpace, apply, *, kernel_width: float, alpha: float):
    """Column-major pieces: neighbourhood(bits, words) -> (z, codes) (standardised numeric
    columns, category codes), at(z, codes, x) -> the same with sample 0 set to the instance x,
    rows_of(z, codes) -> raw rows (S, d), logits(params, z, codes) -> (classes, S), and
    fit(z, codes, y) -> (contributions, extras) for the instance at sample 0, model outputs y."""
    host = lime_statistics(space)
    mean, scale = (jnp.asarray(host[k], jnp.float32) for k in ("mean", "scale"))
    thresholds = [jnp.asarray(t) for t in category_thresholds(space)]
    num, cat = np.flatnonzero(~space.categorical), np.flatnonzero(space.categorical)
    order = np.argsort(np.concatenate([num, cat]))  # [numeric, categorical] -> raw column order

    def neighbourhood(bits, words):
        codes = [sum((u >= t).astype(jnp.int32) for t in ts) + jnp.zeros_like(u, jnp.int32)
                 for u, ts in zip(words, thresholds)]
        return normal(bits), jnp.stack(codes) if codes else jnp.zeros(words.shape, jnp.int32)

    def at(z, codes, x):
        xz, xc = (x[num] - mean[num]) / scale[num], x[cat].astype(codes.dtype)
        return z.at[:, 0].set(xz), codes.at[:, 0].set(xc)

    def rows_of(z, codes):
        return jnp.concatenate([z * scale[num, None] + mean[num, None], codes.astype(jnp.float32)]).T[:, order]

    def logits(params, z, codes):
        return apply(params, space.encode_jax(rows_of(z, codes))).astype(jnp.float32).T

    def fit(z, codes, y):
        """lime's kernel (distances on standardised columns and "same category" indicators) and
        weighted ridge for the instance at sample 0."""
        same = (codes == codes[:, :1]).astype(jnp.float32)
        d2 = _row_sum(jnp.concatenate([(z - z[:, :1]) ** 2, 1.0 - same]))
        w = jnp.exp(-d2 / (2 * kernel_width ** 2))  # = sqrt(exp(-d2 / width^2))
        coef, intercept, score = weighted_ridge(jnp.concatenate([z, same, y[None]]), w, alpha=alpha)
        x_std = jnp.concatenate([z[:, 0], same[:, 0]])  # categorical indicators are 1 at x
        return (coef * x_std)[order], {"weights": coef[order], "intercept": intercept, "score": score,
                                       "local_prediction": x_std @ coef + intercept, "output": y[0]}

    return neighbourhood, at, rows_of, logits, fit


def _row_sum(a: jax.Array, op=jnp.add) -> jax.Array:
    """`op` folded over the rows of a (k, S) array. A few rows are added one by one (elementwise,
    so XLA fuses them with their producers; its reduction over a short leading axis is ~3x slower
    on CPU); many rows by the reduction."""
    if len(a) > 16:
        return jnp.sum(a, axis=0) if op is jnp.add else jnp.max(a, axis=0)
    return functools.reduce(op, list(a))


def _prob(logits: jax.Array, t) -> jax.Array:
    """Softmax probability of class t from (classes, S) logits."""
    e = jnp.exp(logits - _row_sum(logits, jnp.maximum))
    return e[t] / _row_sum(e)


_SCALARS = ("intercept", "score", "local_prediction", "output")


def _pack(out) -> jax.Array:
    """A batch of fits (values, extras) as one (rows, 2d + 4) array: one device-to-host copy per
    chunk instead of six (they cost ~0.01 ms per explanation)."""
    values, extras = out
    return jnp.concatenate([values, extras["weights"], jnp.stack([extras[k] for k in _SCALARS], axis=1)], axis=1)


@functools.lru_cache(maxsize=16)
def _compiled(space: RawSpace, apply, kernel_width: float, alpha: float):
    neighbourhood, at, rows_of, logits, fit = _functions(space, apply, kernel_width=kernel_width, alpha=alpha)
    n_num = int((~space.categorical).sum())

    @functools.partial(xla_jit, kind="forward")
    def shared_neighbourhood(bits, rows):
        """The shared neighbourhood (sample 0 is set per instance) and its raw rows."""
        z, codes = neighbourhood(bits, rows)
        return z, codes, rows_of(z, codes)

    @functools.partial(xla_jit, kind="forward")
    def shared_fit(z, codes, L, xs, ts, L0):
        """Fits for instances xs (logits L0 there) on one shared neighbourhood with logits L,
        packed (see `_pack`)."""
        return _pack(jax.vmap(lambda x, t, l0: fit(*at(z, codes, x), _prob(L.at[:, 0].set(l0), t)))(xs, ts, L0))

    @functools.partial(xla_jit, kind="forward")
    def independent_fit(params, words, xs, ts):
        """One neighbourhood per instance (words: `draw_rows`); the model runs inside (S samples
        per instance); the fits packed (see `_pack`)."""
        def one(w, x, t):
            z, codes = at(*neighbourhood(w[:n_num], w[n_num:]), x)
            return fit(z, codes, _prob(logits(params, z, codes), t))

        return _pack(jax.vmap(one)(words, xs, ts))

    return shared_neighbourhood, shared_fit, independent_fit


def _row_rng(seed: int, row: np.ndarray) -> np.random.SFC64:
    """A row's own stream: numpy's SFC64 bit generator (its fastest raw bits, ~25% faster than
    the default PCG64 here) seeded by the seed and the row's values."""
    words = np.ascontiguousarray(row, np.float64).view(np.uint32)
    return np.random.SFC64(np.random.SeedSequence(words, spawn_key=(int(seed),)))


def lime_native(model, data, raw: Any, *, target: Any = None, num_samples: int = 5000,
                kernel_width: float | None = None, alpha: float = 1.0, seed: int = 0,
                shared_samples: bool = True, batch_size: int | None = None) -> Attribution:
    """Native JAX LIME for raw tabular rows; one weight per raw column (see module docstring).

    raw: (n, d) raw rows (numeric values, categorical codes), e.g. `data.test.raw[:10]`.
    shared_samples: lime's continuous-mode proposal does not depend on the instance (numeric
        columns are drawn around the training mean; only the kernel weights, the sample 0 and
        the categorical "same as instance" indicators do), so by default one neighbourhood
        drawn from `np.random.default_rng(seed)` and its model outputs serve every explanation
        of the call (common random numbers: each explanation has exactly lime's distribution,
        their sampling errors are correlated). False draws an independent neighbourhood per
        row, from numpy's SFC64 generator seeded by `SeedSequence(the row's float64 values as
        uint32 words, spawn_key=(seed,))`, and evaluates the model on each. Either way an
        explanation depends only on the seed, the row and its target, not on the other rows.
    Values are the surrogate's contributions at the instance, weight x standardised value
    (categorical indicators are 1 there); extras: "weights" (lime's coefficients), "intercept",
    "score" (weighted R^2 of the local fit), "local_prediction", "output" (model probability of
    the target class at the instance).
    """
    space = raw_space(model, data)
    raw = space.check_rows(raw)
    seed = check_seed(seed)
    if int(num_samples) < 2 or not alpha >= 0:
        raise AuditInputError(f"lime_native needs num_samples >= 2 and alpha >= 0, got {num_samples}, {alpha}.")
    width = float(kernel_width) if kernel_width is not None else 0.75 * np.sqrt(space.n_columns)
    t = targets(model, space.encode(raw), target)
    n, S = len(raw), int(num_samples)
    bound = MAX_POINTS if shared_samples else MAX_EVAL_POINTS
    chunk = parallel.round_up(int(batch_size or max(1, bound // S)))  # fixed: one compilation for any n
    total = -(-n // chunk) * chunk
    pad = lambda a: np.concatenate([a, np.repeat(a[:1], total - n, axis=0)])
    rows, tp = pad(raw), pad(t)
    xs = rows.astype(np.float32)
    with timer() as clock:
        shared_neighbourhood, shared_fit, independent_fit = _compiled(space, model.apply, width, float(alpha))
        if shared_samples:  # the model's own batched logits (bounded memory, nothing new to compile)
            z, codes, sampled = shared_neighbourhood(*draw(np.random.default_rng(seed), space, S))
            L = model.logits(space.encode(np.concatenate([rows, np.asarray(sampled)]))).astype(np.float32)
            L0, L = L[:total], L[total:].T
            z, codes, L = parallel.replicate((z, codes, L))  # instances split over the mesh
            outs = parallel.map_chunks(lambda *part: shared_fit(z, codes, L, *part), [xs, tp, L0], chunk)
        else:
            params = parallel.replicate(model.params)

            def fit(xc, tc, ic):  # draws a chunk on the host while the devices fit the one before
                words = draw_rows(seed, rows[np.asarray(ic)], space, S)
                return independent_fit(params, parallel.shard_rows(words), xc, tc)

            outs = parallel.map_chunks(fit, [xs, tp, np.arange(total, dtype=np.int32)], chunk)
        packed, d = np.concatenate(outs)[:n], space.n_columns
        values = packed[:, :d]
        extras = {"weights": packed[:, d:2 * d].astype(np.float64),
                  **{k: packed[:, 2 * d + i].astype(np.float64) for i, k in enumerate(_SCALARS)}}
    settings = {"num_samples": int(num_samples), "kernel_width": width, "alpha": float(alpha),
                "backend": "native", "shared_samples": bool(shared_samples)}
    return Attribution(method="lime", values=values, target=t, level="raw", inputs=raw,
                       feature_names=space.names, extras=extras,
                       provenance=Provenance("lime", settings, seed, clock[0]))
