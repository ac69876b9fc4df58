"""Minimal adversarial perturbation per example: bisection over eps with PGD.

The distance to the decision boundary under an attack: for each example the smallest eps at
which PGD finds an adversarial (an upper bound on the true minimal distance, as PGD is not
exact). All examples are searched together with per-example eps, so the batch never splits.
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

from audit.errors import AuditInputError
from audit.robustness._domain import Domain
from audit.robustness._pgd import pgd


def minimal_perturbation(apply_fn: Callable, params: Any, x, y, *, eps_max: float, norm: str = "linf",
                         search_steps: int = 10, steps: int = 20, restarts: int = 1,
                         domain: Domain | None = None, key: jax.Array,
                         loss: str = "margin", random_start: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(distance, found) per example.

    `distance` is the `norm` size of the smallest adversarial PGD found by `search_steps`
    bisection rounds over (0, eps_max]; 0 for examples already misclassified. Where PGD finds
    nothing even at eps_max, `found` is False and the distance is eps_max (a lower bound).
    The default margin loss never saturates (cross-entropy gradients underflow to exactly
    zero on very confident points, which would stall the search). PGD starts at x itself
    unless `random_start` (then `restarts` random starts per eps).
    """
    if int(search_steps) != search_steps or search_steps < 1:
        raise AuditInputError(f"minimal_perturbation: search_steps must be a positive integer, got {search_steps}.")
    if not np.isfinite(eps_max) or eps_max <= 0:
        raise AuditInputError(f"minimal_perturbation: eps_max must be positive and finite, got {eps_max}.")
    x = jnp.asarray(x, jnp.float32)
    y = jnp.asarray(y, jnp.int32)
    n = x.shape[0]

    def attack(eps, k):
        return pgd(apply_fn, params, x, y, eps=eps, steps=steps, restarts=restarts, norm=norm,
                   domain=domain, key=jax.random.fold_in(key, k), loss=loss, return_score=True,
                   random_start=random_start)

    clean = np.asarray(jnp.argmax(apply_fn(params, x), axis=-1)) == np.asarray(y)
    hi = np.full(n, float(eps_max), np.float32)
    lo = np.zeros(n, np.float32)
    adv, sc = attack(hi, 0)
    found = np.asarray(sc) > 0
    best = np.asarray(adv)
    for t in range(1, int(search_steps) + 1):
        mid = np.where(found, (lo + hi) / 2, hi).astype(np.float32)
        adv, sc = attack(mid, t)
        ok = (np.asarray(sc) > 0) & found
        best = np.where(ok.reshape((n,) + (1,) * (x.ndim - 1)), np.asarray(adv), best)
        hi = np.where(ok, mid, hi)
        lo = np.where(found & ~ok, mid, lo)
    delta = (best - np.asarray(x)).reshape(n, -1)
    size = np.abs(delta).max(axis=1) if norm == "linf" else np.sqrt((delta.astype(np.float64) ** 2).sum(axis=1))
    distance = np.where(found, size, float(eps_max))
    distance = np.where(clean, distance, 0.0)
    return distance.astype(np.float64), (found | ~clean)
