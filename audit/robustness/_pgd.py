"""FGSM and PGD: gradient-sign attacks in the L-inf or L2 ball.

FGSM: Goodfellow, Shlens & Szegedy, "Explaining and harnessing adversarial examples" (ICLR 2015).
PGD: Madry et al., "Towards deep learning models resistant to adversarial attacks" (ICLR 2018).
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from audit.robustness import _core
from audit.robustness._check import attack_inputs
from audit.robustness._domain import Domain, direction, project, random_start as _random_start
from audit.models._xla import jit as xla_jit


class _Static(NamedTuple):
    apply_fn: Callable
    norm: str
    loss: str
    targeted: bool


def _fgsm(s: _Static, params, x0, y, eps_b, domain):
    _, _, g = _core.loss_and_grad(s.apply_fn, params, x0, y, s.loss, s.targeted)
    return project(x0, x0 + eps_b * direction(g, s.norm, domain), eps_b, s.norm, domain)


def fgsm(apply_fn: Callable, params: Any, x, y, *, eps, norm: str = "linf", targeted: bool = False,
         loss: str = "ce", domain: Domain | None = None) -> jax.Array:
    """One signed-gradient step of size eps (L2: along the normalised gradient), projected.

    For a linear model this is exactly `x + eps * sign(w)` towards the other class (clipped to
    the domain). `targeted=True` reads `y` as target classes and steps towards them.
    """
    x, y, eps_b, domain = attack_inputs(apply_fn, params, x, y, eps=eps, norm=norm, loss=loss,
                                        domain=domain, name="fgsm")
    s = _Static(apply_fn, norm, loss, bool(targeted))
    return _core.call(_fgsm, s, params, x, y, eps_b, domain, host=not _core.is_tracing(x, params, eps_b))


def _step(s: _Static, consts, i, state):
    params, x0, y, eps_b, alpha_b, domain = consts
    x, best_x, best = state
    _, logits, g = _core.loss_and_grad(s.apply_fn, params, x, y, s.loss, s.targeted)
    sc = _core.score(logits, y, s.targeted)
    better = sc > best
    best_x = jnp.where(better.reshape(eps_b.shape), x, best_x)
    best = jnp.where(better, sc, best)
    x = project(x0, x + alpha_b * direction(g, s.norm, domain), eps_b, s.norm, domain)
    return x, best_x, best


def _start(s: _Static, params, x0, y, eps_b, domain, key, use_random):
    x = jnp.where(use_random, _random_start(key, x0, eps_b, s.norm, domain), x0)
    return x, x0, jnp.full((x0.shape[0],), -jnp.inf, jnp.float32)


def _finish(s: _Static, params, y, state, prev_x, prev_best):
    x, best_x, best = state
    sc = _core.score(s.apply_fn(params, x).astype(jnp.float32), y, s.targeted)
    shape = (x.shape[0],) + (1,) * (x.ndim - 1)
    better = sc > best
    best_x, best = jnp.where(better.reshape(shape), x, best_x), jnp.where(better, sc, best)
    better = best > prev_best  # across restarts
    return jnp.where(better.reshape(shape), best_x, prev_x), jnp.where(better, best, prev_best)


def _run(s: _Static, params, x0, y, eps_b, alpha_b, domain, key, steps, restarts, use_random, host,
         stop_when_fooled=False):
    """Restarts x steps. On the host: Python loops over jitted pieces (stopping once every row
    is fooled, if asked). Compiled: nested fori_loops with dynamic counts, so every budget shares
    one compile."""
    init = (x0, jnp.full((x0.shape[0],), -jnp.inf, jnp.float32))
    consts = (params, x0, y, eps_b, alpha_b, domain)
    if host:
        best_x, best = init
        for r in range(restarts):
            if r and stop_when_fooled and _core.all_fooled(best):
                break  # every row fooled: further restarts cannot change which are
            state = _core.call(_start, s, params, x0, y, eps_b, domain, jax.random.fold_in(key, r),
                               np.bool_(use_random), host=True)
            score = (lambda st, prev=best: jnp.maximum(st[2], prev)) if stop_when_fooled else None
            state = _core.run_steps(_step, s, consts, state, steps, host=True, score=score)
            best_x, best = _core.call(_finish, s, params, y, state, best_x, best, host=True, kind="forward")
        return best_x, best

    def restart(r, carry):
        state = _start(s, params, x0, y, eps_b, domain, jax.random.fold_in(key, r), use_random)
        state = jax.lax.fori_loop(0, steps, lambda i, st: _step(s, consts, i, st), state)
        return _finish(s, params, y, state, *carry)

    return jax.lax.fori_loop(0, restarts, restart, init)


def pgd(apply_fn: Callable, params: Any, x, y, *, eps, steps: int = 20, step_size=None,
        norm: str = "linf", random_start: bool = True, restarts: int = 1, targeted: bool = False,
        loss: str = "ce", domain: Domain | None = None, key: jax.Array, loop: str = "auto",
        return_score: bool = False, stop_when_fooled: bool = False):
    """Projected gradient descent in the `norm` ball of radius `eps` (scalar or one per row).

    Each step moves `step_size` (default 2.5 * eps / steps) along the sign of the gradient
    (L2: the normalised gradient) of `loss` ("ce", "margin" or "dlr") and projects back into
    the ball and the `domain`. Per example it keeps the strongest point seen over all steps
    and `restarts` (random starts), ranked by the logit margin. `targeted=True` reads `y` as
    target classes. `loop` is "host" (a Python loop over one jitted step), "scan" (one compiled
    `lax.fori_loop`) or "auto": host for images, scan for flat inputs (faster on CPU for each,
    by measurement), always scan inside the caller's `jit`. `stop_when_fooled`: the host loop
    stops once every row's margin is positive (by more than rounding): the same rows are fooled,
    and each fooled row gets the strongest point seen until then (what an accuracy needs; an
    attack on a randomised model, whose success is judged on fresh noise, wants the strongest).
    Returns the adversarial batch (and the final margins, positive where the attack succeeded,
    if `return_score`).
    """
    x, y, eps_b, domain = attack_inputs(apply_fn, params, x, y, eps=eps, norm=norm, loss=loss,
                                        domain=domain, steps=steps, name="pgd")
    if int(restarts) != restarts or restarts < 1:
        from audit.errors import AuditInputError

        raise AuditInputError(f"pgd: restarts must be a positive integer, got {restarts}.")
    alpha_b = 2.5 * eps_b / steps if step_size is None else _scaled(step_size, eps_b)
    s = _Static(apply_fn, norm, loss, bool(targeted))
    host = _core.use_host(loop, x, params, eps_b, key)
    args = (s, params, x, y, eps_b, alpha_b, domain, key, int(steps), int(restarts), bool(random_start))
    if host:
        best_x, best = _run(*args, True, bool(stop_when_fooled))
    elif _core.is_tracing(x, params, eps_b, key):
        best_x, best = _run(*args, False)
    else:
        best_x, best = _jit_run(*args)
    return (best_x, best) if return_score else best_x


def _scaled(step_size, eps_b):
    step = jnp.asarray(step_size, eps_b.dtype)
    return jnp.broadcast_to(step.reshape((-1,) + (1,) * (eps_b.ndim - 1)) if step.ndim else step, eps_b.shape)


def _pgd_compiled(*args):
    return _run(*args, False)


_jit_run = xla_jit(_pgd_compiled, static_argnums=(0,))  # budgets stay dynamic
