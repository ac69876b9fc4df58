"""Transfer attacks: the black-box threat model of an attacker who only has a surrogate.

A surrogate zoo model is trained with Optax (`audit.models.train`) on the training rows, with
the true labels or distilled on the target model's predictions; PGD and momentum iterative FGSM
(MI-FGSM: Dong et al., "Boosting adversarial attacks with momentum", CVPR 2018) craft
adversarials on the surrogate, and the target is scored on them. Transfer accuracy far below
white-box accuracy at the same budget is a classic sign of gradient masking (Athalye, Carlini &
Wagner 2018): the target's own gradients hide adversarials that a smooth surrogate finds.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Mapping, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from audit.errors import AuditInputError
from audit.models import train
from audit.results import Finding, MetricSpec, Provenance, Result, timer
from audit.robustness import _core
from audit.robustness._check import attack_inputs
from audit.robustness._domain import Domain, direction, project
from audit.robustness._evaluate import domain_and_grid
from audit.robustness._pgd import pgd
from audit.robustness._report import eps_name
from audit.models._xla import jit as xla_jit

TRANSFER_ATTACKS = ("pgd", "mifgsm")


class _Static(NamedTuple):
    apply_fn: Callable
    norm: str
    steps: int


def _mifgsm_run(s: _Static, params, x0, y, eps_b, decay, domain):
    alpha = eps_b / s.steps

    def step(_, st):
        x, g_acc = st
        _, _, g = _core.loss_and_grad(s.apply_fn, params, x, y, "ce", False)
        g = g * domain.mutable
        l1 = jnp.sum(jnp.abs(g).reshape(g.shape[0], -1), axis=1).reshape((-1,) + (1,) * (g.ndim - 1))
        g_acc = decay * g_acc + g / jnp.maximum(l1, 1e-12)
        x = project(x0, x + alpha * direction(g_acc, s.norm, domain), eps_b, s.norm, domain)
        return x, g_acc

    x, _ = jax.lax.fori_loop(0, s.steps, step, (x0, jnp.zeros_like(x0)))
    return x


_jit_mifgsm = xla_jit(_mifgsm_run, static_argnums=(0,))


def mifgsm(apply_fn: Callable, params: Any, x, y, *, eps, steps: int = 10, decay: float = 1.0,
           norm: str = "linf", domain: Domain | None = None) -> jax.Array:
    """Momentum iterative FGSM: `steps` steps of eps/steps along the sign (L2: the direction) of
    the accumulated, L1-normalised gradient with momentum `decay`; the classic transfer attack."""
    x, y, eps_b, domain = attack_inputs(apply_fn, params, x, y, eps=eps, norm=norm, loss="ce",
                                        domain=domain, steps=steps, name="mifgsm")
    if not np.isfinite(decay) or decay < 0:
        raise AuditInputError(f"mifgsm: decay must be >= 0, got {decay}.")
    args = (_Static(apply_fn, norm, int(steps)), params, x, y, eps_b, jnp.float32(decay), domain)
    return _mifgsm_run(*args) if _core.is_tracing(x, params) else _jit_mifgsm(*args)


@dataclasses.dataclass(frozen=True, eq=False)
class TransferReport(Result):
    """Result of `audit.robustness.transfer`: target accuracy on adversarials crafted on a
    surrogate (`accuracy[attack][j]` at `eps[j]`), the surrogate's own fooling rate, and the
    white-box PGD accuracy of the target at the same budgets for comparison."""

    SCHEMA = "audit.robustness.transfer/1"
    METRICS = (
        MetricSpec("clean_accuracy", "higher", "Clean accuracy", "Target accuracy on the attacked sample, unperturbed."),
        MetricSpec("surrogate_agreement", "info", "Surrogate agreement",
                   "Share of sample rows where the surrogate predicts what the target predicts."),
        MetricSpec("transfer_accuracy:<attack>@<eps>", "higher", "Accuracy under transferred <attack> at eps <eps>",
                   "Target accuracy on adversarials crafted on the surrogate (correct and still correct)."),
        MetricSpec("transfer_success_rate:<attack>@<eps>", "lower", "Transfer success of <attack> at eps <eps>",
                   "Share of the target's correctly classified rows that the transferred adversarial flips."),
        MetricSpec("white_box_accuracy@<eps>", "higher", "White-box PGD accuracy at eps <eps>",
                   "Target accuracy under PGD run on the target itself with the same budget."),
    )

    norm: str
    eps: np.ndarray
    attacks: tuple[str, ...]
    surrogate: str
    labels: str
    n: int
    clean_accuracy: float
    surrogate_accuracy: float
    agreement: float
    accuracy: Mapping[str, np.ndarray]
    surrogate_fooled: Mapping[str, np.ndarray]
    white_box_accuracy: np.ndarray
    findings: tuple[Finding, ...]
    provenance: Provenance

    def success_rate(self, attack: str) -> np.ndarray:
        clean = self.clean_accuracy
        return 1.0 - self.accuracy[attack] / clean if clean > 0 else np.full(len(self.eps), np.nan)

    def metrics(self) -> dict[str, float]:
        out = {"clean_accuracy": float(self.clean_accuracy), "surrogate_agreement": float(self.agreement)}
        for j, e in enumerate(self.eps):
            tag = eps_name(e)
            for a in self.attacks:
                out[f"transfer_accuracy:{a}@{tag}"] = float(self.accuracy[a][j])
                out[f"transfer_success_rate:{a}@{tag}"] = float(self.success_rate(a)[j])
            if np.isfinite(self.white_box_accuracy[j]):
                out[f"white_box_accuracy@{tag}"] = float(self.white_box_accuracy[j])
        return out


def _masking_finding(rep: TransferReport, tol: float) -> Finding:
    best = np.min([rep.accuracy[a] for a in rep.attacks], axis=0)
    gap = rep.white_box_accuracy - best
    if not np.isfinite(gap).any():
        return Finding("transfer.gradient_masking", "pass", "Transfer vs white-box not compared",
                       "the model is not differentiable, so no white-box attack ran to compare with.")
    j = int(np.nanargmax(gap))
    e = float(rep.eps[j])
    beats = gap[j] > tol
    return Finding(
        "transfer.gradient_masking", "fail" if beats else "pass",
        "Transfer attack beats the white-box attack" if beats else "White-box attack at least as strong as transfer",
        f"at eps {e:g} the transferred attack leaves {best[j]:.1%} accuracy against {rep.white_box_accuracy[j]:.1%} "
        f"under white-box PGD on the target ({rep.n} rows; {'fail' if beats else 'pass'}: flagged when transfer is "
        f"lower by more than {tol:.0%})" + (": the target's gradients are masked, so its white-box robustness "
                                             "numbers overstate it." if beats else "."),
        metric=f"white_box_accuracy@{eps_name(e)}", value=float(rep.white_box_accuracy[j]),
        threshold=float(best[j] + tol))


def _batched(fn, x, y, batch):
    out = []
    for start in range(0, len(x), batch):
        xb, yb = x[start:start + batch], y[start:start + batch]
        m = len(xb)
        if m < batch:
            xb = np.concatenate([xb, np.repeat(xb[-1:], batch - m, axis=0)])
            yb = np.concatenate([yb, np.repeat(yb[-1:], batch - m, axis=0)])
        out.append(np.asarray(fn(xb, yb, start))[:m])
    return np.concatenate(out)


def transfer(model, data, *, surrogate: str | None = None, labels: str = "data", epochs: int = 15,
             norm: str = "linf", eps: Sequence[float] | None = None, attacks: Sequence[str] = TRANSFER_ATTACKS,
             split: str = "test", n: int = 500, steps: int = 20, batch_size: int | None = None,
             tolerance: float = 0.05, seed: int = 0) -> TransferReport:
    """Target accuracy under adversarials crafted on a surrogate trained by this function.

    `surrogate` is a zoo architecture (default "cnn" for images, "mlp" for tabular data),
    trained for at most `epochs` on the training rows with their true labels (`labels="data"`)
    or distilled on the target's predictions (`labels="model"`), with a seed other than the
    target's. `attacks` from ("pgd", "mifgsm"), `steps` each, at every eps of the grid (default:
    robustness's grid without 0), inside the data's default attack domain. The finding fails
    when transfer leaves lower accuracy than white-box PGD on the target by more than `tolerance`.
    """
    model.check_data(data)
    if labels not in ("data", "model"):
        raise AuditInputError(f"transfer: labels must be 'data' (true labels) or 'model' (distilled on the "
                              f"target's predictions), got {labels!r}.")
    bad = [a for a in attacks if a not in TRANSFER_ATTACKS]
    if bad or not attacks:
        raise AuditInputError(f"transfer: attacks {bad or list(attacks)} must be a non-empty subset of "
                              f"{list(TRANSFER_ATTACKS)}.")
    for name, v in (("n", n), ("steps", steps), ("epochs", epochs)):
        if int(v) != v or v < 1:
            raise AuditInputError(f"transfer: {name} must be a positive integer, got {v}.")
    arch = surrogate or ("cnn" if data.kind == "image" else "mlp")
    domain, grid = domain_and_grid(data, domain=None, eps=eps, norm=norm, allow_categorical=False,
                                   allow_sensitive=False, immutable=())
    grid = grid[grid > 0]
    if grid.size == 0:
        raise AuditInputError("transfer: the eps grid has no positive budget; give eps > 0.")
    with timer() as clock:
        train_data = data
        if labels == "model":
            train_data = dataclasses.replace(data, y=np.asarray(model.predict(data.X), data.y.dtype))
        sur = train(arch, train_data, epochs=int(epochs), seed=int(seed) + 1, progress=False)
        part = data.part(split)
        rows = np.sort(np.random.default_rng(seed).choice(len(part), size=min(int(n), len(part)), replace=False))
        x, y = part.X[rows], part.y[rows]
        batch = min(int(batch_size or (128 if data.kind == "image" else 512)), len(x))
        pred = model.predict(x)
        clean = pred == y
        sur_pred = sur.predict(x)
        key = jax.random.key(seed)
        acc = {a: np.empty(len(grid)) for a in attacks}
        fooled = {a: np.empty(len(grid)) for a in attacks}
        white = np.full(len(grid), np.nan)
        for j, e in enumerate(grid):
            for a in attacks:
                if a == "pgd":
                    fn = lambda xb, yb, s: pgd(sur.apply, sur.params, xb, yb, eps=float(e), norm=norm, steps=int(steps),
                                               domain=domain, key=jax.random.fold_in(key, 1000 * j + s))
                else:
                    fn = lambda xb, yb, s: mifgsm(sur.apply, sur.params, xb, yb, eps=float(e), norm=norm,
                                                  steps=int(steps), domain=domain)
                adv = _batched(fn, x, y, batch)
                acc[a][j] = float((clean & (model.predict(adv) == y)).mean())
                fooled[a][j] = float((sur.predict(adv) != y).mean())
            if model.differentiable:
                fn = lambda xb, yb, s: pgd(model.apply, model.params, xb, yb, eps=float(e), norm=norm,
                                           steps=int(steps), domain=domain, key=jax.random.fold_in(key, 50_000 + 1000 * j + s))
                white[j] = float((clean & (model.predict(_batched(fn, x, y, batch)) == y)).mean())
    rep = TransferReport(
        norm=norm, eps=grid.astype(np.float64), attacks=tuple(attacks), surrogate=arch, labels=labels, n=len(x),
        clean_accuracy=float(clean.mean()), surrogate_accuracy=float((sur_pred == y).mean()),
        agreement=float((sur_pred == pred).mean()), accuracy=acc, surrogate_fooled=fooled, white_box_accuracy=white,
        findings=(),
        provenance=Provenance(method="robustness.transfer",
                              settings={"surrogate": arch, "labels": labels, "epochs": int(epochs), "norm": norm,
                                        "eps": grid.tolist(), "attacks": list(attacks), "split": split, "n": len(x),
                                        "steps": int(steps), "batch_size": batch, "tolerance": float(tolerance),
                                        "model": model.fingerprint()[:16], "data": data.fingerprint()[:16]},
                              seed=int(seed), seconds=float(clock[0])))
    return dataclasses.replace(rep, findings=(_masking_finding(rep, float(tolerance)),))
