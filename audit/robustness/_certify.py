"""`certify(model, data)`: empirical robust accuracy under attack next to what can be proved.

One table per eps: clean accuracy, each attack (FGSM, PGD, APGD, Square), the worst case over
attacks, IBP-certified accuracy (a lower bound on the base model's robust accuracy) and
randomized-smoothing certified accuracy (for the smoothed classifier). Consistency checks:
IBP-certified accuracy can never exceed any attack's robust accuracy on the same rows, and no
example smoothing certifies may be flipped by an attack on the smoothed classifier.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import numpy.typing as npt

from audit.errors import AuditInputError
from audit.models._batching import padded_batches
from audit.results import Finding, MetricSpec, Provenance, Result, timer
from audit.robustness._domain import Domain
from audit.robustness._evaluate import (attack_batch, attack_settings, default_attacks, domain_and_grid, run_attacks,
                                        sample_rank, sample_rows, validate)
from audit.robustness._ibp import check_ibp, ibp_margins
from audit.robustness._pgd import pgd
from audit.robustness._report import eps_name
from audit.robustness._smoothing import ABSTAIN, certify_smoothed, predict_smoothed

METHODS = ("ibp", "smoothing")


@dataclasses.dataclass(frozen=True, eq=False)
class CertificationReport(Result):
    """Result of `certify`: `accuracy[column]` over `eps` for the columns "clean", each attack,
    "worst_case", "ibp" and "smoothing" (those that ran). `ibp_margin` (eps x examples) holds the
    certified logit-margin lower bounds; `smoothing_radius` / `smoothing_prediction` the smoothed
    classifier's certified L2 radius and prediction (-1 = abstain) per example; `radius_scale`
    turns an eps of `norm` into the L2 radius smoothing must certify (sqrt(#inputs) for linf).
    """

    SCHEMA = "audit.robustness.certify/1"
    LEGACY_SCHEMAS = (1,)  # same fields; files written before the codec read as they are
    METRICS = (
        MetricSpec("clean_accuracy", "higher", "Clean accuracy",
                   "Share of the certified sample classified correctly without perturbation."),
        MetricSpec("certified_accuracy:<method>@<eps>", "higher", "Certified accuracy, <method> at eps <eps>",
                   "Share of the sample provably classified correctly for every perturbation within <eps> "
                   "(by <method>)."),
        MetricSpec("certification_gap:<method>@<eps>", "lower", "Certification gap, <method> at eps <eps>",
                   "Empirical worst-case robust accuracy minus certified accuracy: how loose the certificate"
                   " is."),
        MetricSpec("robust_accuracy@<eps>", "higher", "Robust accuracy at eps <eps>",
                   "Share of the certified sample still correct under the strongest of this section's attacks "
                   "(setting `attacks`, default FGSM and PGD) at <eps>, an upper bound on the certified. The "
                   "sample is the first n rows of the robustness section's (same seed), which adds APGD and "
                   "Square, so its robust accuracy can only be lower."),
        MetricSpec("robust_accuracy:<attack>@<eps>", "higher", "Robust accuracy, <attack> at eps <eps>",
                   "Share of the sample still correct under <attack> at <eps>."),
        MetricSpec("smoothed_accuracy", "higher", "Smoothed classifier accuracy",
                   "Share of the sample the randomized-smoothing classifier gets right (abstentions count as"
                   " wrong)."),
        MetricSpec("smoothing_abstain_rate", "lower", "Smoothing abstentions",
                   "Share of the sample where the smoothed classifier abstains."),
        MetricSpec("median_certified_radius", "higher", "Median certified radius",
                   "Median L2 radius certified by randomized smoothing (0 for wrong or abstained rows)."),
    )

    norm: str
    eps: np.ndarray
    n: int
    methods: tuple[str, ...]
    attacks: tuple[str, ...]
    accuracy: Mapping[str, np.ndarray]
    labels: npt.NDArray[np.int64]
    ibp_margin: np.ndarray
    smoothing_radius: np.ndarray
    smoothing_prediction: npt.NDArray[np.int64]
    radius_scale: float
    smoothing: Mapping[str, Any]  # sigma and alpha (floats), n0 and n (ints)
    checks: Mapping[str, float]
    kind: str
    class_names: tuple[str, ...]
    findings: tuple[Finding, ...]
    provenance: Provenance

    @property
    def columns(self) -> tuple[str, ...]:
        return tuple(self.accuracy)

    def table(self) -> list[dict[str, float]]:
        """One row per eps: {"eps": e, column: accuracy, ...}."""
        return [{"eps": float(e), **{c: float(v[j]) for c, v in self.accuracy.items()}}
                for j, e in enumerate(self.eps)]

    def metrics(self) -> dict[str, float]:
        out = {"clean_accuracy": float(self.accuracy["clean"][0])}
        for j, e in enumerate(self.eps):
            tag = eps_name(e)
            for c, v in self.accuracy.items():
                if c == "clean":
                    continue
                if c in METHODS:
                    out[f"certified_accuracy:{c}@{tag}"] = float(v[j])
                    if "worst_case" in self.accuracy and c == "ibp":
                        out[f"certification_gap:{c}@{tag}"] = float(self.accuracy["worst_case"][j] - v[j])
                elif c == "worst_case":
                    out[f"robust_accuracy@{tag}"] = float(v[j])
                else:
                    out[f"robust_accuracy:{c}@{tag}"] = float(v[j])
        if "smoothing" in self.methods and self.smoothing_prediction.size:
            pred = self.smoothing_prediction
            out["smoothed_accuracy"] = float(np.mean(pred == self.labels))
            out["smoothing_abstain_rate"] = float(np.mean(pred == ABSTAIN))
            ok = pred == self.labels
            out["median_certified_radius"] = float(np.median(np.where(ok, self.smoothing_radius, 0.0)))
        return out


@functools.lru_cache(maxsize=8)  # one closure per model function: PGD compiles once, not per call
def _smoothed_apply(apply_fn):
    """log of the Monte-Carlo smoothed class probabilities, noise fixed in the params (SmoothAdv)."""
    def apply(p, x):
        params, noise = p
        pts = x[:, None] + noise[None]
        logits = apply_fn(params, pts.reshape((-1,) + x.shape[1:])).astype(jnp.float32)
        prob = jax.nn.softmax(logits, axis=-1).reshape(x.shape[0], noise.shape[0], -1).mean(axis=1)
        return jnp.log(prob + 1e-12)
    return apply


def attack_smoothed(model, x, y, *, eps, norm: str, sigma: float, domain: Domain, samples: int = 8,
                    steps: int = 10, mutable=None, seed: int = 0, batch_size: int | None = None) -> np.ndarray:
    """PGD on the smoothed classifier's expected softmax (Salman et al. 2019, "Provably robust deep
    learning via adversarially trained smoothed classifiers"), `samples` fixed noise draws.

    `eps` is a scalar or one budget per row. With `batch_size`, rows go through fixed-size padded
    batches (batch b's random start from `fold_in(key, b)`), so every number of rows and every
    mix of budgets shares one compiled attack."""
    key = jax.random.key(seed)
    mask = np.asarray(domain.mutable) if mutable is None else mutable
    noise = jax.random.normal(key, (samples,) + tuple(model.input_shape)) * sigma * mask
    apply, params = _smoothed_apply(model.apply), (model.params, noise)
    if batch_size is None:
        return np.asarray(pgd(apply, params, x, y, eps=eps, norm=norm, steps=steps, domain=domain,
                              key=jax.random.fold_in(key, 1)))
    x = np.asarray(x, np.float32)
    eps_rows = np.broadcast_to(np.asarray(eps, np.float32), (len(x),))
    index = np.arange(len(x)) // int(batch_size)
    return padded_batches(
        lambda xb, yb, eb, ib: pgd(apply, params, xb, yb, eps=eb, norm=norm, steps=steps, domain=domain,
                                   key=jax.random.fold_in(jax.random.fold_in(key, 1), int(ib[0]))),
        [x, np.asarray(y), eps_rows, index], int(batch_size))


def _finding_ibp(grid, ibp, empirical) -> Finding:
    positive = grid > 0
    worst = min(empirical, key=lambda name: float(np.sum(empirical[name])))
    excess = {a: float(np.max(ibp - v)) for a, v in empirical.items()}
    broken = {a: d for a, d in excess.items() if d > 1e-12}
    if broken:
        return Finding("certified_le_empirical:ibp", "fail", "IBP certificate contradicts an attack",
                       f"IBP-certified accuracy exceeds the robust accuracy under {sorted(broken)} by up to "
                       f"{max(broken.values()):.3g}: a certified example was fooled. The bounds or the attack "
                       "domain are wrong; report this as a bug.", "certification_excess:ibp",
                       max(broken.values()), 0.0)
    if positive.any() and not (ibp[positive] > 0).any():
        return Finding("certified_le_empirical:ibp", "warn", "IBP certifies nothing beyond eps=0",
                       "IBP bounds are sound but loose for models not trained for them: the certified accuracy is "
                       "0 at every eps > 0 (a lower bound, consistent with the attacks). Use smoothing, or "
                       "train with IBP / adversarial training for provable robustness.",
                       "certified_accuracy:ibp", 0.0, None)
    return Finding("certified_le_empirical:ibp", "pass", "IBP certificates are consistent with the attacks",
                   f"IBP-certified accuracy never exceeds the attacks' robust accuracy (worst: {worst}).",
                   "certification_excess:ibp", float(max(excess.values())), 0.0)


def _finding_smoothing(violations: int, checked: int, alpha: float) -> Finding:
    allowed = 2 * alpha * checked + 3 * np.sqrt(2 * alpha * max(checked, 1))
    if violations > allowed:
        return Finding("certified_le_empirical:smoothing", "fail", "Smoothing certificate contradicted",
                       f"{violations} of {checked} certified examples were flipped by an attack on the smoothed "
                       f"classifier; with alpha={alpha:g} at most {allowed:.1f} may be. Use more noise samples "
                       "or report a bug.", "smoothing_violations", float(violations), float(allowed))
    return Finding("certified_le_empirical:smoothing", "pass", "Smoothing certificates survive attacks",
                   f"{violations} of {checked} certified examples flipped by PGD on the smoothed classifier "
                   f"(alpha={alpha:g} allows {allowed:.1f}).", "smoothing_violations", float(violations),
                   float(allowed))


def certify(model, data, *, norm: str = "linf", eps: Sequence[float] | None = None,
            methods: Sequence[str] | None = None, attacks: Sequence[str] | None = None, split: str = "test",
            n: int = 500, steps: int = 20, restarts: int = 1, square_queries: int = 500,
            sigma: float = 0.25, n0: int = 100, n_samples: int = 1000, alpha: float = 0.001,
            smoothing_attack_steps: int = 10, smoothing_attack_samples: int = 8,
            domain: Domain | None = None, allow_categorical: bool = False, allow_sensitive: bool = False,
            immutable: Sequence[str] = (), module: Any = None, batch_size: int | None = None,
            seed: int = 0) -> CertificationReport:
    """Empirical and certified robust accuracy of `model` on a seeded sample of `n` rows of `split`.

    methods: "ibp" and / or "smoothing"; None (default) means both for norm="linf" when IBP can bound
    every primitive of the model's jaxpr (or walk `module=`'s layers), smoothing alone otherwise
    (with a warning finding naming the unsupported primitive).

    Attacks run through `evaluate` (same rows, same `domain`). IBP (linf only) bounds the base
    model on the eps box; randomized smoothing (`sigma`, `n0` selection and `n_samples`
    estimation draws, failure probability `alpha`) certifies an L2 radius for the smoothed
    classifier, which covers a linf eps when radius >= eps * sqrt(#mutable inputs). Examples
    smoothing certifies are attacked with PGD on the smoothed classifier
    (`smoothing_attack_steps`, 0 to skip) to check the certificates empirically.
    """
    skipped = None
    if methods is None:  # every method that applies: IBP needs an L-inf box and bounds for every primitive
        unsupported = None
        if norm == "linf":
            try:
                check_ibp(model, module)
            except AuditInputError as exc:
                if module is not None:  # the caller gave the layers for IBP: say why they fail
                    raise
                unsupported = str(exc)
        methods = METHODS if norm == "linf" and unsupported is None else ("smoothing",)
        if unsupported:
            skipped = unsupported
    methods = tuple(methods)
    unknown = sorted(set(methods) - set(METHODS))
    if unknown or not methods:
        raise AuditInputError(f"certify: methods {unknown or list(methods)} not known; choose from {list(METHODS)}.")
    if "ibp" in methods and norm != "linf":
        raise AuditInputError("certify: IBP bounds an L-inf box; use norm='linf' or methods=('smoothing',).")
    if not (np.isfinite(sigma) and sigma > 0) or not 0 < alpha < 0.5 or n0 < 1 or n_samples < 1:
        raise AuditInputError("certify: sigma must be > 0, alpha in (0, 0.5), n0 and n_samples positive.")
    if "ibp" in methods:
        check_ibp(model, module)  # fail early, naming an unsupported layer or primitive
    domain, grid = domain_and_grid(data, domain=domain, eps=eps, norm=norm, allow_categorical=allow_categorical,
                                   allow_sensitive=allow_sensitive, immutable=immutable)
    attacks = default_attacks(model, norm) if attacks is None else tuple(attacks)
    validate(model, data, norm, attacks, n, 0, 0.5, 0, ())
    settings = attack_settings(steps=steps, restarts=restarts, apgd_steps=None, square_queries=square_queries)
    with timer() as clock:
        # the same rows and attack stage as `evaluate` (one sampler), so the consistency checks
        # below compare certificates and attacks on the very same examples
        part = data.part(split)
        rows = sample_rows(len(part), n, seed=seed)
        x, y = part.X[rows], part.y[rows]
        m = len(x)
        batch = attack_batch(int(batch_size or (64 if data.kind == "image" else 512)), m)
        hit = run_attacks(model, x, y, grid=grid, attacks=attacks, norm=norm, domain=domain, settings=settings,
                          batch=batch, key=jax.random.key(seed), rank=sample_rank(len(part), n, seed=seed))
        clean = hit.clean
        accuracy: dict[str, np.ndarray] = {"clean": np.full(len(grid), clean.mean())}
        empirical = {}
        for a in attacks:
            empirical[a] = hit.correct[a].mean(axis=1)
            accuracy[a] = empirical[a]
        accuracy["worst_case"] = hit.worst.mean(axis=1)
        empirical["worst_case"] = accuracy["worst_case"]
        findings, checks = [], {}
        if skipped:
            findings.append(Finding("ibp_skipped", "warn", "IBP bounds were not computed",
                                    f"Only randomized smoothing certified this model: {skipped}"))
        margins = np.zeros((0, 0), np.float32)
        if "ibp" in methods:
            margins = np.stack([ibp_margins(model, x, y, eps=float(e), domain=domain, module=module,
                                            batch_size=int(batch_size or 256)) for e in grid])
            accuracy["ibp"] = ((margins > 0) & clean).mean(axis=1)
            findings.append(_finding_ibp(grid, accuracy["ibp"], empirical))
        radius = prediction = np.zeros(0)
        scale = float(np.sqrt(np.asarray(domain.mutable).sum())) if norm == "linf" else 1.0
        if "smoothing" in methods:
            mask = np.asarray(domain.mutable)
            cert = certify_smoothed(model, x, sigma=sigma, n0=n0, n=n_samples, alpha=alpha, seed=seed,
                                    mutable=mask)
            radius, prediction = cert.radius, cert.prediction
            certified = np.stack([cert.certified(y, e * scale) for e in grid])
            accuracy["smoothing"] = certified.mean(axis=1)
            violations = checked = 0
            if smoothing_attack_steps > 0:
                # every (eps, certified row) pair in one attack with a budget per row: one compile
                # for the whole grid, fixed-size batches; PREDICT draws fresh noise per pair
                j_idx, i_idx = np.nonzero(certified & (grid > 0)[:, None])
                if i_idx.size:
                    adv = attack_smoothed(model, x[i_idx], y[i_idx], eps=grid[j_idx], norm=norm, sigma=sigma,
                                          domain=domain, samples=smoothing_attack_samples,
                                          steps=smoothing_attack_steps, seed=seed + 7919, batch_size=batch)
                    after = predict_smoothed(model, adv, sigma=sigma, n=n_samples, alpha=alpha, seed=seed + 1,
                                             mutable=mask)
                    violations = int(np.sum((after != ABSTAIN) & (after != y[i_idx])))
                    checked = int(i_idx.size)
                checks.update(smoothing_checked=float(checked), smoothing_violations=float(violations))
                findings.append(_finding_smoothing(violations, checked, alpha))
            abstain = float(np.mean(prediction == ABSTAIN))
            if abstain > 0.5:
                findings.append(Finding("smoothing_abstain", "warn", "Smoothed classifier abstains often",
                                        f"The smoothed classifier abstains on {abstain:.0%} of examples at "
                                        f"sigma={sigma:g}: lower sigma or raise n_samples.",
                                        "smoothing_abstain_rate", abstain, 0.5))
    provenance = Provenance(
        method="robustness.certify",
        settings={"norm": norm, "eps": grid.tolist(), "methods": list(methods), "attacks": list(attacks),
                  "split": split, "n": m, "steps": int(steps), "restarts": int(restarts),
                  "square_queries": int(square_queries), "sigma": float(sigma), "n0": int(n0),
                  "n_samples": int(n_samples), "alpha": float(alpha),
                  "smoothing_attack_steps": int(smoothing_attack_steps),
                  "smoothing_attack_samples": int(smoothing_attack_samples),
                  "immutable_inputs": int((np.asarray(domain.mutable) == 0).sum()),
                  "model": model.fingerprint()[:16], "data": data.fingerprint()[:16]},
        seed=int(seed), seconds=float(clock[0]))
    return CertificationReport(
        norm=norm, eps=grid.astype(np.float64), n=m, methods=methods, attacks=attacks,
        accuracy={k: np.asarray(v, np.float64) for k, v in accuracy.items()}, labels=y.astype(np.int64),
        ibp_margin=margins.astype(np.float32), smoothing_radius=np.asarray(radius, np.float64),
        smoothing_prediction=np.asarray(prediction, np.int64), radius_scale=scale,
        smoothing={"sigma": float(sigma), "n0": int(n0), "n": int(n_samples), "alpha": float(alpha)},
        checks=checks, kind=data.kind, class_names=tuple(data.class_names), findings=tuple(findings),
        provenance=provenance)
