"""AutoAttack, standard version: four diverse attacks in sequence on the rows still robust.

Croce & Hein, "Reliable evaluation of adversarial robustness with an ensemble of diverse
parameter-free attacks" (ICML 2020). APGD-CE, then APGD-T (the targeted DLR loss towards each
of the top `n_target_classes` other classes in turn), FAB-T (towards the same targets) and, for
L-inf, the black-box Square attack. Each attack only sees the rows that every earlier attack
failed on, so the ensemble is never weaker than any of its parts, and the share of rows each
attack broke first says which one mattered (a large Square share means gradient masking).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Mapping

import jax
import jax.numpy as jnp
import numpy as np

from audit.errors import AuditInputError
from audit.robustness import _core
from audit.robustness._apgd import apgd
from audit.robustness._check import attack_inputs
from audit.robustness._domain import Domain, project
from audit.robustness._fab import fab_t
from audit.robustness._square import square

STAGES = ("apgd-ce", "apgd-t", "fab-t", "square")


@dataclasses.dataclass(frozen=True)
class AutoAttackInfo:
    """Which stage first broke each row (`by`, "" where none did or the row was already
    misclassified) and, per stage, the share of clean-correct rows it broke first."""

    by: np.ndarray
    share: Mapping[str, float]
    clean: np.ndarray


def _predict(apply_fn, params, x):
    return jnp.argmax(apply_fn(params, x), axis=-1)


def _bucket(idx: np.ndarray, n: int) -> np.ndarray:
    """Indices padded (repeating the first) to the next power of two, at most n: few shapes, few
    compiles, however many rows are still robust."""
    size = min(1 << int(np.ceil(np.log2(max(len(idx), 1)))), n)
    return np.concatenate([idx, np.full(size - len(idx), idx[0], idx.dtype)])


def autoattack(apply_fn: Callable, params: Any, x, y, *, eps, norm: str = "linf", domain: Domain | None = None,
               key: jax.Array, steps: int = 100, n_target_classes: int = 9, fab_steps: int | None = None,
               square_queries: int = 5000, stages: tuple[str, ...] = STAGES, return_info: bool = False):
    """Standard AutoAttack within the `norm` ball of radius `eps` (scalar or one per row).

    `steps` is the APGD budget (the reference's 100), `fab_steps` FAB-T's (default `steps`),
    `square_queries` Square's (the reference's 5,000; Square runs for L-inf only).
    `stages` picks a subset of `STAGES` in that order (all by default). Returns the
    adversarial batch (rows no stage broke come back as given), and `AutoAttackInfo` if
    `return_info`. Runs on the host (not jittable): it compacts the still-robust rows.
    """
    x, y, eps_b, domain = attack_inputs(apply_fn, params, x, y, eps=eps, norm=norm, loss=None,
                                        domain=domain, steps=steps, name="autoattack")
    unknown = [s for s in stages if s not in STAGES]
    if unknown or not stages:
        raise AuditInputError(f"autoattack: stages {list(stages)} must be a non-empty subset of {list(STAGES)}.")
    if int(n_target_classes) != n_target_classes or n_target_classes < 1:
        raise AuditInputError(f"autoattack: n_target_classes must be a positive integer, got {n_target_classes}.")
    for name, v in (("fab_steps", fab_steps if fab_steps is not None else steps), ("square_queries", square_queries)):
        if int(v) != v or v < 1:
            raise AuditInputError(f"autoattack: {name} must be a positive integer, got {v}.")
    n = x.shape[0]
    logits = np.asarray(apply_fn(params, x), np.float32)
    k = logits.shape[-1]
    yv = np.asarray(y)
    clean = logits.argmax(axis=1) == yv
    robust = clean.copy()
    x_np = np.asarray(x)
    x_adv = x_np.copy()
    by = np.full(n, "", dtype=object)
    eps_rows = np.asarray(eps_b).reshape(n)
    targets = np.argsort(-logits, axis=1, kind="stable")
    targets = np.array([[t for t in row if t != lab] for row, lab in zip(targets, yv)]).reshape(n, k - 1)
    n_t = min(int(n_target_classes), k - 1)
    t_loss = "dlr" if k >= 4 else "margin"
    fab_steps = int(fab_steps or steps)

    def run(stage, r, fn):
        """Run `fn(xs, ys, eps_s, rows, key)` on the still-robust rows; keep what fools."""
        idx = np.flatnonzero(robust)
        if idx.size == 0:
            return
        rows = _bucket(idx, n)
        xs, ys = jnp.asarray(x_np[rows]), jnp.asarray(yv[rows])
        es = jnp.asarray(eps_rows[rows])
        cand = fn(xs, ys, es, rows, jax.random.fold_in(key, 100 * STAGES.index(stage) + r))
        cand = project(xs, jnp.asarray(cand, jnp.float32), es.reshape((-1,) + (1,) * (xs.ndim - 1)), norm, domain)
        fooled = np.asarray(_core.call(_predict, apply_fn, params, cand, host=True, kind="forward")) != np.asarray(ys)
        m = idx.size
        new = idx[fooled[:m]]
        x_adv[new] = np.asarray(cand)[:m][fooled[:m]]
        by[new] = stage
        robust[new] = False

    if "apgd-ce" in stages:
        run("apgd-ce", 0, lambda xs, ys, es, rows, kk: apgd(apply_fn, params, xs, ys, eps=es, norm=norm, steps=steps,
                                                           loss="ce", domain=domain, key=kk))
    for r in range(n_t) if "apgd-t" in stages else ():
        run("apgd-t", r, lambda xs, ys, es, rows, kk: apgd(apply_fn, params, xs, jnp.asarray(targets[rows, r]),
                                                          eps=es, norm=norm, steps=steps, loss=t_loss,
                                                          targeted=True, domain=domain, key=kk))
    for r in range(n_t) if "fab-t" in stages else ():
        def fab(xs, ys, es, rows, kk, r=r):
            e = es.reshape((-1,) + (1,) * (xs.ndim - 1))
            best, _ = fab_t(apply_fn, params, xs, ys, jnp.asarray(targets[rows, r], jnp.int32), domain=domain,
                            eps_b=e, key=kk, norm=norm, steps=fab_steps)
            return best
        run("fab-t", r, fab)
    if "square" in stages and norm == "linf":
        run("square", 0, lambda xs, ys, es, rows, kk: square(apply_fn, params, xs, ys, eps=es, queries=square_queries,
                                                            domain=domain, key=kk))
    out = jnp.asarray(x_adv)
    if not return_info:
        return out
    total = max(int(clean.sum()), 1)
    share = {s: float(np.sum(by == s) / total) for s in stages if s != "square" or norm == "linf"}
    return out, AutoAttackInfo(by=by.astype(str), share=share, clean=clean)
