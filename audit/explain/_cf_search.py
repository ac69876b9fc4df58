"""Counterfactual search: batched projected proximal gradient in JAX, growing spheres on model calls,
and the shared finalisation (sparsify, shrink toward the original).

Gradient search (Wachter et al. 2017's hinge + L1 objective, solved the way the L1 asks): per row
and restart, minimise `lam * relu(kappa - margin) + sum_j w_j |delta_j|` over MAD-scaled numeric
changes `delta` and one simplex per categorical block. Each step moves along the normalised hinge
gradient, soft-thresholds (the exact proximal step of the L1 cost, so unneeded columns stay
exactly unchanged) and projects onto the row's box (domain, monotone, immutable) and the
simplices. `lam` grows while the rounded point is invalid and shrinks while it is valid, so the
search settles on the decision boundary along the cheapest columns, as the linear program does.
The best valid rounded point (integers rounded away from the original, categoricals at their
arg-max) seen so far is kept. Restarts after the first jitter the column weights (log-uniform in
[1/3, 3]) so that they prefer other columns: that is where diversity comes from.

Growing spheres (Laugel et al. 2018) samples raw rows in L1 shells of growing radius around each
row, under the same constraints, and keeps the cheapest valid ones; it needs only model outputs.
"""

from __future__ import annotations

import functools
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

from audit.explain._cf_space import Space
from audit.models._xla import jit as xla_jit

KAPPA = 0.05  # hinge margin (logits) the relaxed search aims past the boundary
SHRINK_STEPS = 14  # bisection steps toward the original (relative precision 2**-14)
SAFETY = 1e-4  # logits: a candidate counts as valid only this far past the boundary, so that float
# noise (another batch composition, float32) cannot flip the returned row back


def margins(logits: np.ndarray, target: np.ndarray) -> np.ndarray:
    """z_target - max_{c != target} z_c (> 0: the model picks the target)."""
    t = np.take_along_axis(logits, target[..., None], axis=-1)[..., 0]
    others = np.where(np.arange(logits.shape[-1]) == target[..., None], -np.inf, logits)
    return t - others.max(axis=-1)


def margin_fn(model, space: Space) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """raw rows (..., d) and targets (...) -> margins, through the model's padded batches."""
    def fn(raw: np.ndarray, target: np.ndarray) -> np.ndarray:
        shape = raw.shape[:-1]
        z = model.logits(space.encode(raw.reshape(-1, space.d)))
        return margins(z.astype(np.float64), np.broadcast_to(target, shape).reshape(-1)).reshape(shape)
    return fn


# ---- gradient search ---------------------------------------------------------------------
def _project_simplex(v: jax.Array) -> jax.Array:
    """Euclidean projection of each last-axis vector onto the probability simplex (Duchi et al. 2008)."""
    u = -jnp.sort(-v, axis=-1)
    css = jnp.cumsum(u, axis=-1) - 1.0
    k = jnp.arange(1, v.shape[-1] + 1, dtype=v.dtype)
    rho = jnp.sum(u - css / k > 0, axis=-1, keepdims=True)
    theta = jnp.take_along_axis(css, rho - 1, axis=-1) / rho.astype(v.dtype)
    return jnp.maximum(v - theta, 0.0)


@functools.lru_cache(maxsize=32)
def _search_fn(apply: Callable, blocks: tuple[tuple[int, int, int], ...], steps: int) -> Callable:
    """The jitted search for one model function and categorical layout (cached: a dashboard's live
    calls compile once)."""

    def encode(raw, p, c):
        cols = raw[..., c["col"]]
        numeric = (cols - c["mean"]) / c["std"]
        return jnp.where(c["is_cat_in"], p, numeric)

    def margin(params, x, target):
        shape = x.shape[:-1]
        z = apply(params, x.reshape(-1, x.shape[-1])).astype(jnp.float32).reshape(*shape, -1)
        t = jnp.take_along_axis(z, target[..., None], axis=-1)[..., 0]
        other = jnp.where(jax.nn.one_hot(target, z.shape[-1], dtype=bool), -jnp.inf, z)
        return t - other.max(axis=-1)

    def rounded(delta, p, raw0, c):
        """Feasible raw point: numeric raw0 + delta * scale (integers away from raw0), codes = argmax."""
        move = delta * c["scale"]
        whole = jnp.sign(move) * jnp.ceil(jnp.abs(move) - 1e-6)
        raw = raw0 + jnp.where(c["integer"], whole, move)
        raw = jnp.clip(raw, c["lo"], c["hi"])
        for j, start, width in blocks:
            raw = raw.at[..., j].set(jnp.argmax(p[..., start:start + width], axis=-1).astype(raw.dtype))
        onehot = jnp.zeros_like(p)
        for j, start, width in blocks:
            onehot = onehot.at[..., start:start + width].set(
                jax.nn.one_hot(raw[..., j].astype(jnp.int32), width, dtype=p.dtype))
        return raw, onehot

    def run(params, raw0, onehot0, target, weights, delta0, c):
        # raw0 (B, 1, d); onehot0 (B, 1, n_inputs): original one-hots (0 on numeric inputs);
        # target (B, 1); weights (B, K, d); delta0 (B, K, d); c: constants
        B, K, d = weights.shape
        lo_d = (c["lo"] - raw0) / c["scale"]
        hi_d = (c["hi"] - raw0) / c["scale"]
        p0 = jnp.broadcast_to(onehot0, (B, K, onehot0.shape[-1]))
        cat_mutable_in = c["cat_mutable_in"]
        orig_level = p0  # one-hot of the original levels (numeric inputs are 0 here)
        w_in = weights[..., c["col"]] * c["categorical_cost"]  # per-input categorical change cost

        def hinge(delta, p):
            raw = raw0 + delta * c["scale"]
            x = encode(raw, p, c)
            return jnp.sum(jax.nn.relu(KAPPA - margin(params, x, jnp.broadcast_to(target, (B, K)))))

        grad = jax.grad(hinge, argnums=(0, 1))

        def cost_of(raw, onehot):
            num = jnp.sum(weights * jnp.abs(raw - raw0) / c["scale"] * (1 - c["is_cat"]), axis=-1)
            cat = 0.5 * jnp.sum(w_in * jnp.abs(onehot - orig_level), axis=-1)
            return num + cat

        def step(t, state):
            delta, p, lam, best_raw, best_cost, found = state
            eta = c["eta"] * (1.0 - 0.95 * t / steps)
            gd, gp = grad(delta, p)
            gd = gd * c["mutable"]
            norm = jnp.sqrt(jnp.sum(gd ** 2, -1) + jnp.sum((gp * cat_mutable_in) ** 2, -1))[..., None] + 1e-12
            moved = delta - eta * lam[..., None] * gd / norm
            delta = jnp.sign(moved) * jax.nn.relu(jnp.abs(moved) - eta * weights)
            delta = jnp.clip(delta, lo_d, hi_d) * (1 - c["is_cat"])
            p_new = p - eta * lam[..., None] * gp / norm + eta * w_in * orig_level
            for _, start, width in blocks:
                p_new = p_new.at[..., start:start + width].set(_project_simplex(p_new[..., start:start + width]))
            p = jnp.where(cat_mutable_in, p_new, p0)
            raw, onehot = rounded(delta, p, raw0, c)
            valid = margin(params, encode(raw, onehot, c), jnp.broadcast_to(target, (B, K))) > SAFETY
            cost = cost_of(raw, onehot)
            better = valid & (cost < best_cost)
            best_raw = jnp.where(better[..., None], raw, best_raw)
            best_cost = jnp.where(better, cost, best_cost)
            lam = jnp.clip(lam * jnp.where(valid, jnp.exp(-c["beta"]), jnp.exp(c["beta"])), 1e-3, 1e6)
            return delta, p, lam, best_raw, best_cost, found | valid

        delta = jnp.clip(delta0, lo_d, hi_d) * (1 - c["is_cat"])
        state = (delta, p0, jnp.ones((B, K)), jnp.broadcast_to(raw0, (B, K, d)), jnp.full((B, K), jnp.inf),
                 jnp.zeros((B, K), bool))
        # the original itself may already be valid (then it is its own counterfactual, cost 0)
        raw_start, onehot_start = rounded(jnp.zeros_like(delta), p0, raw0, c)
        valid0 = margin(params, encode(raw_start, onehot_start, c), jnp.broadcast_to(target, (B, K))) > 0
        state = (*state[:3], state[3], jnp.where(valid0, 0.0, jnp.inf), valid0)
        _, _, _, best_raw, _, found = jax.lax.fori_loop(0, steps, step, state)
        return best_raw, found

    return xla_jit(run)


def gradient_search(model, space: Space, raw0: np.ndarray, target: np.ndarray, *, k: int, steps: int,
                    step_size: float, seed: int, batch_rows: int = 128) -> tuple[np.ndarray, np.ndarray]:
    """(n, k, d) best valid raw counterfactuals found and (n, k) found flags."""
    n, d = raw0.shape
    rng = np.random.default_rng(seed)
    weights = np.ones((n, k, d))
    delta0 = np.zeros((n, k, d))
    if k > 1:
        weights[:, 1:] = np.exp(rng.uniform(-np.log(3.0), np.log(3.0), size=(n, k - 1, d)))
        delta0[:, 1:] = rng.uniform(-0.1, 0.1, size=(n, k - 1, d))
    lo, hi = space.bounds(raw0)
    mutable_in = space.mutable[space.col_of_input]
    consts = {"col": space.col_of_input, "mean": space.mean_in, "std": space.std_in,
              "is_cat_in": (space.level_of_input >= 0).astype(np.float32),
              "cat_mutable_in": ((space.level_of_input >= 0) & mutable_in).astype(np.float32),
              "mutable": space.mutable.astype(np.float32), "scale": space.scale, "integer": space.integer, "is_cat": space.is_cat.astype(np.float32),
              "categorical_cost": np.float32(space.categorical_cost), "eta": np.float32(step_size),
              "beta": np.float32(0.1)}
    consts = {key: jnp.asarray(v, dtype=jnp.int32 if key == "col" else (bool if key == "integer" else jnp.float32))
              for key, v in consts.items()}
    fn = _search_fn(model.apply, space.blocks, int(steps))
    size = min(batch_rows, 1 << (n - 1).bit_length())  # a few padded sizes: each compiles once
    pad = (-n) % size
    onehot0 = space.encode(raw0) * (space.level_of_input >= 0)
    arrays = [np.concatenate([a, np.repeat(a[-1:], pad, axis=0)]) if pad else a
              for a in (raw0, onehot0, target, weights, delta0, lo, hi)]
    best, found = [], []
    for s in range(0, n + pad, size):
        r0, o0, t, w, d0, l, h = (a[s:s + size] for a in arrays)
        c = {**consts, "lo": jnp.asarray(l[:, None], jnp.float32), "hi": jnp.asarray(h[:, None], jnp.float32)}
        b, f = fn(model.params, jnp.asarray(r0[:, None], jnp.float32), jnp.asarray(o0[:, None], jnp.float32),
                  jnp.asarray(t[:, None], jnp.int32), jnp.asarray(w, jnp.float32), jnp.asarray(d0, jnp.float32), c)
        best.append(np.asarray(b, np.float64))
        found.append(np.asarray(f))
    best = np.concatenate(best)[:n]
    found = np.concatenate(found)[:n]
    # float32 search -> exact raw values: numeric columns in float64 from the original, codes exact
    best = np.where(space.is_cat | space.integer, np.rint(best), best)
    best = np.where(space.changed(raw0[:, None], best), best, raw0[:, None])
    return best, found


# ---- growing spheres ----------------------------------------------------------------------
def growing_spheres(margin: Callable, space: Space, raw0: np.ndarray, target: np.ndarray, *, k: int,
                    samples: int, shells: int, seed: int, batch_rows: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """(n, k, d) cheapest valid sampled counterfactuals (distinct) and (n, k) found flags."""
    n, d = raw0.shape
    rng = np.random.default_rng(seed)
    best = np.repeat(raw0[:, None], k, axis=1)
    found = np.zeros((n, k), bool)
    numeric = ~space.is_cat & space.mutable
    cat_cols = np.flatnonzero(space.is_cat & space.mutable)
    levels = (space.hi - space.lo + 1).astype(int)
    for s0 in range(0, n, batch_rows):
        rows = slice(s0, min(n, s0 + batch_rows))
        r0, t = raw0[rows], target[rows]
        m = len(r0)
        lo, hi = space.bounds(r0)
        pool_raw, pool_cost = [], []
        done = np.zeros(m, bool)
        for s in range(shells):
            r_in, r_out = 0.25 * 1.6 ** (s - 1) if s else 0.0, 0.25 * 1.6 ** s
            radius = rng.uniform(r_in, r_out, size=(m, samples, 1))
            direction = rng.exponential(size=(m, samples, d)) * rng.choice([-1.0, 1.0], size=(m, samples, d))
            # half the samples move only a random share of the columns (cheap recourse is sparse)
            sparse = rng.random((m, samples, d)) < rng.uniform(0.05, 1.0, size=(m, samples, 1))
            direction *= np.where(np.arange(samples)[:, None] % 2 == 0, sparse, True)
            direction = np.where(space.direction != 0, np.abs(direction) * space.direction, direction) * numeric
            direction /= np.maximum(np.abs(direction).sum(-1, keepdims=True), 1e-12)
            cand = r0[:, None] + radius * direction * space.scale
            q = min(0.5, r_out / (r_out + 4.0))
            for j in cat_cols:
                flip = rng.random((m, samples)) < q
                new = (r0[:, None, j] + rng.integers(1, max(levels[j], 2), size=(m, samples))) % max(levels[j], 1)
                cand[..., j] = np.where(flip, new, r0[:, None, j])
            cand = space.round_integers(r0[:, None], np.clip(cand, lo[:, None], hi[:, None]))
            valid = margin(cand, t[:, None]) > SAFETY
            cost = np.where(valid, space.cost(r0[:, None], cand), np.inf)
            pool_raw.append(cand)
            pool_cost.append(cost)
            done |= valid.any(axis=1)
            if done.all() and s >= 1:
                break
        pool_raw = np.concatenate(pool_raw, axis=1)
        pool_cost = np.concatenate(pool_cost, axis=1)
        order = np.argsort(pool_cost, axis=1)
        pool_raw = np.take_along_axis(pool_raw, order[..., None], axis=1)
        pool_cost = np.take_along_axis(pool_cost, order, axis=1)
        chosen_raw, chosen_ok = _pick_diverse(space, r0, pool_raw, np.isfinite(pool_cost), k)
        best[rows], found[rows] = chosen_raw, chosen_ok
    already = margin(raw0, target) > 0
    best[already] = raw0[already][:, None]
    found[already] = True
    return best, found


def _pick_diverse(space: Space, r0: np.ndarray, pool: np.ndarray, ok: np.ndarray, k: int):
    """From cost-sorted candidates, k per row: the cheapest, then the cheapest whose set of changed
    columns differs from every pick so far (falling back to the next cheapest distinct row)."""
    m = len(pool)
    changed = space.changed(r0[:, None], pool)
    chosen = np.repeat(r0[:, None], k, axis=1).astype(np.float64)
    got = np.zeros((m, k), bool)
    taken = np.zeros(ok.shape, bool)
    for i in range(k):
        eligible = ok & ~taken
        if i:
            prev_sets = changed[np.arange(m)[:, None], picks[:, :i]]  # (m, i, d)
            new_set = ~(changed[:, :, None, :] == prev_sets[:, None]).all(-1).any(-1)
            same_row = (np.abs(pool[:, :, None, :] - chosen[:, None, :i]) < 1e-9).all(-1).any(-1)
            eligible &= ~same_row
            preferred = eligible & new_set
            eligible = np.where(preferred.any(1, keepdims=True), preferred, eligible)
        idx = np.argmax(eligible, axis=1)
        has = eligible[np.arange(m), idx]
        picks = idx[:, None] if i == 0 else np.concatenate([picks, idx[:, None]], axis=1)
        chosen[:, i] = np.where(has[:, None], pool[np.arange(m), idx], r0)
        got[:, i] = has
        taken[np.arange(m), idx] |= has
    return chosen, got


def categorical_switches(margin: Callable, space: Space, raw0: np.ndarray,
                         target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every single-level change of a mutable categorical column, (n, L, d), and whether each is
    valid: a gradient step cannot see a jump between levels, so these are tried exactly."""
    cands = []
    for j in np.flatnonzero(space.is_cat & space.mutable):
        for level in range(int(space.hi[j]) + 1):
            c = raw0.copy()
            c[:, j] = level
            cands.append(c)
    if not cands:
        return np.zeros((len(raw0), 0, space.d)), np.zeros((len(raw0), 0), bool)
    cands = np.stack(cands, axis=1)
    ok = space.changed(raw0[:, None], cands).any(-1) & (margin(cands, target[:, None]) > SAFETY)
    return cands, ok


def pick(space: Space, raw0: np.ndarray, pool: np.ndarray, ok: np.ndarray, k: int):
    """k distinct counterfactuals per row from a pool, cheapest first, preferring new sets of changed columns."""
    cost = np.where(ok, space.cost(raw0[:, None], pool), np.inf)
    order = np.argsort(cost, axis=1, kind="stable")
    pool = np.take_along_axis(pool, order[..., None], axis=1)
    return _pick_diverse(space, raw0, pool, np.take_along_axis(ok, order, axis=1), k)


# ---- finalisation ----------------------------------------------------------------------------
def sparsify(margin: Callable, space: Space, raw0: np.ndarray, cf: np.ndarray, target: np.ndarray,
             found: np.ndarray) -> np.ndarray:
    """Revert changed columns one at a time, most expensive first, wherever the decision stays
    (DiCE's post-hoc sparsity, batched over rows: one model call per column rank)."""
    cf = cf.copy()
    r0 = raw0[:, None]
    order = np.argsort(-space.contributions(r0, cf), axis=-1)
    for rank in range(space.d):
        col = order[..., rank]
        cand = cf.copy()
        np.put_along_axis(cand, col[..., None], np.take_along_axis(np.broadcast_to(r0, cf.shape), col[..., None], -1), -1)
        was = np.take_along_axis(space.changed(r0, cf), col[..., None], -1)[..., 0]
        try_rows = found & was
        if not try_rows.any():
            continue
        keep = try_rows & (margin(cand, target[:, None]) > SAFETY)
        cf = np.where(keep[..., None], cand, cf)
    return cf


def shrink(margin: Callable, space: Space, raw0: np.ndarray, cf: np.ndarray, target: np.ndarray,
           found: np.ndarray) -> np.ndarray:
    """Move every numeric change back toward the original by the largest common factor that keeps
    the decision (bisection; integers re-rounded away from the original)."""
    r0 = raw0[:, None]
    lo_t, hi_t = np.zeros(found.shape), np.ones(found.shape)

    def at(tt):
        moved = np.where(space.is_cat, cf, r0 + tt[..., None] * (cf - r0))
        return space.round_integers(np.broadcast_to(r0, cf.shape), moved)

    for _ in range(SHRINK_STEPS):
        mid = (lo_t + hi_t) / 2
        ok = margin(at(mid), target[:, None]) > SAFETY
        hi_t = np.where(ok, mid, hi_t)
        lo_t = np.where(ok, lo_t, mid)
    out = at(hi_t)
    return np.where(found[..., None], out, cf)


def limit_changes(margin: Callable, space: Space, raw0: np.ndarray, cf: np.ndarray, target: np.ndarray,
                  found: np.ndarray, max_changes: int) -> tuple[np.ndarray, np.ndarray]:
    """Keep only the `max_changes` most expensive changes; rows that then lose the decision are not found."""
    r0 = raw0[:, None]
    contrib = np.where(space.changed(r0, cf), space.contributions(r0, cf), -np.inf)
    rank = np.argsort(np.argsort(-contrib, axis=-1), axis=-1)
    cf = np.where(rank < max_changes, cf, r0)
    return cf, found & (margin(cf, target[:, None]) > SAFETY)



FILL_SCALES = (1.25, 1.5, 2.0, 3.0)  # further-out copies of a valid change, tried when a row is short


def fill(margin: Callable, space: Space, raw0: np.ndarray, cf: np.ndarray, found: np.ndarray,
         target: np.ndarray, spares: np.ndarray, spares_ok: np.ndarray, k: int,
         max_changes: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Top up rows that have at least one but fewer than `k` distinct valid counterfactuals.

    Sparsifying and shrinking make different candidates coincide, so a row can end with fewer than
    k distinct ones although many valid ones were found. Candidates, in the order `pick` prefers
    them (cheapest, new sets of changed columns first): `spares` (the candidates before
    sparsifying/shrinking), each valid pick moved further out (`FILL_SCALES` times its change),
    the union of two picks' changes, and each pick with one more categorical column switched.
    Every candidate is checked against the model (past the safety margin), the hard constraints
    and `max_changes`; the rows' cheapest counterfactual is unchanged (every candidate costs at
    least as much as the pick it comes from)."""
    own = ~space.changed(raw0, cf[:, 0]).any(-1)  # already the target: its own counterfactual, nothing to add
    short = found.any(1) & (found.sum(1) < k) & ~own
    if not short.any():
        return cf, found
    rows = np.flatnonzero(short)
    r0, base, ok = raw0[rows], cf[rows], found[rows]
    R0 = r0[:, None]
    cands, parents = [spares[rows]], [spares_ok[rows]]  # candidates and whether their source was valid
    for t in FILL_SCALES:
        cands.append(space.round_integers(np.broadcast_to(R0, base.shape), R0 + t * (base - R0)))
        parents.append(ok)
    changed = space.changed(R0, base)
    for a in range(k):
        for b in range(k):
            if a != b:
                cands.append(np.where(changed[:, a], base[:, a], base[:, b])[:, None])
                parents.append((ok[:, a] & ok[:, b])[:, None])
    for j in np.flatnonzero(space.is_cat & space.mutable):
        for level in range(int(space.hi[j]) + 1):
            c = base.copy()
            c[..., j] = level
            cands.append(c)
            parents.append(ok & (r0[:, j] != level)[:, None])  # never back to the original level (cheaper)
    pool, parent_ok = np.concatenate(cands, axis=1), np.concatenate(parents, axis=1)
    n_changed = space.changed(R0, pool).sum(-1)
    pool_ok = (parent_ok & (n_changed >= 1) & space.satisfied(np.broadcast_to(R0, pool.shape), pool)
               & (n_changed <= (max_changes if max_changes is not None else space.d)))
    pool_ok &= margin(pool, target[rows][:, None]) > SAFETY
    new, got = pick(space, r0, np.concatenate([base, pool], axis=1), np.concatenate([ok, pool_ok], axis=1), k)
    cf, found = cf.copy(), found.copy()
    cf[rows], found[rows] = new, got
    return cf, found
