"""Exact interventional Shapley values by enumerating all 2^P coalitions.

phi_j = sum over S not containing j of |S|! (P-|S|-1)! / P! * (v(S u {j}) - v(S))
(Shapley 1953, "A value for n-person games"), with v(S) = E_b f(x_S, b_not S). Every
coalition's value is computed once (2^P * B model calls per example, chunked in JAX) and the
values are combined with one precomputed (P, 2^P) weight matrix in float64.
"""

from __future__ import annotations

import functools
import math

import numpy as np

from audit.explain._players import coalition_values

MAX_PLAYERS = 20


def all_coalitions(n_players: int) -> np.ndarray:
    """(2^P, P) boolean: row k holds the players in the bits of k (row 0 empty, last row full)."""
    ids = np.arange(2 ** n_players, dtype=np.int64)
    return ((ids[:, None] >> np.arange(n_players)) & 1).astype(bool)


@functools.lru_cache(maxsize=8)
def shapley_matrix(n_players: int) -> np.ndarray:
    """W (P, 2^P) with phi = W @ v for v over `all_coalitions(P)`: W[j, S] = w(|S|-1) if j is in
    S, else -w(|S|), where w(s) = s! (P-s-1)! / P!."""
    p = n_players
    w = np.array([math.factorial(s) * math.factorial(p - s - 1) / math.factorial(p) for s in range(p)]
                 + [0.0])
    z = all_coalitions(p)
    size = z.sum(axis=1)
    plus = w[np.maximum(size - 1, 0)]
    out = np.where(z.T, plus[None, :], -w[size][None, :])
    out.setflags(write=False)
    return out


def exact_shap(model, x: np.ndarray, cls: np.ndarray, background: np.ndarray, owner: np.ndarray,
               n_players: int, *, output: str, chunk_rows: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Exact values (n, P), base values v(empty) (n,) and outputs f(x) = v(full) (n,)."""
    v = coalition_values(model, x, cls, background, all_coalitions(n_players), owner,
                         output=output, chunk_rows=chunk_rows)
    return v @ shapley_matrix(n_players).T, v[:, 0], v[:, -1]
