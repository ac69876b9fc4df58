"""Auto-PGD: step-size-free PGD with momentum and a budget-aware step-size schedule.

Croce & Hein, "Reliable evaluation of adversarial robustness with an ensemble of diverse
parameter-free attacks" (ICML 2020). Follows the reference implementation (AutoAttack's
`apgd-ce` / `apgd-dlr`): step size 2*eps, momentum 0.75, checkpoints after 22%, then shrinking
windows (-3%, at least 6%) of the budget; at a checkpoint the step halves and the iterate
restarts from the best point when fewer than 75% of the window's steps raised the loss, or when
the previous checkpoint did not halve and the best loss has not improved since.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from audit.errors import AuditInputError
from audit.robustness import _core
from audit.robustness._check import attack_inputs
from audit.robustness._domain import Domain, direction, project, random_start
from audit.models._xla import jit as xla_jit


class _Static(NamedTuple):
    apply_fn: Callable
    norm: str
    loss: str
    targeted: bool


def schedule(steps: int) -> tuple[np.ndarray, np.ndarray]:
    """(is_checkpoint, window) per iteration, as in the reference implementation."""
    k = max(int(0.22 * steps), 1)
    decrease, k_min = max(int(0.03 * steps), 1), max(int(0.06 * steps), 1)
    is_ckpt, window = np.zeros(steps, bool), np.zeros(steps, np.int32)
    i = k - 1
    while i < steps:
        is_ckpt[i], window[i] = True, k
        k = max(k - decrease, k_min)
        i += k
    return is_ckpt, window


def _pad(a: np.ndarray, multiple: int = 100) -> np.ndarray:
    """Pad a per-iteration table to a multiple of 100 entries, so budgets share one compile."""
    size = -(-len(a) // multiple) * multiple
    return np.concatenate([a, np.zeros(size - len(a), a.dtype)])


def _bcast(v, like):
    return v.reshape((like.shape[0],) + (1,) * (like.ndim - 1))


def _init(s: _Static, params, x0, y, eps_b, domain, key):
    x = random_start(key, x0, eps_b, s.norm, domain)
    per, logits, g = _core.loss_and_grad(s.apply_fn, params, x, y, s.loss, s.targeted)
    sc = _core.score(logits, y, s.targeted)
    n = x0.shape[0]
    return dict(x=x, x_prev=x, g=g, eta=2.0 * eps_b, x_best=x, loss_best=per, g_best=g,
                adv=x, adv_score=sc, loss_prev=per, n_incr=jnp.zeros(n, jnp.int32),
                loss_ckpt=per, reduced=jnp.ones(n, bool))


def _step(s: _Static, consts, i, st):
    params, x0, y, eps_b, domain, is_ckpt, window = consts
    x, g = st["x"], st["g"]
    a = jnp.where(i > 0, 0.75, 1.0)
    z = project(x0, x + st["eta"] * direction(g, s.norm, domain), eps_b, s.norm, domain)
    x_new = project(x0, x + a * (z - x) + (1 - a) * (x - st["x_prev"]), eps_b, s.norm, domain)
    per, logits, g_new = _core.loss_and_grad(s.apply_fn, params, x_new, y, s.loss, s.targeted)
    sc = _core.score(logits, y, s.targeted)
    better_adv = sc > st["adv_score"]
    adv = jnp.where(_bcast(better_adv, x), x_new, st["adv"])
    adv_score = jnp.where(better_adv, sc, st["adv_score"])
    improved = per > st["loss_best"]
    x_best = jnp.where(_bcast(improved, x), x_new, st["x_best"])
    g_best = jnp.where(_bcast(improved, x), g_new, st["g_best"])
    loss_best = jnp.where(improved, per, st["loss_best"])
    n_incr = st["n_incr"] + (per > st["loss_prev"]).astype(jnp.int32)
    # checkpoint: halve the step and restart from the best point where progress stalled
    ckpt = is_ckpt[i]
    oscillating = n_incr.astype(jnp.float32) <= 0.75 * window[i].astype(jnp.float32)
    stalled = (~st["reduced"]) & (st["loss_ckpt"] >= loss_best)
    cut = ckpt & (oscillating | stalled)
    eta = jnp.where(_bcast(cut, x), st["eta"] / 2.0, st["eta"])
    x_next = jnp.where(_bcast(cut, x), x_best, x_new)
    g_next = jnp.where(_bcast(cut, x), g_best, g_new)
    return dict(x=x_next, x_prev=x, g=g_next, eta=eta, x_best=x_best, loss_best=loss_best,
                g_best=g_best, adv=adv, adv_score=adv_score, loss_prev=per,
                n_incr=jnp.where(ckpt, 0, n_incr),
                loss_ckpt=jnp.where(ckpt, loss_best, st["loss_ckpt"]),
                reduced=jnp.where(ckpt, cut, st["reduced"]))


def _merge(_, adv, sc, prev_x, prev_sc):
    better = sc > prev_sc
    return jnp.where(_bcast(better, adv), adv, prev_x), jnp.where(better, sc, prev_sc)


def _run(s, params, x0, y, eps_b, domain, key, steps, restarts, host, is_ckpt, window, stop_when_fooled=False):
    init = (x0, jnp.full((x0.shape[0],), -jnp.inf, jnp.float32))
    consts = (params, x0, y, eps_b, domain, is_ckpt, window)
    if host:
        best_x, best = init
        for r in range(restarts):
            if r and stop_when_fooled and _core.all_fooled(best):
                break  # every row fooled: further restarts cannot change which are
            st = _core.call(_init, s, params, x0, y, eps_b, domain, jax.random.fold_in(key, r), host=True)
            score = (lambda state, prev=best: jnp.maximum(state["adv_score"], prev)) if stop_when_fooled else None
            st = _core.run_steps(_step, s, consts, st, steps, host=True, score=score)
            best_x, best = _core.call(_merge, None, st["adv"], st["adv_score"], best_x, best, host=True)
        return best_x, best

    def restart(r, carry):
        st = _init(s, params, x0, y, eps_b, domain, jax.random.fold_in(key, r))
        st = jax.lax.fori_loop(0, steps, lambda i, state: _step(s, consts, i, state), st)
        return _merge(None, st["adv"], st["adv_score"], *carry)

    return jax.lax.fori_loop(0, restarts, restart, init)


def _apgd_compiled(s, p, x, y, e, d, k, n, r, c, w):
    return _run(s, p, x, y, e, d, k, n, r, False, c, w)


_jit_run = xla_jit(_apgd_compiled, static_argnums=(0,))  # budgets stay dynamic (a padded schedule table)


def apgd(apply_fn: Callable, params: Any, x, y, *, eps, steps: int = 100, norm: str = "linf",
         loss: str = "ce", restarts: int = 1, targeted: bool = False, domain: Domain | None = None,
         key: jax.Array, loop: str = "auto", return_score: bool = False, stop_when_fooled: bool = False):
    """Auto-PGD (APGD-CE with loss="ce", APGD-DLR with loss="dlr"): no step size to tune.

    `steps` is the iteration budget (one gradient each, plus one at the random start). Keeps
    per example the point with the largest logit margin seen. See `pgd` for the other options
    (`stop_when_fooled` included).
    """
    x, y, eps_b, domain = attack_inputs(apply_fn, params, x, y, eps=eps, norm=norm, loss=loss,
                                        domain=domain, steps=steps, name="apgd")
    if int(restarts) != restarts or restarts < 1:
        raise AuditInputError(f"apgd: restarts must be a positive integer, got {restarts}.")
    s = _Static(apply_fn, norm, loss, bool(targeted))
    is_ckpt, window = (jnp.asarray(_pad(a)) for a in schedule(int(steps)))
    args = (s, params, x, y, eps_b, domain, key, int(steps), int(restarts))
    if _core.use_host(loop, x, params, eps_b, key):
        best_x, best = _run(*args, True, is_ckpt, window, bool(stop_when_fooled))
    elif _core.is_tracing(x, params, eps_b, key):
        best_x, best = _run(*args, False, is_ckpt, window)
    else:
        best_x, best = _jit_run(*args, is_ckpt, window)
    return (best_x, best) if return_score else best_x
