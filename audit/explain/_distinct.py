"""Coalition values from distinct model inputs only: a player equal in x and a background row
makes coalitions that differ only in it give the very same input row.

For example x and background row b, let D_b be the players whose inputs differ between them.
The masked row of coalition S is then determined by S & D_b, so only 2^|D_b| distinct rows
exist for b (not 2^P): a categorical column that x shares with b (same sex, same housing) halves
the model calls. Each distinct row is evaluated once, bit for bit the row the full enumeration
builds, and v(S) = mean_b f(row(b, S & D_b)) is the same expectation (Janzing et al. 2020).
Worth it only where many players coincide; `distinct_rows` says how many rows it would take.
"""

from __future__ import annotations

import functools
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from audit import parallel
from audit.models._batching import padded_batches
from audit.models._xla import jit as xla_jit

FLUSH_ROWS = 1 << 17  # rows gathered over examples before one batched evaluation (bounded memory)


def _differ(x: np.ndarray, background: np.ndarray, owner: np.ndarray, n_players: int) -> np.ndarray:
    # bitwise, so that a shared row is the very row (even -0.0 against 0.0 counts as different)
    """(..., B, P) bool: player p's inputs are not bitwise equal in x and background row b."""
    xi = np.ascontiguousarray(x, np.float32).view(np.uint32)
    bi = np.ascontiguousarray(background, np.float32).view(np.uint32)
    neq = (xi[..., None, :] != bi).astype(np.float32)  # (..., B, d)
    of_player = np.zeros((len(owner), n_players), np.float32)
    of_player[np.arange(len(owner)), owner] = 1.0
    return (neq @ of_player) > 0


def distinct_rows(x: np.ndarray, background: np.ndarray, owner: np.ndarray, n_players: int) -> int:
    """Distinct masked rows all 2^P coalitions of every example need: sum over (x, b) of 2^|D_b|."""
    k = _differ(x, background, owner, n_players).sum(axis=-1)
    return int(np.sum(2.0 ** k))


@functools.lru_cache(maxsize=32)
def _row_values(apply: Callable, output: str, input_shape: tuple[int, ...], treedef,
                output_fn: Callable) -> Callable:
    """Jitted: distinct rows named by (example i, background row b, subset t of D_b) -> the
    explained output f_cls[i] of each. The rows are built here, on the device: inputs of the
    players in subset t (bit rank[i, b, p] of t) from x[i], the others from background row b."""
    out_fn = output_fn(apply, output)

    def values(leaves, x, background, differ, rank, of_player, cls, i, b, t):
        pair = i * background.shape[0] + b
        member = ((t[:, None] >> rank[pair]) & 1) * differ[pair]  # (rows, players) 0/1
        mask = (member.astype(jnp.float32) @ of_player) > 0  # player -> its inputs (a matmul, not a gather)
        rows = jnp.where(mask, x[i], background[b])
        out = out_fn(jax.tree_util.tree_unflatten(treedef, leaves), rows.reshape((-1, *input_shape)))
        return jnp.take_along_axis(out, cls[i][:, None], axis=1)[:, 0]

    return xla_jit(values, kind="forward")


def distinct_coalition_values(model, x: np.ndarray, cls: np.ndarray, background: np.ndarray,
                              coalitions: np.ndarray, owner: np.ndarray, *, output: str,
                              chunk_rows: int, output_fn: Callable) -> np.ndarray:
    """`coalition_values` (v[i, k] = mean_b f_cls[i](x[i] where coalition k holds, else b)) with
    every distinct masked row evaluated once, in fixed-size padded batches (one compile).
    `output_fn(apply, output)` gives the explained outputs (`_players.output_fn`).

    Distinct row t of (i, b) is subset t of D_b (bit j of t: D_b's j-th player, in player order);
    coalition S reads the row whose t packs the bits of S & D_b, i.e. t = S @ place[b]."""
    n, m = len(x), len(coalitions)
    n_players = coalitions.shape[1]
    leaves, treedef = jax.tree_util.tree_flatten(model.params)
    fn = _row_values(model.apply, output, tuple(model.input_shape), treedef, output_fn)
    differ = _differ(x, background, owner, n_players)  # (n, B, P)
    rank = np.maximum(np.cumsum(differ, axis=2) - 1, 0).astype(np.int32)
    place = np.where(differ, 2.0 ** rank, 0.0)  # (n, B, P): value of player p's bit in t
    sizes = (2 ** differ.sum(axis=2)).astype(np.int64)  # (n, B) distinct rows per pair
    of_player = np.zeros((n_players, len(owner)), np.float32)
    of_player[owner, np.arange(len(owner))] = 1.0
    shared = parallel.replicate((tuple(leaves), np.asarray(x, np.float32), np.asarray(background, np.float32),
                                 differ.reshape(-1, n_players).astype(np.int32), rank.reshape(-1, n_players),
                                 of_player, np.asarray(cls, np.int32)))
    call = lambda i, b, t: fn(*shared, i, b, t)
    members = coalitions.astype(np.float64)
    out = np.zeros((n, m))
    first = 0
    while first < n:  # examples in groups of about FLUSH_ROWS distinct rows: bounded memory
        last = first + 1
        while last < n and sizes[first:last + 1].sum() <= FLUSH_ROWS:
            last += 1
        block = sizes[first:last].ravel()
        start = np.concatenate([[0], np.cumsum(block)[:-1]])
        pair = np.repeat(np.arange(len(block)), block)
        t = (np.arange(int(block.sum())) - start[pair]).astype(np.int32)
        i = (first + pair // len(background)).astype(np.int32)
        b = (pair % len(background)).astype(np.int32)
        values = padded_batches(call, [i, b, t], chunk_rows)
        start = start.reshape(last - first, len(background))
        for e in range(first, last):
            inv = start[e - first][None, :] + (members @ place[e].T).astype(np.int64)  # (M, B)
            out[e] = values[inv].astype(np.float64).mean(axis=1)
        first = last
    return out
