"""Adversarial training recipes for `audit.models.train(..., adversarial=...)`.

- "pgd": Madry et al., "Towards deep learning models resistant to adversarial attacks" (ICLR
  2018): minimise the loss on PGD adversarial examples (optionally mixed with the clean loss).
- "fgsm": Wong, Rice & Kolter, "Fast is better than free: revisiting adversarial training"
  (ICLR 2020): one FGSM step of 1.25 eps from a uniform random start.
- "trades": Zhang et al., "Theoretically principled trade-off between robustness and accuracy"
  (ICML 2019): clean cross-entropy + beta * KL(f(x) || f(x')), x' maximising the KL term.

A recipe is data plus three pure functions that `train` calls inside its jitted step:
`perturb(apply_fn, params, x, y, key, progress)` (attack in evaluation mode, `progress` in
[0, 1] for the eps warm-up), `objective(clean_logits, adv_logits, y)` (per-example loss) and
`prepare(data)` (binds the attack domain of the data at the edge).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax

from audit.errors import AuditInputError
from audit.results import Finding, MetricSpec, Provenance, Result, timer
from audit.robustness import _core
from audit.robustness._domain import Domain, NORMS, check_domain, check_eps, direction, domain_for, project
from audit.robustness._domain import random_start
from audit.robustness._evaluate import evaluate
from audit.robustness._pgd import pgd
from audit.robustness._report import RobustnessReport, eps_name

RECIPES = ("pgd", "fgsm", "trades")


def _kl(clean_logits, adv_logits):
    """Per-example KL(softmax(clean) || softmax(adv))."""
    p = jax.nn.log_softmax(clean_logits.astype(jnp.float32), axis=-1)
    q = jax.nn.log_softmax(adv_logits.astype(jnp.float32), axis=-1)
    return jnp.sum(jnp.exp(p) * (p - q), axis=-1)


@dataclasses.dataclass(frozen=True)
class AdversarialTraining:
    """An adversarial-training recipe: `method` ("pgd", "fgsm" or "trades"), budget `eps` in
    `norm`, attack `steps` and `step_size` (default 2.5 eps / steps; FGSM 1.25 eps), weight of
    the clean loss `clean_weight` (pgd / fgsm: loss = c * CE(clean) + (1 - c) * CE(adversarial)),
    TRADES' `beta`, `warmup` (fraction of training over which eps ramps up from 0) and the
    attack `domain` (default: `domain_for(data)`, the pixel range or the training bounds).
    """

    method: str = "pgd"
    eps: float = 0.1
    norm: str = "linf"
    steps: int = 7
    step_size: float | None = None
    clean_weight: float = 0.0
    beta: float = 6.0
    warmup: float = 0.0
    domain: Domain | None = None

    def __post_init__(self) -> None:
        if self.method not in RECIPES:
            raise AuditInputError(f"adversarial training method {self.method!r} is not known; use one of "
                                  f"{list(RECIPES)}.")
        if self.norm not in NORMS:
            raise AuditInputError(f"adversarial training norm {self.norm!r}; use one of {list(NORMS)}.")
        if not (float(self.eps) > 0 and jnp.isfinite(self.eps)):
            raise AuditInputError(f"adversarial training eps must be a positive number, got {self.eps}.")
        if int(self.steps) != self.steps or self.steps < 1:
            raise AuditInputError(f"adversarial training steps must be a positive integer, got {self.steps}.")
        if self.step_size is not None and not self.step_size > 0:
            raise AuditInputError(f"adversarial training step_size must be positive, got {self.step_size}.")
        if not 0.0 <= self.clean_weight <= 1.0 or not 0.0 <= self.warmup < 1.0 or self.beta < 0:
            raise AuditInputError("clean_weight must be in [0, 1], warmup in [0, 1) and beta >= 0.")

    # ---- the protocol train() uses ------------------------------------------------------
    def prepare(self, data) -> "AdversarialTraining":
        """Bind the attack domain of `data` and check eps against it."""
        domain = domain_for(data) if self.domain is None else check_domain(self.domain, data.input_shape)
        check_eps(self.eps, norm=self.norm, domain=domain, name="adversarial training eps")
        return dataclasses.replace(self, domain=domain)

    @property
    def needs_clean(self) -> bool:
        return self.method == "trades" or self.clean_weight > 0

    def current_eps(self, progress) -> jax.Array:
        if self.warmup <= 0:
            return jnp.asarray(self.eps, jnp.float32)
        return self.eps * jnp.clip(jnp.asarray(progress, jnp.float32) / self.warmup, 0.0, 1.0)

    def perturb(self, apply_fn: Callable, params: Any, x, y, key, progress=1.0) -> jax.Array:
        """Adversarial inputs for a training batch (no gradient flows back through them)."""
        domain = self.domain if self.domain is not None else _core_full(x)
        eps = self.current_eps(progress)
        eps_b = jnp.broadcast_to(eps, (x.shape[0],)).reshape((-1,) + (1,) * (x.ndim - 1))
        if self.method == "pgd":
            alpha = 2.5 * eps / self.steps if self.step_size is None else self.step_size
            adv = pgd(apply_fn, params, x, y, eps=jnp.broadcast_to(eps, (x.shape[0],)), steps=self.steps,
                      step_size=alpha, norm=self.norm, domain=domain, key=key)
        elif self.method == "fgsm":
            alpha = 1.25 * eps_b if self.step_size is None else self.step_size
            start = random_start(key, x, eps_b, self.norm, domain)
            _, _, g = _core.loss_and_grad(apply_fn, params, start, y, "ce", False)
            adv = project(x, start + alpha * direction(g, self.norm, domain), eps_b, self.norm, domain)
        else:
            adv = self._trades_attack(apply_fn, params, x, key, eps_b, domain)
        return jax.lax.stop_gradient(adv)

    def _trades_attack(self, apply_fn, params, x, key, eps_b, domain):
        alpha = 2.5 * eps_b / self.steps if self.step_size is None else self.step_size
        clean = jax.lax.stop_gradient(apply_fn(params, x))
        start = project(x, x + 0.001 * jax.random.normal(key, x.shape) * domain.mutable, eps_b, self.norm, domain)

        def step(_, v):
            g = jax.grad(lambda u: jnp.sum(_kl(clean, apply_fn(params, u))))(v)
            return project(x, v + alpha * direction(g, self.norm, domain), eps_b, self.norm, domain)

        return jax.lax.fori_loop(0, self.steps, step, start)

    def objective(self, clean_logits, adv_logits, y) -> jax.Array:
        """Per-example training loss from clean (None unless `needs_clean`) and adversarial logits."""
        adv_ce = optax.softmax_cross_entropy_with_integer_labels(adv_logits.astype(jnp.float32), y)
        if self.method == "trades":
            clean_ce = optax.softmax_cross_entropy_with_integer_labels(clean_logits.astype(jnp.float32), y)
            return clean_ce + self.beta * _kl(clean_logits, adv_logits)
        if self.clean_weight > 0:
            clean_ce = optax.softmax_cross_entropy_with_integer_labels(clean_logits.astype(jnp.float32), y)
            return self.clean_weight * clean_ce + (1 - self.clean_weight) * adv_ce
        return adv_ce

    def settings(self) -> dict[str, Any]:
        """JSON-ready description (for the training history and provenance)."""
        return {"method": self.method, "eps": float(self.eps), "norm": self.norm, "steps": int(self.steps),
                "step_size": None if self.step_size is None else float(self.step_size),
                "clean_weight": float(self.clean_weight), "beta": float(self.beta), "warmup": float(self.warmup)}


def _core_full(x):
    from audit.robustness._domain import full_domain

    return full_domain(x)


# ---- the audit: retrain adversarially and compare --------------------------------------------
@dataclasses.dataclass(frozen=True, eq=False)
class AdversarialTrainingReport(Result):
    """Before / after adversarial training: the `recipe`, the two robustness evaluations on the
    same rows and eps grid (clean, per attack, worst case, per class and per group) and the
    retrained model's training `history`."""

    SCHEMA = "audit.robustness.adversarial_training/1"
    LEGACY_SCHEMAS = (1,)  # same fields; files written before the codec read as they are
    METRICS = (
        MetricSpec("clean_accuracy:<model>", "higher", "Clean accuracy, <model> training",
                   "Share of the sampled test rows classified correctly by the model <model> adversarial "
                   "training."),
        MetricSpec("robust_accuracy:<attribute>=<group>:<model>@<eps>", "higher",
                   "Robust accuracy of <attribute>=<group>, <model>, eps <eps>",
                   "Worst-case robust accuracy on the group's sampled rows, model <model> adversarial "
                   "training."),
        MetricSpec("robust_accuracy:<model>@<eps>", "higher", "Robust accuracy, <model> training, eps <eps>",
                   "Worst case over this section's evaluation attacks (FGSM and PGD) on its sampled rows, model "
                   "<model> adversarial training; the robustness section adds APGD and Square on the same "
                   "nested rows, so its number can be lower."),
        MetricSpec("clean_accuracy_drop", "lower", "Clean accuracy lost",
                   "Clean accuracy before minus after adversarial training."),
        MetricSpec("robust_accuracy_gain@<eps>", "higher", "Robust accuracy gained at eps <eps>",
                   "Robust accuracy after minus before adversarial training at <eps>."),
    )

    recipe: Mapping[str, Any]
    before: RobustnessReport
    after: RobustnessReport
    history: Mapping[str, Any]
    findings: tuple[Finding, ...]
    provenance: Provenance

    @property
    def eps(self) -> np.ndarray:
        return self.after.eps

    def table(self) -> list[dict[str, Any]]:
        """Rows "before" / "after": clean accuracy and worst-case robust accuracy per eps."""
        rows = []
        for name, rep in (("before", self.before), ("after", self.after)):
            ens = rep.curve("ensemble").accuracy
            rows.append({"model": name, "clean": float(rep.clean_accuracy),
                         **{eps_name(e): float(ens[j]) for j, e in enumerate(rep.eps)}})
        return rows

    def metrics(self) -> dict[str, float]:
        out = {}
        for name, rep in (("before", self.before), ("after", self.after)):
            out[f"clean_accuracy:{name}"] = float(rep.clean_accuracy)
            ens = rep.curve("ensemble").accuracy
            for j, e in enumerate(rep.eps):
                out[f"robust_accuracy:{name}@{eps_name(e)}"] = float(ens[j])
                for c in rep.curves_of("group"):
                    out[f"robust_accuracy:{c.attribute}={c.name}:{name}@{eps_name(e)}"] = float(c.accuracy[j])
        out["clean_accuracy_drop"] = out["clean_accuracy:before"] - out["clean_accuracy:after"]
        for e in self.eps:
            tag = eps_name(e)
            out[f"robust_accuracy_gain@{tag}"] = out[f"robust_accuracy:after@{tag}"] - out[f"robust_accuracy:before@{tag}"]
        return out


def _retrain(model, data, recipe: AdversarialTraining, epochs: int | None, seed: int, progress: bool):
    """The model's architecture (zoo or factory) retrained from its seeded initialisation; a Model
    without a recorded architecture is fine-tuned from its own weights."""
    from audit.models import retrainer

    previous = dict((model.metadata or {}).get("training", {}).get("settings", {}))
    epochs = int(epochs or previous.get("epochs", 30))
    fit, _ = retrainer(model, seed=seed, from_weights=True)
    return fit(data, adversarial=recipe, progress=progress, epochs=epochs, patience=max(epochs, 1),
               class_weight=previous.get("class_weight"))


def adversarial_training(model, data, *, method: str = "pgd", eps: float | None = None, norm: str = "linf",
                         steps: int = 7, clean_weight: float = 0.0, beta: float = 6.0, warmup: float = 0.0,
                         epochs: int | None = None, eval_eps: Sequence[float] | None = None,
                         attacks: Sequence[str] = ("fgsm", "pgd"), n: int = 500, eval_steps: int = 20,
                         bootstrap: int = 200, seed: int = 0, progress: bool = False) -> AdversarialTrainingReport:
    """Retrain `model`'s architecture (zoo models from scratch; other Models from their weights)
    with an `AdversarialTraining` recipe and evaluate both models on the same rows and eps grid.

    `eps` defaults to 0.1 for images and 0.1 std units for tabular data; `epochs` to the
    original training's; `eval_eps` to (0, eps/2, eps, 2 eps) within the domain.
    """
    if eps is None:
        eps = 0.1
    recipe = AdversarialTraining(method, eps=float(eps), norm=norm, steps=steps, clean_weight=clean_weight,
                                 beta=beta, warmup=warmup)
    recipe.prepare(data)  # validate eps against the domain before the (long) retraining
    domain = domain_for(data)
    if eval_eps is None:
        width = domain.width(norm)
        eval_eps = [e for e in (0.0, eps / 2, eps, 2 * eps) if e <= width * (1 + 1e-6)]
    common = dict(norm=norm, eps=eval_eps, attacks=tuple(attacks), n=n, steps=eval_steps, bootstrap=bootstrap,
                  examples_per_eps=0, min_perturbation_n=0, impute_k=(), sanity=False, seed=seed)
    with timer() as clock:
        before = evaluate(model, data, **common)
        retrained = _retrain(model, data, recipe, epochs, seed, progress)
        after = evaluate(retrained, data, **common)
    findings = []
    j = int(np.argmin(np.abs(after.eps - eps)))
    gain = float(after.curve("ensemble").accuracy[j] - before.curve("ensemble").accuracy[j])
    tol = max(0.02, 1.0 / max(after.n, 1))
    findings.append(Finding(
        "adversarial_training_gain", "pass" if gain > tol else "warn",
        "Adversarial training raised robust accuracy" if gain > tol else "Adversarial training did not help",
        f"Worst-case robust accuracy at eps={after.eps[j]:g} went from {before.curve('ensemble').accuracy[j]:.3f} "
        f"to {after.curve('ensemble').accuracy[j]:.3f} ({method}, eps={eps:g})."
        + ("" if gain > tol else " Train longer, raise eps warm-up or check the attack settings."),
        f"robust_accuracy_gain@{eps_name(after.eps[j])}", gain, tol))
    drop = float(before.clean_accuracy - after.clean_accuracy)
    findings.append(Finding(
        "adversarial_training_clean_cost", "pass" if drop <= 0.05 else "warn", "Clean accuracy cost",
        f"Clean accuracy went from {before.clean_accuracy:.3f} to {after.clean_accuracy:.3f}"
        + (": more than 5 points lost; consider clean_weight > 0 or TRADES with a smaller beta." if drop > 0.05
           else "."), "clean_accuracy_drop", drop, 0.05))
    provenance = Provenance(method="robustness.adversarial_training",
                            settings={**recipe.settings(), "epochs": retrained.metadata["training"]["settings"]["epochs"],
                                      "eval_eps": [float(e) for e in after.eps], "attacks": list(attacks), "n": int(n),
                                      "eval_steps": int(eval_steps), "model": model.fingerprint()[:16],
                                      "retrained": retrained.fingerprint()[:16], "data": data.fingerprint()[:16]},
                            seed=int(seed), seconds=float(clock[0]))
    return AdversarialTrainingReport(recipe=recipe.settings(), before=before, after=after,
                                     history=dict(retrained.metadata["training"]), findings=tuple(findings),
                                     provenance=provenance)
