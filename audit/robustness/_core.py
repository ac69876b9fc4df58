"""Shared attack machinery: per-example losses, the attack score and the step loop.

All losses are per example and *maximised* by the attacker. `score` orders candidate
adversarials (higher is stronger); an example is fooled when its score is positive.
"""

from __future__ import annotations

import functools
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax

from audit.errors import AuditInputError
from audit.models._xla import jit as xla_jit

LOSSES = ("ce", "margin", "dlr")


def _other_max(logits: jnp.ndarray, label: jnp.ndarray) -> jnp.ndarray:
    onehot = jax.nn.one_hot(label, logits.shape[-1], dtype=bool)
    return jnp.max(jnp.where(onehot, -jnp.inf, logits), axis=-1)


def _pick(logits: jnp.ndarray, label: jnp.ndarray) -> jnp.ndarray:
    return jnp.take_along_axis(logits, label[:, None], axis=-1)[:, 0]


def score(logits: jnp.ndarray, y: jnp.ndarray, targeted: bool) -> jnp.ndarray:
    """Margin in the attacker's favour: positive exactly when the attack has succeeded."""
    if targeted:
        return _pick(logits, y) - _other_max(logits, y)
    return _other_max(logits, y) - _pick(logits, y)


def loss(name: str, logits: jnp.ndarray, y: jnp.ndarray, targeted: bool) -> jnp.ndarray:
    """Per-example attack loss (to maximise): cross-entropy, CW margin or DLR (Croce & Hein 2020)."""
    logits = logits.astype(jnp.float32)
    if name == "ce":
        ce = optax.softmax_cross_entropy_with_integer_labels(logits, y)
        return -ce if targeted else ce
    if name == "margin":
        return score(logits, y, targeted)
    if name == "dlr":
        k = logits.shape[-1]
        if k < 3 or (targeted and k < 4):
            raise AuditInputError(f"the DLR loss needs at least {4 if targeted else 3} classes "
                                  f"(the model has {k}); use loss='ce' or 'margin'.")
        top = -jnp.sort(-logits, axis=-1)
        if targeted:
            # y holds the target; the DLR-targeted loss needs the true label, which a targeted
            # attack does not have here, so use the strongest non-target class instead.
            scale = top[:, 0] - 0.5 * (top[:, 2] + top[:, 3]) + 1e-12
            return (_pick(logits, y) - _other_max(logits, y)) / scale
        scale = top[:, 0] - top[:, 2] + 1e-12
        return (_other_max(logits, y) - _pick(logits, y)) / scale
    raise AuditInputError(f"loss {name!r} is not supported; use one of {list(LOSSES)}.")


def loss_and_grad(apply_fn: Callable, params: Any, x: jnp.ndarray, y: jnp.ndarray, name: str,
                  targeted: bool) -> tuple[jnp.ndarray, jnp.ndarray, jnp.ndarray]:
    """(per-example loss, logits, input gradient). Eval-mode models treat rows independently,
    so the gradient of the summed loss is the per-example gradient (what vmap would give)."""

    def total(x):
        logits = apply_fn(params, x).astype(jnp.float32)
        per = loss(name, logits, y, targeted)
        return jnp.sum(per), (per, logits)

    (_, (per, logits)), g = jax.value_and_grad(total, has_aux=True)(x)
    return per, logits, g


def is_tracing(*arrays) -> bool:
    return any(isinstance(a, jax.core.Tracer) for a in jax.tree_util.tree_leaves(arrays))


def check_loop(loop: str) -> str:
    if loop not in ("auto", "host", "scan"):
        raise AuditInputError(f"loop {loop!r} must be 'auto', 'host' or 'scan'.")
    return loop


@functools.lru_cache(maxsize=None)
def _jitted(fn: Callable, kind: str) -> Callable:
    """`fn` jitted with its first argument static; `kind` "forward" when `fn` only evaluates the
    model (compile options differ: audit/models/_xla.py)."""
    return xla_jit(fn, kind=kind, static_argnums=0)


def call(fn: Callable, static: Any, *args, host: bool, kind: str = "gradient"):
    """Call `fn(static, *args)`, jitted (one cached compile per static config) unless tracing."""
    return _jitted(fn, kind)(static, *args) if host else fn(static, *args)


CHECK_EVERY = 4  # host-loop steps between two looks at whether every row is fooled (0: never look)
FOOLED_MARGIN = 1e-3  # a row counts as fooled for stopping early once its logit margin is past this,
# far above the rounding by which another compile of the model could move it back over zero


def run_steps(step: Callable, static: Any, consts: Any, state: Any, n: int, *, host: bool,
              score: Callable | None = None) -> Any:
    """Run `state = step(static, consts, i, state)` for i < n.

    On the host: a Python loop over one jitted step (measured faster on CPU for conv nets than
    a compiled loop). Under tracing (inside the caller's jit, e.g. adversarial training):
    `lax.fori_loop`, so the attack stays jittable.
    `score(state)`: each row's best attack score so far; the host loop stops early once every
    row of the call is fooled (`all_fooled`, looked at every `CHECK_EVERY` steps). Each row's
    steps are those of the full loop up to the stop, so which rows are fooled never changes; what
    is saved are the steps that could only push already fooled rows further (as AutoAttack, which
    attacks only the rows still standing).
    """
    if host:
        jitted = _jitted(step, "gradient")
        for i in range(n):
            if score is not None and i and i % max(CHECK_EVERY, 1) == 0 and all_fooled(score(state)):
                break
            state = jitted(static, consts, np.int32(i), state)
        return state
    return jax.lax.fori_loop(0, n, lambda i, s: step(static, consts, i, s), state)


def all_fooled(scores) -> bool:
    """Whether a host loop asked to stop once every row is fooled may stop: every row's score is
    past `FOOLED_MARGIN` (one small transfer to the host; never with `CHECK_EVERY` 0)."""
    return bool(CHECK_EVERY) and bool(np.all(np.asarray(scores) > FOOLED_MARGIN))


def use_host(loop: str, x, *arrays) -> bool:
    """Host loop for 'host', compiled loop for 'scan'. 'auto' picks by measurement on CPU: a host
    loop over one jitted step for images (PGD-20 on the MNIST CNN: 2.6x faster than a compiled
    loop, within 5% of 20 bare gradient calls; bench/user_models.py: 3.0x on a user's Linen CNN
    with nn.max_pool and BatchNorm, 3.2x on the zoo CNN), a compiled loop for flat inputs (tabular
    MLP: 2x faster, where per-step dispatch dominates; 2.1x on a user's NNX MLP, 1.4x on the zoo
    MLP), and always the compiled loop under tracing. (Issue #23 measured the compiled loop 16%
    faster on a user CNN whose pool gradient was XLA's select_and_scatter; with that gradient
    rewritten, audit/models/_rewrite.py, the host loop wins there as well.)"""
    check_loop(loop)
    if loop == "scan" or is_tracing(x, *arrays):
        return False
    return loop == "host" or x.ndim >= 3
