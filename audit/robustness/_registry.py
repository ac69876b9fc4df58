"""The attacks `evaluate` can run, with their capabilities as data (not class hierarchies)."""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Mapping

import jax.numpy as jnp
import numpy as np

from audit.robustness._apgd import apgd
from audit.robustness._autoattack import STAGES, autoattack
from audit.robustness._cw import cw_l2
from audit.robustness._domain import broadcast_eps, project
from audit.robustness._pgd import fgsm, pgd
from audit.robustness._square import square, square_pooled


@dataclasses.dataclass(frozen=True)
class AttackSpec:
    """`run(apply_fn, params, x, y, *, eps, norm, domain, key, settings) -> x_adv`. `reads`: the
    keys of `settings` that `run` reads (two runs that differ only in other keys are the same
    attack, so their adversarial examples can be shared).

    An ensemble names its `stages` and gives `run_staged` (same arguments) returning `(x_adv,
    stage)`: per row the index into `stages` of the stage that broke it first, -1 where none did.
    A minimal-perturbation attack gives `minimal(apply_fn, params, x, y, *, norm, domain, key,
    settings) -> (x_closest, distance)`, run once for a whole eps grid: its result at each eps is
    `x_closest` projected into that eps ball (what `run` returns).
    `run_pooled(apply_fn, params, x, y, *, eps, domain, call_keys, positions, settings, slots)`:
    the attack on many rows at once, each with its own eps, returning for row r exactly what `run`
    returns for row `positions[r]` of a call with key `call_keys[r]` (raw key data); `run_attacks`
    gives it the rows of a whole eps grid (Square: rows leave a pool of `slots` as they finish).
    `prefix_shared`: a row's adversarial does not depend on which rows share its batch, so a
    smaller sample may reuse a larger one's (False for Square, whose host loop packs the rows still
    standing into smaller batches, and a model's rounding can depend on the batch size).
    """

    name: str
    run: Callable[..., Any]
    needs_gradients: bool
    stochastic: bool
    norms: tuple[str, ...]
    min_classes: int = 2
    paper: str = ""
    stages: tuple[str, ...] = ()
    run_staged: Callable[..., Any] | None = None
    minimal: Callable[..., Any] | None = None
    reads: tuple[str, ...] = ()
    prefix_shared: bool = True
    run_pooled: Callable[..., Any] | None = None


def _fgsm(apply_fn, params, x, y, *, eps, norm, domain, key, settings: Mapping[str, Any]):
    return fgsm(apply_fn, params, x, y, eps=eps, norm=norm, domain=domain)


def _pgd(apply_fn, params, x, y, *, eps, norm, domain, key, settings):
    return pgd(apply_fn, params, x, y, eps=eps, norm=norm, domain=domain, key=key,
               steps=settings["steps"], restarts=settings["restarts"], loss=settings.get("loss", "ce"),
               stop_when_fooled=True)


def _apgd(loss):
    def run(apply_fn, params, x, y, *, eps, norm, domain, key, settings):
        return apgd(apply_fn, params, x, y, eps=eps, norm=norm, domain=domain, key=key, loss=loss,
                    steps=settings["apgd_steps"], restarts=settings["restarts"], stop_when_fooled=True)
    return run


def _square(apply_fn, params, x, y, *, eps, norm, domain, key, settings):
    return square(apply_fn, params, x, y, eps=eps, domain=domain, key=key, queries=settings["square_queries"])


def _square_pooled(apply_fn, params, x, y, *, eps, domain, call_keys, positions, settings, slots):
    return square_pooled(apply_fn, params, x, y, eps=eps, domain=domain, call_keys=call_keys, positions=positions,
                         queries=settings["square_queries"], slots=slots)


def _autoattack_staged(apply_fn, params, x, y, *, eps, norm, domain, key, settings):
    """AutoAttack's adversarials and, per row, the index in `STAGES` of the stage that broke it."""
    adv, info = autoattack(apply_fn, params, x, y, eps=eps, norm=norm, domain=domain, key=key,
                           steps=settings["apgd_steps"], square_queries=settings["square_queries"],
                           return_info=True)
    by = np.asarray(info.by)
    stage = np.array([STAGES.index(s) if s else -1 for s in by], np.int32).reshape(len(by))
    return adv, stage


def _autoattack(apply_fn, params, x, y, *, eps, norm, domain, key, settings):
    return autoattack(apply_fn, params, x, y, eps=eps, norm=norm, domain=domain, key=key,
                      steps=settings["apgd_steps"], square_queries=settings["square_queries"])


def _cw_minimal(apply_fn, params, x, y, *, norm, domain, key, settings):
    """C&W's closest adversarial per row and its L2 distance (inf where none was found)."""
    adv, dist, _ = cw_l2(apply_fn, params, x, y, steps=settings["apgd_steps"], domain=domain)
    return adv, dist


def _cw(apply_fn, params, x, y, *, eps, norm, domain, key, settings):
    """C&W's closest adversarial, pulled into the eps ball (unchanged when it lies inside)."""
    adv, _ = _cw_minimal(apply_fn, params, x, y, norm=norm, domain=domain, key=key, settings=settings)
    return project_closest(x, adv, eps, domain)


def project_closest(x, closest, eps, domain):
    """A minimal-perturbation attack's result at budget `eps`: its closest adversarial projected
    into the L2 ball (unchanged when it lies inside)."""
    x = jnp.asarray(x, jnp.float32)
    return project(x, jnp.asarray(closest, jnp.float32), broadcast_eps(eps, x), "l2", domain)


ATTACKS: dict[str, AttackSpec] = {
    "fgsm": AttackSpec("fgsm", _fgsm, True, False, ("linf", "l2"), paper="Goodfellow et al. 2015"),
    "pgd": AttackSpec("pgd", _pgd, True, True, ("linf", "l2"), paper="Madry et al. 2018",
                      reads=("steps", "restarts", "loss")),
    "apgd": AttackSpec("apgd", _apgd("ce"), True, True, ("linf", "l2"), paper="Croce & Hein 2020",
                       reads=("apgd_steps", "restarts")),
    "apgd_dlr": AttackSpec("apgd_dlr", _apgd("dlr"), True, True, ("linf", "l2"), min_classes=3,
                           paper="Croce & Hein 2020", reads=("apgd_steps", "restarts")),
    "square": AttackSpec("square", _square, False, True, ("linf",), paper="Andriushchenko et al. 2020",
                         reads=("square_queries",), prefix_shared=False, run_pooled=_square_pooled),
    "autoattack": AttackSpec("autoattack", _autoattack, True, True, ("linf", "l2"), paper="Croce & Hein 2020",
                             stages=STAGES, run_staged=_autoattack_staged, reads=("apgd_steps", "square_queries")),
    "cw": AttackSpec("cw", _cw, True, False, ("l2",), paper="Carlini & Wagner 2017", minimal=_cw_minimal,
                     reads=("apgd_steps",)),
}
