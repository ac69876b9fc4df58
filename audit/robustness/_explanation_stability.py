"""Explanation stability under attack: do attributions hold still when the prediction does?

1. Label-preserving perturbations: PGD inside the eps ball; for examples whose predicted class
   the attack did not change, compare attributions at x and at the perturbed x (top-k overlap of
   magnitudes and Spearman rank correlation, from `audit.explain`).
2. An explanation attack (Ghorbani, Abid & Zou, "Interpretation of neural networks is fragile",
   AAAI 2019, top-k attack): move x inside the eps ball to push attribution mass off the
   original top-k features while the predicted class stays fixed (steps that would change it
   are rejected). ReLU networks have piecewise-constant gradients, so the attack direction is a
   seeded antithetic Gaussian estimate (Ilyas et al. 2018 NES) of the objective's gradient,
   vectorised over examples and samples. Methods without a jittable kernel (SmoothGrad) are
   measured at the points found against the plain gradient (transfer).
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Callable, Mapping, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from audit.errors import AuditInputError
from audit.results import Finding, MetricSpec, Provenance, Result, timer
from audit.robustness import _core
from audit.robustness._domain import check_eps, domain_for, project
from audit.robustness._evaluate import sample_rows
from audit.models._batching import padded_batches
from audit.robustness._pgd import pgd
from audit.robustness._report import eps_name
from audit.models._xla import jit as xla_jit

METHODS = ("gradient", "gradient_x_input", "integrated_gradients", "smoothgrad")
ATTACKABLE = ("gradient", "gradient_x_input", "integrated_gradients")


def default_k(n_features: int) -> int:
    """Top-k size: a tenth of the features, at least 3 (at most all)."""
    return int(min(n_features, max(3, -(-n_features // 10))))


def attributions(model, x: np.ndarray, target: np.ndarray, method: str, *, seed: int = 0) -> np.ndarray:
    """Attributions towards `target` by the public `audit.explain` functions."""
    from audit import explain

    if method == "smoothgrad":
        return explain.smoothgrad(model, x, target=target, seed=seed).values
    fn = {"gradient": explain.gradient, "gradient_x_input": explain.gradient_x_input,
          "integrated_gradients": explain.integrated_gradients}[method]
    return fn(model, x, target=target).values


def _kernel(apply_fn, method: str, ig_steps: int = 16):
    """Jittable attribution (b, ...) of the target logit, for the explanation attack."""
    def grad(params, x, t):
        f = lambda v: jnp.sum(jnp.take_along_axis(apply_fn(params, v).astype(jnp.float32), t[:, None], 1))
        return jax.grad(f)(x)

    if method == "gradient":
        return grad
    if method == "gradient_x_input":
        return lambda params, x, t: grad(params, x, t) * x
    alphas = (jnp.arange(ig_steps, dtype=jnp.float32) + 0.5) / ig_steps

    def ig(params, x, t):
        path = alphas.reshape((-1,) + (1,) * x.ndim) * x[None]
        g = grad(params, path.reshape((-1,) + x.shape[1:]), jnp.tile(t, ig_steps)).reshape(path.shape)
        return x * g.mean(axis=0)

    return ig


def _topk_mask(a, k):
    flat = jnp.abs(a.reshape(a.shape[0], -1))
    thresh = -jnp.sort(-flat, axis=1)[:, k - 1:k]
    return (flat >= thresh).astype(jnp.float32)


class _Static(NamedTuple):
    apply_fn: Callable
    method: str
    k: int
    samples: int


def _mass(s: _Static, params, mask, x, t):
    """Share of each row's attribution mass on its original top-k features (`mask`)."""
    a = jnp.abs(_kernel(s.apply_fn, s.method)(params, x, t).reshape(x.shape[0], -1))
    return jnp.sum(a * jnp.tile(mask, (x.shape[0] // mask.shape[0], 1)), axis=1) / (jnp.sum(a, axis=1) + 1e-12)


def _start(s: _Static, params, x0, t):
    """The top-k mask of x0's attributions, and the state (x, best_x, best mass) at x0."""
    mask = _topk_mask(_kernel(s.apply_fn, s.method)(params, x0, t), s.k)
    return mask, (x0, x0, _mass(s, params, mask, x0, t))


def _probes(s: _Static, consts, i, state):
    """Step i's antithetic Gaussian directions u and the 2 * samples * b points x +- sigma * u."""
    _, _, _, _, eps_b, domain, key = consts
    x = state[0]
    u = jax.random.normal(jax.random.fold_in(key, i), (s.samples,) + x.shape) * domain.mutable
    sigma = eps_b / 2
    return u, jnp.concatenate([x[None] + sigma * u, x[None] - sigma * u]).reshape((-1,) + x.shape[1:])


def _step(s: _Static, consts, i, state):
    """One NES step that lowers the top-k mass, rejected where it would change the prediction."""
    params, x0, t, mask = consts[:4]
    u, pts = _probes(s, consts, i, state)
    return _move(s, consts, state, u, _mass(s, params, mask, pts, jnp.tile(t, 2 * s.samples)))


GRADIENT_ROWS = 64  # rows per gradient call when the host loop splits the probes' masses


def _rows_per_probe(s: _Static) -> int:
    return 16 if s.method == "integrated_gradients" else 1  # IG's path points (`_kernel`)


def _probe_chunk(s: _Static) -> int:
    """Probes per call in the host loop: `GRADIENT_ROWS` gradient rows. On the CPU a conv net's
    gradient costs ~30% more per row in one call of 2,048 rows than in calls of 64 (and each
    row's gradient is the same bits either way)."""
    return max(1, GRADIENT_ROWS // _rows_per_probe(s))


def _probe_masses(s: _Static, params, mask, pts, t, k):
    """`_mass` of the k-th chunk of the probes (probe j perturbs row j mod b)."""
    c = _probe_chunk(s)
    rows = (k * c + jnp.arange(c)) % t.shape[0]
    return _mass(s, params, mask[rows], jax.lax.dynamic_slice_in_dim(pts, k * c, c), t[rows])


def _host_step(s: _Static, consts, i, state):
    """`_step` on the host: one jitted call, or, where the probes' masses take more than two
    calls' worth of gradient rows (IG), a few: the masses in chunks of `_probe_chunk` probes.
    The same bits either way."""
    params, x0, t, mask = consts[:4]
    n, c = 2 * s.samples * x0.shape[0], _probe_chunk(s)
    if n * _rows_per_probe(s) <= 2 * GRADIENT_ROWS or n % c:
        return _core.call(_step, s, consts, np.int32(i), state, host=True)
    u, pts = _core.call(_probes, s, consts, np.int32(i), state, host=True)
    f = jnp.concatenate([_core.call(_probe_masses, s, params, mask, pts, t, np.int32(k), host=True)
                         for k in range(n // c)])
    return _core.call(_move, s, consts, state, u, f, host=True)


def _move(s: _Static, consts, state, u, f):
    """The NES estimate from the probes' masses f, the signed step and the rejection."""
    params, x0, t, mask, eps_b, domain, key = consts
    x, best_x, best = state
    b = x0.shape[0]
    f = f.reshape(2, s.samples, b)
    ghat = jnp.einsum("sb,sb...->b...", f[0] - f[1], u)
    cand = project(x0, x - eps_b / 4 * jnp.sign(ghat) * domain.mutable, eps_b, "linf", domain)
    keep = jnp.argmax(s.apply_fn(params, cand), axis=-1) == t
    shape = (b,) + (1,) * (x.ndim - 1)
    x = jnp.where(keep.reshape(shape), cand, x)
    m = _mass(s, params, mask, x, t)
    better = m < best
    return x, jnp.where(better.reshape(shape), x, best_x), jnp.where(better, m, best)


def _explanation_attack(apply_fn, method: str, params, x0, t, eps_b, domain, key, *, k: int, steps: int,
                        samples: int, host: bool = False):
    """Minimise the attribution mass on x0's top-k features, keeping the predicted class t.
    `host`: a Python loop over jitted steps (images: as the attacks, `_core.use_host`), else a
    compiled loop (jittable)."""
    s = _Static(apply_fn, method, int(k), int(samples))
    mask, state = _core.call(_start, s, params, x0, t, host=host)
    consts = (params, x0, t, mask, eps_b, domain, key)
    if host:
        for i in range(int(steps)):
            state = _host_step(s, consts, i, state)
        return state[1]
    return _core.run_steps(_step, s, consts, state, int(steps), host=False)[1]


@functools.lru_cache(maxsize=16)
def _attack_fn(apply_fn, method: str, k: int, steps: int, samples: int):
    """The explanation attack for one model function and method; eps, the domain and the key are
    arguments, so the eps grid and repeated calls reuse one compilation. Images run a host loop
    over one jitted step (faster on CPU for conv nets, as PGD), other inputs one jitted loop."""
    def run(params, xb, tb, eps, domain, key, host=False):
        eps_b = jnp.full((len(xb),) + (1,) * (xb.ndim - 1), eps, jnp.float32)
        return _explanation_attack(apply_fn, method, params, xb, tb, eps_b, domain, key, k=k, steps=steps,
                                   samples=samples, host=host)

    jitted = xla_jit(run)

    def attack(params, xb, tb, eps, domain, key):
        if _core.use_host("auto", jnp.asarray(xb)):
            return run(params, jnp.asarray(xb), jnp.asarray(tb), eps, domain, key, host=True)
        return jitted(params, xb, tb, eps, domain, key)

    return attack


@dataclasses.dataclass(frozen=True, eq=False)
class ExplanationStabilityReport(Result):
    """Per method and eps: mean top-k overlap and Spearman correlation between attributions at x
    and at a label-preserving PGD point (`top_k`, `spearman`) and after the explanation attack
    (`attack_top_k`, `attack_spearman`); per-example values (NaN where PGD changed the label) in
    `per_example_top_k`. `attack_source[method]` names the attribution the attack targeted."""

    SCHEMA = "audit.robustness.explanation_stability/1"
    LEGACY_SCHEMAS = (1,)  # same fields; files written before the codec read as they are
    METRICS = (
        MetricSpec("label_stable_fraction@<eps>", "higher", "Label-stable share at eps <eps>",
                   "Share of the sample whose label survives the label-keeping perturbation at <eps>."),
        MetricSpec("explanation_top_k:<method>@<eps>", "higher", "Top-k overlap of <method> at eps <eps>",
                   "Overlap of the top-k features of <method> before and after a random label-keeping "
                   "perturbation at <eps>."),
        MetricSpec("explanation_spearman:<method>@<eps>", "higher",
                   "Rank correlation of <method> at eps <eps>",
                   "Spearman correlation of <method>'s attributions before and after a label-keeping "
                   "perturbation at <eps>."),
        MetricSpec("explanation_attack_top_k:<method>@<eps>", "higher",
                   "Top-k overlap of <method> under attack at eps <eps>",
                   "Top-k overlap of <method> before and after an attack on the explanation that keeps the "
                   "label."),
        MetricSpec("explanation_attack_spearman:<method>@<eps>", "higher",
                   "Rank correlation of <method> under attack at eps <eps>",
                   "Spearman correlation of <method> before and after an attack on the explanation that "
                   "keeps the label."),
    )

    eps: np.ndarray
    methods: tuple[str, ...]
    k: int
    n: int
    stable_fraction: np.ndarray
    top_k: Mapping[str, np.ndarray]
    spearman: Mapping[str, np.ndarray]
    attack_top_k: Mapping[str, np.ndarray]
    attack_spearman: Mapping[str, np.ndarray]
    per_example_top_k: Mapping[str, np.ndarray]
    attack_source: Mapping[str, str]
    findings: tuple[Finding, ...]
    provenance: Provenance

    def metrics(self) -> dict[str, float]:
        out = {}
        for j, e in enumerate(self.eps):
            tag = eps_name(e)
            out[f"label_stable_fraction@{tag}"] = float(self.stable_fraction[j])
            for m in self.methods:
                out[f"explanation_top_k:{m}@{tag}"] = float(self.top_k[m][j])
                out[f"explanation_spearman:{m}@{tag}"] = float(self.spearman[m][j])
                out[f"explanation_attack_top_k:{m}@{tag}"] = float(self.attack_top_k[m][j])
                out[f"explanation_attack_spearman:{m}@{tag}"] = float(self.attack_spearman[m][j])
        return out


def _compare(a: np.ndarray, b: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    from audit.explain import spearman, top_k_overlap

    a2, b2 = a.reshape(len(a), -1), b.reshape(len(b), -1)
    return top_k_overlap(a2, b2, k=k), spearman(a2, b2)


def explanation_stability(model, data, *, methods: Sequence[str] = ("gradient", "integrated_gradients", "smoothgrad"),
                          eps: Sequence[float] | None = None, split: str = "test", n: int = 100,
                          k: int | None = None, pgd_steps: int = 20, attack_steps: int = 20,
                          attack_samples: int = 8, batch_size: int = 32, seed: int = 0) -> ExplanationStabilityReport:
    """How far attributions move under label-preserving attacks, per method and eps (linf).

    `eps` defaults to (0.02, 0.05) for images and (0.05, 0.1) std units for tabular data; `k`
    (top-k size) to a tenth of the inputs (at least 3). Rows are a seeded sample of `n`
    correctly classified rows of `split`.
    """
    methods = tuple(methods)
    bad = sorted(set(methods) - set(METHODS))
    if bad or not methods:
        raise AuditInputError(f"explanation_stability: methods {bad or list(methods)} not known; choose from "
                              f"{list(METHODS)}.")
    if not model.differentiable:
        raise AuditInputError("explanation_stability needs a differentiable model (gradient attributions).")
    domain = domain_for(data)
    grid = np.unique(check_eps((0.02, 0.05) if data.kind == "image" else (0.05, 0.1), norm="linf", domain=domain) if eps is None
                     else check_eps(eps, norm="linf", domain=domain))
    d = int(np.prod(data.input_shape))
    k = default_k(d) if k is None else int(k)
    if not 1 <= k <= d:
        raise AuditInputError(f"explanation_stability: k must be in [1, {d}], got {k}.")
    if min(pgd_steps, attack_steps, attack_samples, batch_size) < 1:
        raise AuditInputError("pgd_steps, attack_steps, attack_samples and batch_size must be positive.")
    with timer() as clock:
        part = data.part(split)
        pred_all = model.predict(part.X)
        correct = np.flatnonzero(pred_all == part.y)
        rows = correct[sample_rows(len(correct), n, seed=seed)]  # the robustness sampler, over correct rows
        x, t = part.X[rows], pred_all[rows].astype(np.int32)
        m = len(x)
        base = {meth: attributions(model, x, t, meth, seed=seed) for meth in methods}
        key = jax.random.key(seed)
        out = {name: {meth: np.full(len(grid), np.nan) for meth in methods}
               for name in ("top_k", "spearman", "attack_top_k", "attack_spearman")}
        per_example = {meth: np.full((len(grid), m), np.nan) for meth in methods}
        stable_fraction = np.zeros(len(grid))
        source = {meth: (meth if meth in ATTACKABLE else "gradient (transfer)") for meth in methods}
        batch = min(int(batch_size), m)
        for j, e in enumerate(grid):
            kj = jax.random.fold_in(key, j)
            adv = padded_batches(lambda xb, tb: pgd(model.apply, model.params, xb, tb, eps=float(e), steps=pgd_steps,
                                                    domain=domain, key=kj, stop_when_fooled=True), [x, t], batch)
            stable = model.predict(adv) == t
            stable_fraction[j] = stable.mean()
            targeted = {}
            for meth in sorted({source[mm].split()[0] for mm in methods}):
                run = _attack_fn(model.apply, meth, int(k), int(attack_steps), int(attack_samples))
                targeted[meth] = padded_batches(
                    lambda xb, tb, run=run: run(model.params, xb, tb, np.float32(e), domain, jax.random.fold_in(kj, 1)),
                    [x, t], batch)
            for meth in methods:
                if stable.any():
                    after = attributions(model, adv[stable], t[stable], meth, seed=seed)
                    tk, sp = _compare(base[meth][stable], after, k)
                    per_example[meth][j, stable] = tk
                    out["top_k"][meth][j], out["spearman"][meth][j] = float(tk.mean()), float(np.nanmean(sp))
                moved = attributions(model, targeted[source[meth].split()[0]], t, meth, seed=seed)
                tk, sp = _compare(base[meth], moved, k)
                out["attack_top_k"][meth][j], out["attack_spearman"][meth][j] = float(tk.mean()), float(np.nanmean(sp))
    findings = []
    for meth in methods:
        worst = float(np.nanmin(out["attack_top_k"][meth]))
        status = "pass" if worst >= 0.5 else "warn"
        findings.append(Finding(f"explanation_fragility:{meth}", status,
                                f"{meth} explanations {'hold' if status == 'pass' else 'are fragile'} under attack",
                                f"An attack that keeps the prediction leaves {worst:.0%} of the top-{k} {meth} "
                                f"features in place at eps={grid[int(np.nanargmin(out['attack_top_k'][meth]))]:g}"
                                + ("" if status == "pass" else ": do not read single explanations as stable "
                                   "evidence; prefer SmoothGrad or SHAP and report their spread."),
                                f"explanation_attack_top_k:{meth}", worst, 0.5))
    provenance = Provenance(method="robustness.explanation_stability",
                            settings={"methods": list(methods), "eps": grid.tolist(), "split": split, "n": m,
                                      "k": k, "pgd_steps": int(pgd_steps), "attack_steps": int(attack_steps),
                                      "attack_samples": int(attack_samples), "model": model.fingerprint()[:16],
                                      "data": data.fingerprint()[:16]},
                            seed=int(seed), seconds=float(clock[0]))
    return ExplanationStabilityReport(eps=grid.astype(np.float64), methods=methods, k=k, n=m,
                                      stable_fraction=stable_fraction, top_k=out["top_k"], spearman=out["spearman"],
                                      attack_top_k=out["attack_top_k"], attack_spearman=out["attack_spearman"],
                                      per_example_top_k=per_example, attack_source=source, findings=tuple(findings),
                                      provenance=provenance)
