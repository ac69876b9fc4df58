"""Coalition designs for SHAP interaction values: the exact weights and the sampled paths.

Exact (Lundberg et al. 2020, "From local explanations to global understanding with explainable
AI for trees", eq. for the SHAP interaction values): for i != j

    Phi_ij = sum_{S in N \\ {i, j}} |S|! (P - |S| - 2)! / (2 (P - 1)!) * D_ij(S),
    D_ij(S) = v(S u {i, j}) - v(S u {i}) - v(S u {j}) + v(S),

half the pairwise Shapley interaction index (Grabisch & Roubens 1999), and Phi_ii = phi_i -
sum_{j != i} Phi_ij, so each row sums to the player's SHAP value. Written over all coalitions T,
Phi_ij = 1/2 sum_T c(|T| - z_i - z_j) s_i s_j v(T) with s = +1 in T, -1 outside, which is four
(P, 2^P) @ (2^P, P) products per example.

Sampled: the interaction index is an expectation over uniformly random orders of the players
of D_ij(predecessors) for a pair adjacent in the order (Tsai, Yeh & Ravikumar 2023). Walecki's
decomposition splits the complete graph on an even number of vertices into Hamiltonian paths,
so one block of ceil(P/2) paths, relabelled by a uniformly random permutation, puts every pair
side by side exactly once, each path being itself a uniformly random order: every pair gets one
sample per block (no pair left unsampled), and the same orders give permutation-sampling SHAP
values for the diagonal. For odd P a phantom vertex is dropped and the position of each pair is
reweighted so the predecessor-set size stays uniform (the estimator stays unbiased).
"""

from __future__ import annotations

import functools
import math

import numpy as np

from audit.explain._shap_exact import all_coalitions


@functools.lru_cache(maxsize=8)
def interaction_weights(n_players: int) -> np.ndarray:
    """c (P + 1,): c[s] = s! (P - s - 2)! / (2 (P - 1)!) for s in 0..P-2 (0 beyond)."""
    p = n_players
    c = np.zeros(p + 1)
    for s in range(max(p - 1, 0)):
        c[s] = math.factorial(s) * math.factorial(p - s - 2) / (2 * math.factorial(p - 1))
    return c


def exact_interactions(v: np.ndarray, n_players: int) -> np.ndarray:
    """Off-diagonal interaction values (n, P, P) (zero diagonal) from the values v (n, 2^P) of
    `all_coalitions(P)`."""
    p = n_players
    z = all_coalitions(p).astype(np.float64)
    size = z.sum(axis=1).astype(np.int64)
    c = interaction_weights(p)
    out = np.zeros((len(v), p, p))
    for a in (0, 1):
        za = z if a else 1.0 - z
        for b in (0, 1):
            zb = z if b else 1.0 - z
            w = c[np.clip(size - a - b, 0, p)]  # where size - a - b < 0, za * zb is zero anyway
            sign = 1.0 if a == b else -1.0
            out += sign * np.einsum("tp,nt,tq->npq", za, v * w[None, :], zb, optimize=True)
    idx = np.arange(p)
    out[:, idx, idx] = 0.0
    return out


def walecki_paths(n_vertices: int) -> np.ndarray:
    """(n/2, n) orders of n (even) vertices whose adjacent pairs cover every pair exactly once."""
    n = n_vertices
    half = n // 2
    steps = np.zeros(n, np.int64)
    steps[1::2] = np.arange(1, half + 1)
    steps[2::2] = -np.arange(1, half)
    return (np.arange(half)[:, None] + steps[None, :]) % n


@functools.lru_cache(maxsize=16)
def path_block(n_players: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One block of orders over the players (before relabelling) and its pair samples.

    Returns orders (R, P) and, per pair sample, the order it comes from, the position t of its
    first player (so the predecessors are the first t players of the order) and its weight
    (P - 1)^-1 / q(t), q being how often position t occurs among the block's pair samples.
    For even P every weight is 1.
    """
    p = n_players
    even = p + (p % 2)
    paths = walecki_paths(even)
    orders = np.stack([path[path < p] for path in paths])  # the phantom vertex (= P, odd P) dropped
    rows, positions = [], []
    for r, path in enumerate(paths):
        real = path[path < p]
        where = {int(vx): k for k, vx in enumerate(real)}
        for k in range(len(path) - 1):
            a, b = int(path[k]), int(path[k + 1])
            if a < p and b < p:  # a pair of the decomposition (not one the phantom's removal made)
                rows.append(r)
                positions.append(min(where[a], where[b]))
    positions = np.asarray(positions, np.int64)
    q = np.bincount(positions, minlength=p - 1) / len(positions)
    weight = (1.0 / (p - 1)) / q[positions]
    out = (orders, np.asarray(rows, np.int64), positions, weight)
    for a in out:
        a.setflags(write=False)
    return out


def block_cost(n_players: int) -> int:
    """Coalitions one block needs beyond the empty and full ones."""
    orders, rows, _, _ = path_block(n_players)
    return len(orders) * (n_players - 1) + len(rows)


def min_budget(n_players: int) -> int:
    return block_cost(n_players)


def default_budget(n_players: int) -> int:
    """About 2048 coalitions per background row (kernel SHAP's default), at least one block."""
    return max(block_cost(n_players), 2048)


@functools.lru_cache(maxsize=8)
def path_design(n_players: int, budget: int, seed: int, n_designs: int):
    """`n_designs` independent designs of floor(budget / block_cost) blocks each.

    Returns coalitions (K, m, P) (row 0 empty, row 1 full, then each order's proper prefixes,
    then each pair sample's "predecessors plus the second player" set), and the index maps
    shared by every design: marginal[k] = (prefix_with, prefix_without) rows giving order
    position k's marginal contribution, its player (K, R*P) per design, and per pair sample the
    rows of v(S u {i, j}), v(S u {i}), v(S u {j}), v(S), the weight, and the pair (K, s, 2).
    """
    p = n_players
    orders0, rows0, pos0, w0 = path_block(p)
    n_blocks = max(1, budget // block_cost(p))
    n_orders = len(orders0) * n_blocks
    # coalition layout (shared): 0 empty, 1 full, then prefixes of sizes 1..P-1 of every order,
    # then the swap sets of every pair sample
    prefix_row = lambda o, size: np.where(size == 0, 0, np.where(size == p, 1, 2 + o * (p - 1) + size - 1))
    order_of = (np.arange(n_blocks)[:, None] * len(orders0) + rows0[None, :]).ravel()
    pos = np.tile(pos0, n_blocks)
    weight = np.tile(w0, n_blocks) / n_blocks
    n_pairs = len(order_of)
    swap_row = 2 + n_orders * (p - 1) + np.arange(n_pairs)
    pair_rows = np.stack([prefix_row(order_of, pos + 2), prefix_row(order_of, pos + 1), swap_row,
                          prefix_row(order_of, pos)], axis=1)
    o_idx = np.repeat(np.arange(n_orders), p)
    k_idx = np.tile(np.arange(p), n_orders)
    marginal = np.stack([prefix_row(o_idx, k_idx + 1), prefix_row(o_idx, k_idx)], axis=1)
    m = 2 + n_orders * (p - 1) + n_pairs
    designs = np.zeros((n_designs, m, p), bool)
    players = np.zeros((n_designs, n_orders * p), np.int64)
    pairs = np.zeros((n_designs, n_pairs, 2), np.int64)
    rng = np.random.default_rng(np.random.SeedSequence(seed))
    for d in range(n_designs):
        orders = np.concatenate([rng.permutation(p)[orders0] for _ in range(n_blocks)])
        ranks = np.argsort(orders, axis=1)  # ranks[o, player] = position of player in order o
        designs[d, 1] = True
        prefixes = ranks[:, None, :] < np.arange(1, p)[None, :, None]  # (orders, sizes 1..P-1, P)
        designs[d, 2:2 + n_orders * (p - 1)] = prefixes.reshape(-1, p)
        first, second = orders[order_of, pos], orders[order_of, pos + 1]
        swap = ranks[order_of] < pos[:, None]
        swap[np.arange(n_pairs), second] = True
        designs[d, swap_row] = swap
        players[d] = orders.ravel()
        pairs[d] = np.stack([first, second], axis=1)
    return designs, marginal, players, pair_rows, weight, pairs
