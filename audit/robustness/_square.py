"""Square attack: a score-based black-box attack by random square-shaped updates (L-inf).

Andriushchenko, Croce, Flammarion & Hein, "Square Attack: a query-efficient black-box
adversarial attack via random search" (ECCV 2020). Starts from vertical stripes of +-eps, then
per query proposes a random square (images; a random window for flat inputs) of +-eps and keeps
it when the logit margin moves towards a wrong class. Uses only model outputs, so it is immune
to gradient masking: if it beats the white-box attacks, the gradients are lying.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from audit.errors import AuditInputError
from audit.robustness import _core
from audit.robustness._check import attack_inputs
from audit.robustness._domain import Domain, project
from audit.models._batching import padded_batches
from audit.models._xla import jit as xla_jit


class _Static(NamedTuple):
    apply_fn: Callable
    targeted: bool
    image: bool


def fractions(queries: int, p_init: float) -> np.ndarray:
    """The reference schedule of the square's area fraction p per iteration (halving at
    iterations 10, 50, 200, 500, 1000, 2000, 4000, 6000, 8000 of a 10,000-query budget)."""
    out = np.empty(queries)
    for i in range(queries):
        it = int(i / queries * 10000)
        div = next((d for t, d in ((8000, 512), (6000, 256), (4000, 128), (2000, 64), (1000, 32),
                                   (500, 16), (200, 8), (50, 4), (10, 2)) if it > t), 1)
        out[i] = p_init / div
    return out


def _sizes(shape: tuple[int, ...], queries: int, p_init: float, image: bool) -> np.ndarray:
    p = fractions(queries, p_init)
    if image:
        h, w = shape[0], shape[1]
        s = np.rint(np.sqrt(p * h * w)).astype(int)
        return np.clip(s, 1, max(min(h, w) - 1, 1)).astype(np.int32)
    d = int(np.prod(shape))
    return np.clip(np.rint(p * d).astype(int), 1, max(d - 1, 1)).astype(np.int32)


def _margin(s, params, x, y):
    return _core.score(s.apply_fn(params, x).astype(jnp.float32), y, s.targeted)


def _init(s: _Static, params, x0, y, eps_b, domain, row_keys):
    n = x0.shape[0]
    if s.image:  # vertical stripes: one sign per (column, channel)
        shape = (1,) + x0.shape[2:]
    else:
        shape = x0.shape[1:]
    signs = jax.vmap(lambda k: jax.random.rademacher(k, shape, jnp.float32))(jax.random.wrap_key_data(row_keys))
    x = project(x0, x0 + eps_b * signs, eps_b, "linf", domain)
    return x, _margin(s, params, x, y), jnp.ones(n, jnp.int32)


def row_keys(key: jax.Array, n: int) -> jax.Array:
    """One key per row (row r: `fold_in(key, r)`), as raw key data (n, ...) uint32, so a row's
    queries never depend on which other rows share its call: rows that are fooled can leave the
    batch without changing the others (and the host packs plain arrays)."""
    return jax.random.key_data(jax.vmap(lambda r: jax.random.fold_in(key, r))(jnp.arange(n, dtype=jnp.uint32)))


def _window(s: _Static, keys, x0, size):
    """A boolean mask per example: a random size x size square (or a window of `size` inputs),
    drawn from each row's own key; `size` holds one side per row."""
    if s.image:
        h, w = x0.shape[1], x0.shape[2]

        def corner(k, side):
            kh, kw = jax.random.split(k)
            return jax.random.randint(kh, (), 0, h - side + 1), jax.random.randint(kw, (), 0, w - side + 1)

        r0, c0 = jax.vmap(corner)(keys, size)
        rows, cols = jnp.arange(h), jnp.arange(w)
        in_r = (rows[None, :] >= r0[:, None]) & (rows[None, :] < (r0 + size)[:, None])
        in_c = (cols[None, :] >= c0[:, None]) & (cols[None, :] < (c0 + size)[:, None])
        mask = in_r[:, :, None] & in_c[:, None, :]
        return mask.reshape(mask.shape + (1,) * (x0.ndim - 3))
    d = int(np.prod(x0.shape[1:]))
    start = jax.vmap(lambda k, width: jax.random.randint(k, (), 0, d - width + 1))(keys, size)
    idx = jnp.arange(d)
    mask = (idx[None, :] >= start[:, None]) & (idx[None, :] < (start + size)[:, None])
    return mask.reshape(x0.shape)


def _query(s: _Static, params, domain, sizes, x0, y, eps_b, keys, i, x, best, active):
    """One query for every `active` row: row r proposes a square of side `sizes[i[r]]` drawn from
    its own key folded with its query index `i[r]`, and keeps it when its margin improves.
    Returns the new (x, best)."""
    i = jnp.minimum(i, sizes.shape[0] - 1)
    k1, k2 = jax.vmap(lambda k, j: tuple(jax.random.split(jax.random.fold_in(k, j))))(
        jax.random.wrap_key_data(keys), i)
    win = _window(s, k1, x0, sizes[i])
    sign_shape = (1, 1) + x0.shape[3:] if s.image else x0.shape[1:]  # images: one sign per channel
    signs = jax.vmap(lambda k: jax.random.rademacher(k, sign_shape, jnp.float32))(k2)
    delta = x - x0
    proposal = eps_b * signs
    # a square identical to the current one would waste the query: flip it
    same = jnp.all(jnp.where(win & (domain.mutable > 0), jnp.abs(delta - proposal) < 1e-7, True),
                   axis=tuple(range(1, x0.ndim)), keepdims=True)
    proposal = jnp.where(same, -proposal, proposal)
    cand = project(x0, x0 + jnp.where(win, proposal, delta), eps_b, "linf", domain)
    m = _margin(s, params, cand, y)
    take = active & (m > best)
    shape = (x0.shape[0],) + (1,) * (x0.ndim - 1)
    return jnp.where(take.reshape(shape), cand, x), jnp.where(take, m, best)


def _step(s: _Static, consts, i, state):
    """Query `i` of every row not fooled yet (only those are queried)."""
    params, domain, sizes, x0, y, eps_b, keys = consts
    x, best, queries = state
    active = best <= 0
    x, best = _query(s, params, domain, sizes, x0, y, eps_b, keys, jnp.full(x0.shape[0], i, jnp.int32),
                     x, best, active)
    return x, best, queries + active.astype(jnp.int32)


def _setup(apply_fn: Callable, shape: tuple[int, ...], queries: int, p_init: float | None,
           targeted: bool) -> tuple[_Static, jax.Array]:
    """The static part and the square-size schedule (padded to a multiple of 1,000 queries, so
    budgets up to each 1,000 share one compile); `p_init` defaults to 0.3 for inputs with at most
    1,000 values (the paper's MNIST setting), else 0.05."""
    if p_init is None:
        p_init = 0.3 if np.prod(shape) <= 1000 else 0.05
    if not 0 < p_init <= 1:
        raise AuditInputError(f"square: p_init must be in (0, 1], got {p_init}.")
    image = len(shape) == 3 and shape[0] > 1 and shape[1] > 1
    sizes = _sizes(shape, max(int(queries) - 1, 1), p_init, image)
    padded = -(-len(sizes) // 1000) * 1000
    sizes = np.concatenate([sizes, np.full(padded - len(sizes), sizes[-1], sizes.dtype)])
    return _Static(apply_fn, bool(targeted), image), jnp.asarray(sizes)


def square(apply_fn: Callable, params: Any, x, y, *, eps, queries: int = 1000, p_init: float | None = None,
           targeted: bool = False, domain: Domain | None = None, key: jax.Array, loop: str = "auto",
           return_score: bool = False, return_queries: bool = False):
    """Square attack (L-inf) with a budget of `queries` model evaluations per example.

    `p_init` is the initial fraction of inputs in a square (default 0.3 for inputs with at
    most 1,000 values, as the paper's MNIST setting, else 0.05). Images of shape (H, W, C) get
    squares; other inputs get windows of consecutive inputs with independent signs. Each row
    draws from its own key (`row_keys`). On the host (images), fooled rows leave the batch and
    the loop stops once every example is fooled (`_pool`). Returns the adversarial batch (and
    the margins and per-example query counts if asked).
    """
    x, y, eps_b, domain = attack_inputs(apply_fn, params, x, y, eps=eps, norm="linf", loss=None,
                                        domain=domain, steps=queries, name="square")
    s, sizes = _setup(apply_fn, tuple(x.shape[1:]), queries, p_init, targeted)
    host = _core.use_host(loop, x, params, eps_b, key)
    k0, k1 = jax.random.split(key)
    keys0, keys1 = row_keys(k0, x.shape[0]), row_keys(k1, x.shape[0])
    n_steps = int(queries) - 1
    if host:  # the call's rows as a pool of their own
        state = tuple(jnp.asarray(a) for a in _pool(s, params, domain, sizes, x, y, eps_b, keys0, keys1,
                                                      n_steps, slots=x.shape[0]))
    elif _core.is_tracing(x, params, eps_b, key):
        state = _scan(s, params, domain, sizes, x, y, eps_b, keys0, keys1, n_steps)
    else:
        state = _jit_scan(s, params, domain, sizes, x, y, eps_b, keys0, keys1, n_steps)
    x_adv, best, used = state
    out = (x_adv,)
    if return_score:
        out += (best,)
    if return_queries:
        out += (used,)
    return out if len(out) > 1 else x_adv


CHUNK = 20  # queries between two looks at which rows are still standing
MIN_ROWS = 8  # the smallest batch the host loop packs the standing rows into


def _scan(s, params, domain, sizes, x, y, eps_b, keys0, keys1, n_steps):
    state = _init(s, params, x, y, eps_b, domain, keys0)
    consts = (params, domain, sizes, x, y, eps_b, keys1)
    return jax.lax.fori_loop(0, n_steps, lambda i, st: _step(s, consts, i, st), state)


_jit_scan = xla_jit(_scan, kind="forward", static_argnums=(0,))  # the query budget stays dynamic


def _pool_step(s: _Static, consts, state):
    """One query of every slot whose row is standing and has budget left; each slot counts its
    own query index (`it`), so rows that joined at different times keep their own schedule."""
    params, domain, sizes, x0, y, eps_b, keys, n_steps = consts
    x, best, used, it = state
    active = (best <= 0) & (it < n_steps)
    x, best = _query(s, params, domain, sizes, x0, y, eps_b, keys, it, x, best, active)
    return x, best, used + active.astype(jnp.int32), it + 1


def call_row_keys(call_keys, positions) -> tuple[np.ndarray, np.ndarray]:
    """The per-row keys `square` draws for row `positions[r]` of a call made with key
    `call_keys[r]` (raw key data): the same keys whether a row is attacked in that call or pooled."""
    def one(k, r):
        k0, k1 = jax.random.split(jax.random.wrap_key_data(k))
        return jax.random.key_data(jax.random.fold_in(k0, r)), jax.random.key_data(jax.random.fold_in(k1, r))
    keys0, keys1 = jax.jit(jax.vmap(one))(jnp.asarray(call_keys), jnp.asarray(positions, jnp.uint32))
    return np.asarray(keys0), np.asarray(keys1)


def square_pooled(apply_fn: Callable, params: Any, x, y, *, eps, call_keys, positions, queries: int,
                  slots: int, domain: Domain | None = None, p_init: float | None = None,
                  targeted: bool = False, chunk: int = CHUNK) -> np.ndarray:
    """Square (L-inf) on many rows, each with its own eps, exactly as `square` would attack row
    `positions[r]` of a call with key `call_keys[r]` (raw key data), but through one pool of
    `slots` rows: a row that is fooled or has spent its budget leaves its slot and the next row
    takes it, so every model call is full of rows still working (the rows of every eps and every
    call of an eps grid share the pool). Results equal `square`'s per row up to the model's
    rounding at another batch size. Returns the adversarial rows (numpy)."""
    eps = np.asarray(eps, np.float32).reshape(-1)
    x, y, eps_b, domain = attack_inputs(apply_fn, params, x, y, eps=eps, norm="linf", loss=None,
                                        domain=domain, steps=queries, name="square")
    s, sizes = _setup(apply_fn, tuple(x.shape[1:]), queries, p_init, targeted)
    keys0, keys1 = call_row_keys(call_keys, positions)
    return _pool(s, params, domain, sizes, x, y, eps_b, keys0, keys1, int(queries) - 1, slots=slots, chunk=chunk)[0]


def _pool(s: _Static, params, domain, sizes, x0, y, eps_b, keys0, keys1, n_steps: int, *, slots: int,
          chunk: int = CHUNK) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The query loop on the host over a pool of at most `slots` rows, `chunk` queries between two
    looks. A fooled row is never queried again (the attack keeps its first adversarial) and a row
    that has spent its budget is done: either leaves its slot to the next waiting row; with none
    waiting, the pool shrinks once at most half of it is standing (a power of two, at least
    `MIN_ROWS`; idle slots repeat a working row and never query). Rows draw from their own keys and
    count their own queries, so neither the pool nor its company changes what a row does.
    Returns numpy (adversarial rows, margins, queries used)."""
    n = x0.shape[0]
    x0, yv, eb, keys0, keys1 = (np.asarray(a) for a in (x0, y, eps_b, keys0, keys1))
    shape = x0.shape[1:]
    slots = max(MIN_ROWS, int(slots))
    out_x, best, used = padded_batches(lambda *a: _core.call(_init, s, params, *a[:3], domain, a[3], host=True,
                                                             kind="forward"), [x0, yv, eb, keys0], slots)
    out_x, best, used = np.array(out_x), np.array(best), np.array(used)
    queue = list(np.flatnonzero(best <= 0)[::-1])  # popped from the end: rows in order
    if not queue or n_steps < 1:
        return out_x, best, used
    step = _core._jitted(_pool_step, "forward")  # a query: forward passes only
    size = min(slots, max(MIN_ROWS, 1 << int(len(queue) - 1).bit_length()))
    rows = np.full(size, -1)  # the row in each slot (-1: empty)
    it = np.full(size, n_steps, np.int32)
    state = None
    while True:
        # rows that are done leave; waiting rows take their slots (or the pool shrinks)
        if state is not None:
            xs, bs, us, it = (np.array(a) for a in state)
            done = (rows >= 0) & ((bs > 0) | (it >= n_steps))
            out_x[rows[done]], best[rows[done]], used[rows[done]] = xs[done], bs[done], us[done]
            live = (rows >= 0) & ~done
            cur_x, cur_best, cur_used = xs, bs, us
            rows = np.where(done, -1, rows)
        else:
            live = np.zeros(size, bool)
            cur_x, cur_best, cur_used = np.zeros((size, *shape), np.float32), np.ones(size, np.float32), \
                np.zeros(size, np.int32)
        standing = int(live.sum())
        if not queue and standing == 0:
            return out_x, best, used
        if not queue and standing <= size // 2 and size > MIN_ROWS:
            new = max(MIN_ROWS, 1 << int(standing - 1).bit_length())
            keep = np.flatnonzero(live)
            rows, it, cur_x, cur_best, cur_used = (
                np.concatenate([a[keep], np.full((new - standing, *a.shape[1:]), f, a.dtype)])
                for a, f in ((rows, -1), (it, n_steps), (cur_x, 0), (cur_best, 1), (cur_used, 0)))
            size = new
        for slot in np.flatnonzero(rows < 0):
            if not queue:
                break
            r = queue.pop()
            rows[slot], it[slot], cur_x[slot], cur_best[slot], cur_used[slot] = r, 0, out_x[r], best[r], used[r]
        idle = rows < 0
        src = np.where(idle, rows[np.argmax(rows >= 0)], rows)
        it = np.where(idle, n_steps, it).astype(np.int32)
        cur_x = np.where(idle.reshape((-1,) + (1,) * len(shape)), out_x[src], cur_x)
        cur_best = np.where(idle, 1.0, cur_best).astype(np.float32)
        consts = (params, domain, sizes, *(jnp.asarray(a[src]) for a in (x0, yv, eb, keys1)), np.int32(n_steps))
        state = tuple(jnp.asarray(a) for a in (cur_x, cur_best, cur_used, it))
        for _ in range(min(chunk, n_steps - int(it[~idle].min()))):
            state = step(s, consts, state)
