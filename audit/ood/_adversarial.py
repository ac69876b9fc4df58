"""Adversarial-input detection, and the adaptive attack that every detector claim must survive.

Detectors (higher = more suspicious), thresholds set for `fpr` false alarms on clean test rows:
- `squeeze` (images): feature squeezing (Xu, Evans & Qi, NDSS 2018), the largest L1 change of the
  softmax under bit-depth reduction or 2x2 median smoothing;
- `msp`, `energy`, `mahalanobis`: the OOD scores of `audit.ood`, applied to adversarial inputs.

First PGD (the model alone) makes adversarial examples and each detector's detection rate is
measured on those that fool the model. Then an adaptive PGD (Carlini & Wagner, AISec 2017;
Tramer et al. 2020) attacks model and detector jointly: it minimises
relu(margin + kappa) + lam * relu((score - threshold) / scale), with straight-through gradients
(BPDA, Athalye et al. 2018) through the bit-depth squeezer, and keeps per row the misclassified
point with the lowest score; per row it keeps the better of that and plain PGD's point, so it is never
weaker than PGD. A detector's number is reported with its adaptive number beside it.
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from audit.errors import AuditInputError
from audit.ood._features import _batched, jax_features
from audit.ood._scores import Mahalanobis
from audit.results import Finding, MetricSpec, Provenance, Result, timer
from audit.models._xla import jit as xla_jit

ADVERSARIAL_DETECTORS = ("squeeze", "msp", "energy", "mahalanobis")


@dataclasses.dataclass(frozen=True, eq=False)
class DetectionResult(Result):
    """One detector: threshold, false alarms on clean rows, detection of PGD and of adaptive adversarials."""

    detector: str
    threshold: float
    clean_flagged: float
    pgd_success: float
    pgd_detected: float
    adaptive_success: float
    adaptive_detected: float
    adaptive_evasion: float


@dataclasses.dataclass(frozen=True, eq=False)
class AdversarialDetectionReport(Result):
    SCHEMA = "audit.adversarial_detection/1"
    METRICS = (
        MetricSpec("detection_rate:<detector>", "higher", "Detection rate of <detector> (PGD)",
                   "Share of PGD examples that fool the model and that the detector flags, at the report's false-alarm rate."),
        MetricSpec("adaptive_detection_rate:<detector>", "higher", "Detection rate of <detector> (adaptive attack)",
                   "The same against an attack that also pushes the detector's score down: the number to trust."),
        MetricSpec("adaptive_evasion:<detector>", "lower", "Undetected attack success against <detector>",
                   "Share of attacked rows the adaptive attack misclassifies without being flagged."),
    )

    eps: float
    norm: str
    fpr: float
    n: int
    detections: tuple[DetectionResult, ...]
    findings: tuple[Finding, ...]
    provenance: Provenance

    def metrics(self) -> dict[str, float]:
        out = {}
        for d in self.detections:
            out[f"detection_rate:{d.detector}"] = d.pgd_detected
            out[f"adaptive_detection_rate:{d.detector}"] = d.adaptive_detected
            out[f"adaptive_evasion:{d.detector}"] = d.adaptive_evasion
        return out


def _squeezers(x: jax.Array, bits: int) -> list[jax.Array]:
    levels = 2 ** bits - 1
    depth = x + jax.lax.stop_gradient(jnp.round(x * levels) / levels - x)  # BPDA: identity gradient
    padded = jnp.pad(x, ((0, 0), (0, 1), (0, 1), (0, 0)), mode="edge")
    windows = jnp.stack([padded[:, i:i + x.shape[1], j:j + x.shape[2]] for i in (0, 1) for j in (0, 1)])
    median = jnp.sort(windows, axis=0)[1:3].mean(axis=0)  # the median of 4 values
    return [depth, median]


def _score_fn(name: str, model, mahalanobis: Mahalanobis | None, bits: int, features: Callable | None = None):
    """x -> detector score (jax, differentiable), higher = more suspicious."""
    apply, params = model.apply, model.params
    if name == "squeeze":
        def score(x):
            p = jax.nn.softmax(apply(params, x))
            return jnp.max(jnp.stack([jnp.abs(p - jax.nn.softmax(apply(params, s))).sum(-1)
                                      for s in _squeezers(x, bits)]), axis=0)
    elif name == "msp":
        def score(x):
            return -jax.nn.softmax(apply(params, x)).max(-1)
    elif name == "energy":
        def score(x):
            return -jax.nn.logsumexp(apply(params, x), axis=-1)
    else:
        means, precision = jnp.asarray(mahalanobis.means, jnp.float32), jnp.asarray(mahalanobis.precision, jnp.float32)

        def score(x):
            f = features(params, x)
            diff = f.reshape(f.shape[0], 1, -1) - means[None]
            return jnp.min(jnp.einsum("ncd,de,nce->nc", diff, precision, diff), axis=1)
    return score


def _adaptive(model, score, x0, y, *, eps, steps, threshold, scale, lam, kappa, lower, upper, mutable):
    """Joint PGD (L-inf) on margin and detector score; keeps the misclassified point of lowest score."""
    apply, params = model.apply, model.params

    def objective(x):
        logits = apply(params, x)
        true = jnp.take_along_axis(logits, y[:, None], axis=1)[:, 0]
        other = jnp.max(jnp.where(jax.nn.one_hot(y, logits.shape[-1]) > 0, -jnp.inf, logits), axis=1)
        margin = true - other
        s = score(x)
        return jnp.sum(jax.nn.relu(margin + kappa) + lam * jax.nn.relu((s - threshold) / scale)), (margin, s)

    alpha = 2.5 * eps / steps

    def step(i, state):
        x, best_x, best_s = state
        (_, (margin, s)), g = jax.value_and_grad(objective, has_aux=True)(x)
        better = (margin < 0) & (s < best_s)
        best_x = jnp.where(better.reshape((-1,) + (1,) * (x.ndim - 1)), x, best_x)
        best_s = jnp.where(better, s, best_s)
        x = x - alpha * jnp.sign(g) * mutable
        x = jnp.clip(jnp.clip(x, x0 - eps, x0 + eps), lower, upper)
        return x, best_x, best_s

    init = (x0, x0, jnp.full(x0.shape[0], jnp.inf, jnp.float32))
    x, best_x, best_s = jax.lax.fori_loop(0, steps, step, init)
    _, (margin, s) = objective(x)
    better = (margin < 0) & (s < best_s)
    return jnp.where(better.reshape((-1,) + (1,) * (x.ndim - 1)), x, best_x)


def detect_adversarial(model, data, *, eps: float | None = None, steps: int = 40, n: int = 200,
                       detectors: Sequence[str] | None = None, fpr: float = 0.05, bits: int = 4,
                       lam: float = 1.0, kappa: float = 0.5, batch_size: int = 100, features: str | None = None,
                       seed: int = 0) -> AdversarialDetectionReport:
    """Detection rates of each detector on PGD examples and on an adaptive attack, at `fpr` false
    alarms on clean test rows. `eps` defaults to 0.1 for images and 0.25 (standardised units) for tables.
    `features` (what Mahalanobis reads) as in `audit.ood.jax_features`: the adaptive attack
    differentiates through it, so it must be a JAX function, not a numpy callable."""
    from audit.robustness import domain_for, pgd

    names = tuple(detectors) if detectors is not None else tuple(
        d for d in ADVERSARIAL_DETECTORS if d != "squeeze" or data.kind == "image")
    bad = [d for d in names if d not in ADVERSARIAL_DETECTORS or (d == "squeeze" and data.kind != "image")]
    if bad:
        raise AuditInputError(f"adversarial_detection detectors {bad} do not apply to {data.kind} data; choose from "
                              f"{[d for d in ADVERSARIAL_DETECTORS if d != 'squeeze' or data.kind == 'image']}.")
    eps = float(eps if eps is not None else (0.1 if data.kind == "image" else 0.25))
    for key, value, low in (("steps", steps, 1), ("n", n, 10), ("bits", bits, 1), ("batch_size", batch_size, 1)):
        if not isinstance(value, int) or isinstance(value, bool) or value < low:
            raise AuditInputError(f"adversarial_detection.{key} must be an integer >= {low}, got {value!r}.")
    if not 0 < fpr < 0.5 or not eps > 0 or lam < 0:
        raise AuditInputError("adversarial_detection: need 0 < fpr < 0.5, eps > 0 and lam >= 0 "
                              f"(got fpr={fpr}, eps={eps}, lam={lam}).")
    rng = np.random.default_rng(seed)
    with timer() as t:
        test = data.test
        rows = np.sort(rng.choice(len(test), size=min(n, len(test)), replace=False))
        x, y = test.X[rows], test.y[rows]
        keep = model.predict(x) == y  # attack only rows the model gets right
        x, y = x[keep], y[keep].astype(np.int32)
        domain = domain_for(data)
        mahalanobis, feature_fn = None, None
        if "mahalanobis" in names:
            feature_fn, _ = jax_features(model, features)
            batched = _batched(feature_fn, model, 1024)
            train = data.train
            sub = rng.choice(len(train), size=min(5000, len(train)), replace=False)
            mahalanobis = Mahalanobis.fit(batched(train.X[sub]), train.y[sub], model.n_classes)
        key = jax.random.PRNGKey(seed)
        x_pgd = np.concatenate([np.asarray(pgd(model.apply, model.params, x[i:i + batch_size], y[i:i + batch_size],
                                               eps=eps, steps=steps, domain=domain, key=jax.random.fold_in(key, i)))
                                for i in range(0, len(x), batch_size)])
        fooled_pgd = model.predict(x_pgd) != y
        results = []
        for name in names:
            score = xla_jit(_score_fn(name, model, mahalanobis, bits, feature_fn), kind="forward")
            batched = lambda z: np.concatenate([np.asarray(score(jnp.asarray(z[i:i + batch_size])))
                                                for i in range(0, len(z), batch_size)])
            clean = batched(x)
            threshold = float(np.quantile(clean, 1 - fpr))
            scale = float(np.std(clean)) or 1.0
            adaptive = xla_jit(lambda xb, yb: _adaptive(model, _score_fn(name, model, mahalanobis, bits, feature_fn), xb, yb,
                                                        eps=eps, steps=steps, threshold=threshold, scale=scale,
                                                        lam=lam, kappa=kappa, lower=domain.lower,
                                                        upper=domain.upper, mutable=domain.mutable))
            x_ad = np.concatenate([np.asarray(adaptive(jnp.asarray(x[i:i + batch_size]), jnp.asarray(y[i:i + batch_size])))
                                   for i in range(0, len(x), batch_size)])
            score_pgd, score_ad = batched(x_pgd), batched(x_ad)
            # the adaptive attacker keeps, per row, the better of its own point and plain PGD's:
            # misclassified first, then the lower detector score (so it is never weaker than PGD)
            fooled_ad = model.predict(x_ad) != y
            use_pgd = (fooled_pgd & ~fooled_ad) | (fooled_pgd & fooled_ad & (score_pgd < score_ad))
            x_ad = np.where(use_pgd.reshape((-1,) + (1,) * (x.ndim - 1)), x_pgd, x_ad)
            score_ad = np.where(use_pgd, score_pgd, score_ad)
            fooled_ad = fooled_ad | fooled_pgd
            flag_pgd, flag_ad = score_pgd > threshold, score_ad > threshold
            results.append(DetectionResult(
                detector=name, threshold=threshold, clean_flagged=float(np.mean(clean > threshold)),
                pgd_success=float(fooled_pgd.mean()),
                pgd_detected=float(flag_pgd[fooled_pgd].mean()) if fooled_pgd.any() else float("nan"),
                adaptive_success=float(fooled_ad.mean()),
                adaptive_detected=float(flag_ad[fooled_ad].mean()) if fooled_ad.any() else float("nan"),
                adaptive_evasion=float(np.mean(fooled_ad & ~flag_ad))))
    return AdversarialDetectionReport(
        eps=eps, norm="linf", fpr=float(fpr), n=int(len(x)), detections=tuple(results),
        findings=_findings(results, fpr, eps),
        provenance=Provenance("adversarial_detection", {"eps": eps, "steps": steps, "n": n, "detectors": list(names),
                                                        "fpr": fpr, "bits": bits, "lam": lam, "kappa": kappa},
                              seed=seed, seconds=t[0]))


def _findings(results, fpr, eps) -> tuple[Finding, ...]:
    out = []
    for r in results:
        if not np.isfinite(r.pgd_detected):
            continue
        drop = r.pgd_detected - (r.adaptive_detected if np.isfinite(r.adaptive_detected) else 0.0)
        status = "warn" if r.adaptive_evasion > 0.5 else "pass"
        out.append(Finding(
            f"adaptive:{r.detector}", status, f"{r.detector} detector under an adaptive attack",
            f"At {fpr:.0%} false alarms, {r.detector} flags {r.pgd_detected:.0%} of PGD examples (eps {eps:g}) but "
            f"{r.adaptive_detected:.0%} of an attack that also lowers its score (drop {drop:.0%}); "
            f"{r.adaptive_evasion:.0%} of rows are misclassified undetected (warn above 50%).",
            metric=f"adaptive_evasion:{r.detector}", value=r.adaptive_evasion, threshold=0.5))
    return tuple(out)
