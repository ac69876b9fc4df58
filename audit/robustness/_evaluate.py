"""`evaluate(model, data)`: robust accuracy over an eps grid for several attacks, with
intervals per class and per sensitive group, baselines, examples and sanity checks."""

from __future__ import annotations

import dataclasses
import functools
import zlib
from typing import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from audit import parallel
from audit.data._groups import attribute_groups
from audit.errors import AuditInputError
from audit.models._batching import padded_batches
from audit.results import Provenance, timer
from audit.robustness import _attack_cache, _sanity
from audit.robustness._core import loss_and_grad, use_host
from audit.robustness._domain import Domain, check_domain, check_eps, domain_for
from audit.robustness._minimal import minimal_perturbation
from audit.robustness._noise import noise
from audit.robustness._pgd import pgd
from audit.robustness._registry import ATTACKS, project_closest
from audit.robustness._report import AdversarialExample, Curve, RobustnessReport
from audit.models._xla import jit as xla_jit

DEFAULT_EPS = {
    ("image", "linf"): (0.0, 0.01, 0.02, 0.05, 0.1, 0.2, 0.3),
    ("image", "l2"): (0.0, 0.25, 0.5, 1.0, 1.5, 2.0, 3.0),
    ("tabular", "linf"): (0.0, 0.05, 0.1, 0.2, 0.3, 0.5, 1.0),
    ("tabular", "l2"): (0.0, 0.1, 0.25, 0.5, 1.0, 2.0),
}


def default_eps(kind: str, norm: str) -> tuple[float, ...]:
    """Eps grids for images in [0, 1] and for standardised tabular inputs (std units)."""
    return DEFAULT_EPS[(kind, norm)]


def _batched(fn: Callable, x: np.ndarray, y: np.ndarray, batch: int, key) -> np.ndarray:
    """fn(xb, yb, key) over fixed-size padded batches (one compile for any n); batch b gets
    the key folded with b."""
    index = np.arange(len(x)) // batch
    return padded_batches(lambda xb, yb, ib: fn(xb, yb, jax.random.fold_in(key, int(ib[0]))), [x, y, index], batch)


def _bootstrap(correct: np.ndarray, rows: np.ndarray, *, draws: int, confidence: float,
               seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Accuracy per eps over `rows` with a percentile bootstrap interval (vectorised)."""
    k = correct.shape[0]
    if rows.size == 0:
        nan = np.full(k, np.nan)
        return nan, nan.copy(), nan.copy()
    sub = correct[:, rows].astype(np.float64)
    acc = sub.mean(axis=1)
    if draws <= 0:
        return acc, acc.copy(), acc.copy()
    idx = np.random.default_rng(seed).integers(0, rows.size, size=(draws, rows.size))
    boot = sub[:, idx].mean(axis=2)  # (k, draws)
    alpha = (1 - confidence) / 2
    return acc, np.quantile(boot, alpha, axis=1), np.quantile(boot, 1 - alpha, axis=1)


@functools.lru_cache(maxsize=16)
def _grad_x_input_fn(apply: Callable) -> Callable:
    """Jitted |d max logit / dx * x| for one model function (params are an argument)."""
    def attribution(params, xb):
        g = jax.grad(lambda v: jnp.sum(jnp.max(apply(params, v), axis=-1)))(xb)
        return jnp.abs(g * xb)
    return xla_jit(attribution)


def _grad_x_input(model, x: np.ndarray, batch: int) -> np.ndarray:
    """Mean |d logit_pred / dx * x| per input (gradient x input attribution)."""
    fn = _grad_x_input_fn(model.apply)
    out = _batched(lambda xb, yb, k: fn(model.params, jnp.asarray(xb)), x, np.zeros(len(x), np.int32), batch,
                   jax.random.key(0))
    return out.reshape(len(x), -1).mean(axis=0)


@functools.lru_cache(maxsize=16)
def _bad_gradients_fn(apply: Callable) -> Callable:
    """Jitted per-row flag: margin-loss gradient all zero on mutable inputs, or non-finite."""
    def bad(params, xb, yb, mutable):
        _, _, g = loss_and_grad(apply, params, xb, yb, "margin", False)
        flat = (g * mutable).reshape(g.shape[0], -1)
        return (~jnp.all(jnp.isfinite(flat), axis=1)) | (jnp.max(jnp.abs(flat), axis=1) == 0)
    return xla_jit(bad)


def _bad_gradients(model, x, y, domain: Domain, batch: int) -> float:
    """Share of inputs whose margin-loss gradient is all zero (on mutable inputs) or non-finite."""
    fn = _bad_gradients_fn(model.apply)
    flags = _batched(lambda xb, yb, k: fn(model.params, jnp.asarray(xb), jnp.asarray(yb), domain.mutable),
                     x, y, batch, jax.random.key(0))
    return float(flags.mean())


def validate(model, data, norm, attacks, n, bootstrap, confidence, examples_per_eps, impute_k):
    """Check the settings shared by evaluate and certify before any work."""
    model.check_data(data)
    if norm not in ("linf", "l2"):
        raise AuditInputError(f"norm {norm!r} is not supported; use 'linf' or 'l2'.")
    for name in attacks:
        if name not in ATTACKS:
            raise AuditInputError(f"unknown attack {name!r}; choose from {sorted(ATTACKS)}.")
        spec = ATTACKS[name]
        if norm not in spec.norms:
            raise AuditInputError(f"attack {name!r} supports norms {list(spec.norms)}, not {norm!r}; "
                                  "drop it from attacks or change norm.")
        if data.n_classes < spec.min_classes:
            raise AuditInputError(f"attack {name!r} needs at least {spec.min_classes} classes; the data has "
                                  f"{data.n_classes}.")
        if spec.needs_gradients and not model.differentiable:
            raise AuditInputError(f"attack {name!r} needs gradients but the model is marked not "
                                  "differentiable; use attacks=('square',).")
    if not attacks:
        raise AuditInputError("attacks is empty; name at least one attack, e.g. ('pgd',).")
    if int(n) != n or n < 1:
        raise AuditInputError(f"n must be a positive integer (examples to attack), got {n}.")
    if bootstrap < 0 or not 0 < confidence < 1:
        raise AuditInputError("bootstrap must be >= 0 and confidence in (0, 1).")
    if examples_per_eps < 0:
        raise AuditInputError(f"examples_per_eps must be >= 0, got {examples_per_eps}.")
    if any(int(k) != k or k < 1 for k in impute_k):
        raise AuditInputError(f"impute_k must hold positive integers, got {list(impute_k)}.")


def sample_rows(n_rows: int, n: int, *, seed: int) -> np.ndarray:
    """The seeded, sorted sample of at most `n` of `n_rows` rows that every robustness analysis
    attacks. Samples are nested: with one seed, the rows for a smaller `n` are a subset of the
    rows for a larger one, so sections that audit different numbers of rows share their rows."""
    return np.sort(np.random.default_rng(seed).permutation(n_rows)[:min(int(n), n_rows)])


def sample_rank(n_rows: int, n: int, *, seed: int) -> np.ndarray:
    """rank[i]: the position of `sample_rows(n_rows, n, seed=seed)[i]` in the seeded permutation.
    In rank order the rows of a smaller `n` come first, so `run_attacks` given this rank attacks
    a smaller sample as a prefix of a larger one (and shares its adversarial examples)."""
    perm = np.random.default_rng(seed).permutation(n_rows)[:min(int(n), n_rows)]
    rank = np.empty(len(perm), np.int64)
    rank[np.searchsorted(np.sort(perm), perm)] = np.arange(len(perm))
    return rank


def attack_batch(batch: int, m: int) -> int:
    """Rows per attack call for `m` rows. Up to `batch` rows: the power of two that holds them
    (samples of 20 and 30 rows share one compiled shape; padding under 2x). More: the fewest
    calls of at most `batch` rows, balanced (200 rows at 64: four calls of 50 instead of three
    of 64 and one of 8 padded to 64, i.e. 256 rows attacked for 200) rounded up to a multiple of
    8 (and of the local device count), so each call splits over 1, 2, 4 or 8 devices and the
    batches, hence the results, are the same on any of those counts. Nested samples whose sizes
    give the same batch (100 and 200 rows at 64) attack their shared rows in the same calls, so
    their adversarial examples can be shared (`_attack_cache`)."""
    batch, m = max(1, int(batch)), max(1, int(m))
    if m <= batch:
        return int(min(batch, 1 << (m - 1).bit_length()))
    calls = -(-m // batch)
    step = int(np.lcm(8, parallel.count()))
    return int(min(batch, -(-(-(-m // calls)) // step) * step))


def default_attacks(model, norm: str) -> tuple[str, ...]:
    """FGSM, PGD and APGD-CE for differentiable models, plus Square for linf (as AutoAttack)."""
    return (("fgsm", "pgd", "apgd") if model.differentiable else ()) + (("square",) if norm == "linf" else ())


def attack_settings(*, steps: int, restarts: int, apgd_steps: int | None, square_queries: int) -> dict[str, int]:
    """The attacks' shared settings, checked."""
    settings = {"steps": int(steps), "restarts": int(restarts), "apgd_steps": int(apgd_steps or steps),
                "square_queries": int(square_queries)}
    for k, v in settings.items():
        if v < 1:
            raise AuditInputError(f"{k} must be a positive integer, got {v}.")
    return settings


@dataclasses.dataclass(frozen=True)
class Attacked:
    """The attack stage on the sampled rows: `correct[attack][j, i]` is True when row i is
    classified correctly and survives `attack` at `grid[j]`; `worst` when it survives every
    attack (the worst case per example, as AutoAttack); `adversarial[j, i]` the first successful
    adversarial input (the clean input where none succeeded) and `by[j, i]` its attack ("").
    `stage[attack][j, i]`: for an ensemble (AutoAttack), the index into its spec's `stages` of the
    stage that broke row i first at `grid[j]` (-1: none). `distance[attack][i]`: for a
    minimal-perturbation attack (C&W), row i's distance to its closest adversarial (inf: none)."""

    proba: np.ndarray
    clean: np.ndarray
    correct: dict[str, np.ndarray]
    worst: np.ndarray
    adversarial: np.ndarray
    by: np.ndarray
    stage: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)
    distance: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)


def _attack_key(key, name: str, e: float):
    """The key of one attack at one eps: from the attack's name and the eps value (not their
    places in a grid), so every section that runs this attack at this eps draws the same starts."""
    bits = int(np.asarray(e, np.float32).view(np.uint32))
    return jax.random.fold_in(jax.random.fold_in(key, zlib.crc32(name.encode())), bits)


def run_attacks(model, x: np.ndarray, y: np.ndarray, *, grid: np.ndarray, attacks: Sequence[str], norm: str,
                domain: Domain, settings: dict[str, int], batch: int, key, rank: np.ndarray | None = None) -> Attacked:
    """Every attack at every eps of `grid` on the rows `x`, `y` (batched to `batch` rows).

    Rows are attacked in `rank` order (default: as given); the adversarial examples are kept in
    `_attack_cache`, so a later call on a prefix of these rows in rank order (a smaller sample of
    `sample_rank`'s permutation) with the same model, attack, settings, eps, batch and key reuses
    them instead of attacking again: robustness and certification share their attacks.
    A minimal-perturbation attack (a spec with `minimal`, C&W) runs once for the whole grid: its
    closest adversarials are projected into each eps ball, exactly what its per-eps `run` gives.
    An attack with `run_pooled` (Square) runs once for every eps of the grid on one device, for
    images: the rows of all eps share one pool of model calls, and each row gets what its batch's
    call gives.
    """
    proba = model.predict_proba(x)
    clean = proba.argmax(axis=1) == y
    m = len(x)
    order = np.arange(m) if rank is None else np.argsort(rank, kind="stable")
    xo, yo = np.ascontiguousarray(x[order]), np.ascontiguousarray(y[order])
    common = (_attack_cache.model_key(model), norm, _attack_cache.digest(np.asarray(domain.lower),
              np.asarray(domain.upper), np.asarray(domain.mutable)), int(batch),
              _attack_cache.digest(np.asarray(jax.random.key_data(key))))

    def unordered(a):
        out = np.empty_like(a)
        out[order] = a
        return out

    def batched(run, k, **kw):  # rows in rank order, results back in the caller's order
        fn = lambda xb, yb, kb: run(model.apply, model.params, xb, yb, norm=norm, domain=domain, key=kb,
                                    settings=settings, **kw)
        return jax.tree.map(lambda a: unordered(np.asarray(a)), _batched(fn, xo, yo, batch, k))

    def cache_key(name, e):
        return (*common, name, float(e), tuple((k, settings.get(k)) for k in ATTACKS[name].reads))

    def attack_all(name, e):
        spec = ATTACKS[name]
        adv = pooled.get((name, float(e)))
        if adv is None:
            adv = _attack_cache.lookup(cache_key(name, e), xo, yo, exact=not spec.prefix_shared)
        if adv is None:
            fn = lambda xb, yb, kb: spec.run(model.apply, model.params, xb, yb, eps=float(e), norm=norm,
                                             domain=domain, key=kb, settings=settings)
            adv = _batched(fn, xo, yo, batch, _attack_key(key, name, e))
            _attack_cache.store(cache_key(name, e), xo, yo, adv)
        return unordered(adv)

    def pool(name):
        """A pooled attack (Square) on the rows of every eps of the grid at once, where one device
        in one process runs the attacks (elsewhere the batches split over the devices instead) in
        host loops (images; flat inputs run each call as one compiled loop, faster for an MLP)."""
        spec = ATTACKS[name]
        if (spec.run_pooled is None or parallel.count() > 1 or parallel.processes() > 1
                or not use_host("auto", xo)):
            return
        todo = [float(e) for e in grid if e > 0 and _attack_cache.lookup(
            cache_key(name, e), xo, yo, exact=not spec.prefix_shared) is None]
        if not todo:
            return
        calls = np.arange(m) // batch  # the call and the place in it `_batched` gives each row
        call_keys = np.concatenate([np.asarray(jax.random.key_data(jax.vmap(
            lambda c, k=_attack_key(key, name, e): jax.random.fold_in(k, c))(calls))) for e in todo])
        adv = spec.run_pooled(model.apply, model.params, np.tile(xo, (len(todo),) + (1,) * (xo.ndim - 1)),
                              np.tile(yo, len(todo)), eps=np.repeat(todo, m), domain=domain, call_keys=call_keys,
                              positions=np.tile(np.arange(m) % batch, len(todo)), settings=settings,
                              slots=max(batch, 64))
        for t, e in enumerate(todo):
            pooled[(name, e)] = adv[t * m:(t + 1) * m]
            _attack_cache.store(cache_key(name, e), xo, yo, pooled[(name, e)])

    closest, distance, stage, pooled = {}, {}, {}, {}
    for a in attacks:
        pool(a)
        if ATTACKS[a].minimal is not None:
            closest[a], distance[a] = batched(ATTACKS[a].minimal, _attack_key(key, a, 0.0))
        if ATTACKS[a].run_staged is not None:
            stage[a] = np.full((len(grid), m), -1, np.int32)
    correct = {a: np.empty((len(grid), m), bool) for a in attacks}
    adversarial = np.repeat(x[None], len(grid), axis=0)
    by = np.full((len(grid), m), "", dtype=object)
    for j, e in enumerate(grid):
        for a in attacks:
            if e == 0:
                correct[a][j] = clean
                continue
            if a in closest:
                adv = np.asarray(padded_batches(lambda xb, cb: project_closest(xb, cb, float(e), domain),
                                                [x, closest[a]], batch))
            elif a in stage:
                adv, stage[a][j] = batched(ATTACKS[a].run_staged, _attack_key(key, a, e), eps=float(e))
            else:
                adv = attack_all(a, e)
            ok = clean & (model.predict(adv) == y)
            correct[a][j] = ok
            new = ~ok & clean & (by[j] == "")
            adversarial[j][new] = adv[new]
            by[j][new] = a
    worst = np.logical_and.reduce([correct[a] for a in attacks])
    return Attacked(proba=proba, clean=clean, correct=correct, worst=worst, adversarial=adversarial, by=by,
                    stage=stage, distance=distance)


def domain_and_grid(data, *, domain, eps, norm: str, allow_categorical: bool, allow_sensitive: bool,
                    immutable) -> tuple:
    """The user's domain (checked) or the data's default, and the eps grid (the default keeps only
    budgets that fit inside the domain)."""
    if domain is None:
        domain = domain_for(data, allow_categorical=allow_categorical, allow_sensitive=allow_sensitive,
                            immutable=immutable)
    else:
        domain = check_domain(domain, data.input_shape)
    if eps is None:
        width = domain.width(norm)
        return domain, np.array([e for e in default_eps(data.kind, norm) if e <= width * (1 + 1e-6)])
    return domain, np.unique(check_eps(eps, norm=norm, domain=domain))


def evaluate(model, data, *, norm: str = "linf", eps: Sequence[float] | None = None,
             attacks: Sequence[str] | None = None, split: str = "test", n: int = 500, steps: int = 20,
             restarts: int = 1, apgd_steps: int | None = None, square_queries: int = 500,
             domain: Domain | None = None, allow_categorical: bool = False, allow_sensitive: bool = False,
             immutable: Sequence[str] = (), min_perturbation_n: int = 100, search_steps: int = 8,
             importance: Sequence[str] | None = None, impute_k: Sequence[int] = (1, 3),
             bootstrap: int = 1000, confidence: float = 0.95, examples_per_eps: int = 2,
             batch_size: int | None = None, sanity: bool = True, seed: int = 0) -> RobustnessReport:
    """Robust accuracy of `model` on a seeded sample of at most `n` rows of `data`'s `split`.

    Runs each attack (default FGSM, PGD-`steps`, APGD-CE and, for linf, Square; gradient-free
    only for non-differentiable models) at every eps of the grid (default `default_eps`),
    inside the `domain` (default `domain_for(data, ...)`: pixel range, or training bounds with
    categorical one-hots and sensitive inputs immutable). Robust accuracy counts examples that
    are classified correctly and survive the attack; "ensemble" is the worst case over the
    attacks per example (as AutoAttack). Adds Gaussian/uniform noise baselines, per-class and
    per-group curves with bootstrap intervals, minimal perturbations (PGD bisection on the first
    `min_perturbation_n` examples, 0 to skip), mean-imputation of the top-k important raw
    columns (tabular; ranked by mean |gradient x input| unless `importance` names a ranking),
    a few adversarial examples per eps, and the sanity checks of `_sanity` as findings.
    With "autoattack" among the attacks, the report keeps each of its stages' share of the broken
    rows per eps (`autoattack_share`); with "cw" (L2), C&W runs once and its closest adversarial
    per row gives both its robust accuracy at every eps and its distances (`cw_distance`).
    """
    differentiable = bool(model.differentiable)
    attacks = default_attacks(model, norm) if attacks is None else tuple(attacks)
    validate(model, data, norm, attacks, n, bootstrap, confidence, examples_per_eps, impute_k)
    settings = attack_settings(steps=steps, restarts=restarts, apgd_steps=apgd_steps, square_queries=square_queries)
    part = data.part(split)
    domain, grid = domain_and_grid(data, domain=domain, eps=eps, norm=norm, allow_categorical=allow_categorical,
                                   allow_sensitive=allow_sensitive, immutable=immutable)
    width = domain.width(norm)
    batch = int(batch_size or (64 if data.kind == "image" else 512))
    with timer() as clock:
        rows = sample_rows(len(part), n, seed=seed)
        x, y = part.X[rows], part.y[rows]
        batch = attack_batch(batch, len(x))  # every batched call below uses this one shape
        key = jax.random.key(seed)
        hit = run_attacks(model, x, y, grid=grid, attacks=attacks, norm=norm, domain=domain, settings=settings,
                          batch=batch, key=key, rank=sample_rank(len(part), n, seed=seed))
        proba, clean, correct, ens = hit.proba, hit.clean, hit.correct, hit.worst
        ens_adv, ens_by = hit.adversarial, hit.by
        pred = proba.argmax(axis=1)
        m = len(x)
        baselines = {}
        for bi, kind in enumerate(("gaussian", "uniform")):
            acc = np.empty((len(grid), m), bool)
            for j, e in enumerate(grid):
                noisy = np.asarray(noise(x, eps=float(e), norm=norm, kind=kind, domain=domain,
                                         key=jax.random.fold_in(key, 50_000 + 100 * bi + j)))
                acc[j] = clean & (model.predict(noisy) == y)
            baselines[f"{kind}_noise"] = acc

        curves = []
        boot = dict(draws=int(bootstrap), confidence=float(confidence))
        everyone = np.arange(m)
        for i, (name, c) in enumerate([*correct.items(), ("ensemble", ens)]):
            curves.append(Curve("attack", name, *_bootstrap(c, everyone, seed=seed + i, **boot), n=m))
        for i, (name, c) in enumerate(baselines.items()):
            curves.append(Curve("baseline", name, *_bootstrap(c, everyone, seed=seed + 100 + i, **boot), n=m))
        for ci, cname in enumerate(data.class_names):
            r = np.flatnonzero(y == ci)
            curves.append(Curve("class", cname, *_bootstrap(ens, r, seed=seed + 200 + ci, **boot), n=int(r.size)))
        for attr in sorted(data.sensitive):
            grouping = attribute_groups(data, attr, data.splits[split][rows])  # the data layer's one rule
            for gi, label in enumerate(grouping.labels):
                r = np.flatnonzero(grouping.codes == gi)
                curves.append(Curve("group", label, *_bootstrap(ens, r, seed=seed + 300 + gi, **boot),
                                    n=int(r.size), attribute=attr))

        # minimal perturbation (PGD bisection) on the first examples
        k_min = min(int(min_perturbation_n), m) if differentiable else 0
        eps_max = float(grid.max()) if grid.max() > 0 else width
        if k_min:
            def search(xb, yb, kb):
                d, f = minimal_perturbation(model.apply, model.params, xb, yb, eps_max=eps_max, norm=norm,
                                            search_steps=search_steps, steps=steps, domain=domain, key=kb)
                return np.stack([d, f], axis=1)
            out = _batched(search, x[:k_min], y[:k_min], batch, jax.random.fold_in(key, 70_000))
            dist, found = out[:, 0], out[:, 1] > 0.5
        else:
            dist, found = np.zeros(0), np.zeros(0, bool)

        # imputation of the most important raw columns (tabular)
        imputation, ranking = {}, ()
        if data.kind == "tabular" and impute_k:
            raw_names = list(data.raw_feature_names)
            groups = data.feature_groups
            if importance is not None:
                unknown = [f for f in importance if f not in raw_names]
                if unknown:
                    raise AuditInputError(f"importance names {unknown} are not raw columns {raw_names}.")
                ranking = tuple(importance)
            elif differentiable:
                scores = _grad_x_input(model, x, batch)
                per_col = np.array([scores[list(g)].sum() for g in groups])
                ranking = tuple(raw_names[i] for i in np.argsort(-per_col, kind="stable"))
            means = data.part("train").X.mean(axis=0)
            for k in impute_k:
                if not ranking or k > len(ranking):
                    continue
                xi = x.copy()
                for name in ranking[:k]:
                    cols = list(groups[raw_names.index(name)])
                    xi[:, cols] = means[cols]
                imputation[f"top{k}"] = float((model.predict(xi) == y).mean())

        # adversarial examples for the report and dashboard
        examples = []
        for j, e in enumerate(grid):
            if e == 0 or examples_per_eps == 0:
                continue
            fooled = np.flatnonzero(ens_by[j] != "")[:examples_per_eps]
            if fooled.size:
                p_adv = model.predict_proba(ens_adv[j][fooled])
                for t, i in enumerate(fooled):
                    examples.append(AdversarialExample(
                        eps=float(e), attack=str(ens_by[j][i]), row=int(data.splits[split][rows[i]]),
                        label=int(y[i]), original=x[i].astype(np.float32), adversarial=ens_adv[j][i].astype(np.float32),
                        clean_prediction=int(pred[i]), clean_confidence=float(proba[i, pred[i]]),
                        adversarial_prediction=int(p_adv[t].argmax()),
                        adversarial_confidence=float(p_adv[t].max())))

        findings, checks = [], {}
        if sanity:
            findings, checks = _checks(model, x, y, clean, grid, correct, baselines, attacks, domain, norm,
                                       width, settings, batch, key, differentiable, found, k_min)
    provenance = Provenance(
        method="robustness.evaluate",
        settings={"norm": norm, "eps": grid.tolist(), "attacks": list(attacks), "split": split, "n": m,
                  **settings, "bootstrap": int(bootstrap), "confidence": float(confidence),
                  "batch_size": batch, "min_perturbation_n": k_min, "search_steps": int(search_steps),
                  "immutable_inputs": int((np.asarray(domain.mutable) == 0).sum()),
                  "allow_categorical": bool(allow_categorical), "allow_sensitive": bool(allow_sensitive),
                  "model": model.fingerprint()[:16], "data": data.fingerprint()[:16]},
        seed=int(seed), seconds=float(clock[0]))
    return RobustnessReport(
        norm=norm, eps=grid.astype(np.float64), attacks=attacks, n=m, clean_accuracy=float(clean.mean()),
        curves=tuple(curves), min_distance=np.asarray(dist, np.float64), min_found=np.asarray(found, bool),
        min_eps_max=float(eps_max), imputation=imputation, importance=tuple(ranking), examples=tuple(examples),
        kind=data.kind, input_shape=tuple(data.input_shape), feature_names=tuple(data.feature_names),
        class_names=tuple(data.class_names), checks=checks, findings=tuple(findings), provenance=provenance,
        autoattack_share=_stage_shares(hit, clean, norm), cw_distance=_cw_distance(hit), labels=np.asarray(y, np.int64))


def _stage_shares(hit: Attacked, clean: np.ndarray, norm: str) -> dict[str, np.ndarray]:
    """AutoAttack's per-stage shares over the grid: of the correctly classified rows, the share
    each stage broke first (0 at eps 0); they add up to AutoAttack's attack success rate. Square
    runs for L-inf only (as in `autoattack`)."""
    if "autoattack" not in hit.stage:
        return {}
    codes, total = hit.stage["autoattack"], max(int(clean.sum()), 1)
    stages = ATTACKS["autoattack"].stages
    return {s: ((codes == i) & clean).sum(axis=1) / total for i, s in enumerate(stages)
            if s != "square" or norm == "linf"}


def _cw_distance(hit: Attacked) -> np.ndarray:
    """C&W's L2 distance per sampled row (0: already misclassified; NaN: no adversarial found)."""
    d = hit.distance.get("cw")
    if d is None:
        return np.zeros(0)
    return np.where(np.isfinite(d), d, np.nan).astype(np.float64)


def _checks(model, x, y, clean, grid, correct, baselines, attacks, domain, norm, width, settings, batch,
            key, differentiable, found, k_min):
    """Run the sanity checks; returns (findings, the numbers they were based on)."""
    findings, checks = [], {}
    m = len(x)
    tol = max(0.02, 1.0 / m)
    acc = {a: c.mean(axis=1) for a, c in correct.items()}
    positive = grid > 0
    white = [a for a in attacks if ATTACKS[a].needs_gradients]
    if "pgd" in acc and "fgsm" in acc and positive.any():
        findings.append(_sanity.pgd_vs_fgsm(grid[positive], acc["pgd"][positive], acc["fgsm"][positive], tol=tol))
    if "pgd" in acc and positive.any():
        j = int(np.flatnonzero(positive)[np.argmin(np.abs(acc["pgd"][positive] - clean.mean() / 2))])
        strong = _batched(lambda xb, yb, kb: pgd(model.apply, model.params, xb, yb, eps=float(grid[j]), norm=norm,
                                                 steps=2 * settings["steps"], restarts=settings["restarts"] + 1,
                                                 domain=domain, key=kb, stop_when_fooled=True),
                           x, y, batch, jax.random.fold_in(key, 80_000))
        strong_acc = float((clean & (model.predict(strong) == y)).mean())
        checks.update({"more_iterations_eps": float(grid[j]), "more_iterations_accuracy": strong_acc})
        findings.append(_sanity.more_iterations(float(grid[j]), float(acc["pgd"][j]), strong_acc, tol=tol))
    if differentiable:
        sub = slice(0, min(m, 200))
        big = _batched(lambda xb, yb, kb: pgd(model.apply, model.params, xb, yb, eps=width, norm=norm,
                                              steps=settings["steps"], domain=domain, key=kb, stop_when_fooled=True),
                       x[sub], y[sub], batch, jax.random.fold_in(key, 90_000))
        big_acc = float((model.predict(big) == y[sub]).mean())
        checks.update({"large_eps": width, "large_eps_accuracy": big_acc})
        findings.append(_sanity.large_eps(width, big_acc, chance=1.0 / model.n_classes))
        bad = _bad_gradients(model, x, y, domain, batch)
        checks["bad_gradient_fraction"] = bad
        findings.append(_sanity.gradients(bad))
    if white and positive.any():
        best_white = np.min([acc[a] for a in white], axis=0)
        if "square" in acc:
            findings.append(_sanity.black_box_vs_white_box(grid[positive], acc["square"][positive],
                                                           best_white[positive], tol=max(0.05, tol)))
        noise_acc = np.min([b.mean(axis=1) for b in baselines.values()], axis=0)
        strongest = np.min([acc[a] for a in attacks], axis=0)
        findings.append(_sanity.noise_vs_attack(grid[positive], noise_acc[positive], strongest[positive], tol=tol))
    if k_min:
        findings.append(_sanity.censored(float(np.mean(found))))
    return findings, checks
