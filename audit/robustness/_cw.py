"""Carlini & Wagner L2: the smallest L2 change that flips the decision, by optimisation.

Carlini & Wagner, "Towards evaluating the robustness of neural networks" (IEEE S&P 2017).
Minimises `||x' - x||_2^2 + c * max(z_y - max_{j != y} z_j + confidence, 0)` with Adam, and per
example a binary search over the trade-off constant `c`: success halves towards the last failure,
failure multiplies `c` by ten until a success brackets it. Immutable inputs never change.
Difference from the paper: x' is kept in the domain's box by projecting each Adam iterate onto
it, not by the tanh change of variables; tanh saturates at the box's faces (an 8x8 digit or MNIST
image is mostly exact 0s), where its gradient is ~1e-6 and Adam needs hundreds of steps to move
a pixel at all (measured on the digits CNN, 6 x 50 steps:
tanh broke 56% of the rows at median L2 0.78, projection all of them at 0.49). Every example
of the batch is optimised together (the objective separates over rows, and Adam is elementwise).
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from audit.errors import AuditInputError
from audit.robustness import _core
from audit.robustness._check import attack_inputs
from audit.robustness._domain import Domain
from audit.models._xla import jit as xla_jit


class _Static(NamedTuple):
    apply_fn: Callable
    targeted: bool
    steps: int
    search_steps: int


def _bcast(v, like):
    return v.reshape((like.shape[0],) + (1,) * (like.ndim - 1))


def _search(s: _Static, params, x0, y, domain: Domain, c0, lr, confidence):
    lower = jnp.minimum(domain.lower, x0)
    upper = jnp.maximum(domain.upper, x0)
    w0 = x0
    n = x0.shape[0]
    opt = optax.adam(lr)

    def objective(w, c):
        x = x0 + (w - x0) * domain.mutable
        logits = s.apply_fn(params, x).astype(jnp.float32)
        margin = _core.score(logits, y, s.targeted)  # > 0: adversarial
        dist = jnp.sum(((x - x0) ** 2).reshape(n, -1), axis=1)
        hinge = jnp.maximum(confidence - margin, 0.0)
        return jnp.sum(dist + c * hinge), (x, margin, dist)

    grad = jax.grad(objective, has_aux=True)

    def hit_any(margin):
        return (margin >= confidence) & (margin > 0)

    def inner(c, carry):
        best_x, best_d = carry

        def step(_, st):
            w, opt_state, bx, bd, ok = st
            g, (x, margin, dist) = grad(w, c)
            hit = hit_any(margin) & (dist < bd)
            bx = jnp.where(_bcast(hit, x), x, bx)
            bd = jnp.where(hit, dist, bd)
            upd, opt_state = opt.update(g, opt_state, w)
            w = jnp.clip(optax.apply_updates(w, upd), lower, upper)  # projected onto the box
            return w, opt_state, bx, bd, ok | hit_any(margin)

        w, opt_state = w0, opt.init(w0)
        st = (w, opt_state, best_x, best_d, jnp.zeros(n, bool))
        w, _, bx, bd, ok = jax.lax.fori_loop(0, s.steps, step, st)
        # the last iterate is checked too
        _, (x, margin, dist) = grad(w, c)
        hit = hit_any(margin) & (dist < bd)
        bx = jnp.where(_bcast(hit, x), x, bx)
        bd = jnp.where(hit, dist, bd)
        return bx, bd, ok | hit_any(margin)

    def outer(_, carry):
        c, lo, hi, best_x, best_d = carry
        best_x, best_d, success = inner(c, (best_x, best_d))
        hi = jnp.where(success, jnp.minimum(hi, c), hi)
        lo = jnp.where(success, lo, jnp.maximum(lo, c))
        c = jnp.where(hi < jnp.inf, (lo + hi) / 2.0, c * 10.0)
        return c, lo, hi, best_x, best_d

    c = jnp.broadcast_to(jnp.asarray(c0, jnp.float32), (n,))
    init = (c, jnp.zeros(n, jnp.float32), jnp.full(n, jnp.inf, jnp.float32), x0, jnp.full(n, jnp.inf, jnp.float32))
    _, _, _, best_x, best_d = jax.lax.fori_loop(0, s.search_steps, outer, init)
    return best_x, jnp.sqrt(best_d)


_jit_search = xla_jit(_search, static_argnums=(0,))


def cw_l2(apply_fn: Callable, params: Any, x, y, *, steps: int = 100, search_steps: int = 9,
          initial_const: float = 0.01, learning_rate: float = 0.01, confidence: float = 0.0,
          targeted: bool = False, domain: Domain | None = None) -> tuple[jax.Array, np.ndarray, np.ndarray]:
    """Carlini & Wagner L2 attack: (x_adv, distance, found) per example.

    `steps` Adam iterations (`learning_rate`) per value of the trade-off constant, `search_steps`
    binary-search rounds starting at `initial_const`; `confidence` is the margin the adversarial
    must reach (kappa). Returns the closest adversarial found per row (the input itself where
    none was found), its L2 distance (inf where none) and whether one was found. `targeted=True`
    reads `y` as target classes. Deterministic (no random start), so it takes no key.
    Examples that are already misclassified come back unchanged at distance 0.
    """
    x, y, _, domain = attack_inputs(apply_fn, params, x, y, eps=0.0, norm="l2", loss=None,
                                    domain=domain, steps=steps, name="cw_l2")
    if int(search_steps) != search_steps or search_steps < 1:
        raise AuditInputError(f"cw_l2: search_steps must be a positive integer, got {search_steps}.")
    for name, v in (("initial_const", initial_const), ("learning_rate", learning_rate)):
        if not np.isfinite(v) or v <= 0:
            raise AuditInputError(f"cw_l2: {name} must be positive and finite, got {v}.")
    if not np.isfinite(confidence) or confidence < 0:
        raise AuditInputError(f"cw_l2: confidence must be >= 0, got {confidence}.")
    s = _Static(apply_fn, bool(targeted), int(steps), int(search_steps))
    args = (s, params, x, y, domain, jnp.float32(initial_const), jnp.float32(learning_rate),
            jnp.float32(confidence))
    fooled0 = _core.score(apply_fn(params, x).astype(jnp.float32), y, bool(targeted)) > 0
    x_adv, dist = (_search(*args) if _core.is_tracing(x, params) else _jit_search(*args))
    if not bool(targeted):  # already wrong: no change needed
        x_adv = jnp.where(_bcast(fooled0, x), x, x_adv)
        dist = jnp.where(fooled0, 0.0, dist)
    dist = np.asarray(dist, np.float64)
    return x_adv, dist, np.isfinite(dist)
