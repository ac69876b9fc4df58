"""`counterfactuals()`: for each row, up to k diverse, feasible changes that flip the model's decision.

Returned in raw column space (categoricals by level, integers whole) as a `CounterfactualResult`
with per-counterfactual validity, cost, sparsity and plausibility, and per-row diversity. The
search and its constraints are described in `_cf_search` and `_cf_space`; methods: Wachter et al.
2017 (gradient), Mothilal et al. 2020 (DiCE: diversity, post-hoc sparsity), Laugel et al. 2018
(growing spheres, the black-box fallback).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping, Sequence

import numpy as np

from audit.errors import AuditInputError
from audit.explain import _cf_search as search
from audit.explain._cf_space import Space, build_space, raw_rows
from audit.results import MetricSpec, Provenance, Result, timer

METHODS = ("auto", "gradient", "growing_spheres")
PLAUSIBILITY_ROWS = 5000  # training rows of the target class compared against (seeded sample above it)


@dataclasses.dataclass(frozen=True, eq=False)
class CounterfactualResult(Result):
    """Counterfactuals of n rows, k per row, in raw column space.

    original (n, d) and counterfactuals (n, k, d): raw rows, categoricals as level codes (see
    `categories`), NaN where no counterfactual was found. Per counterfactual (n, k): validity
    (the model gives the target class), cost (MAD-scaled L1 plus `categorical_cost` per changed
    categorical; NaN if none found), sparsity (raw columns changed), plausibility (cost-metric
    distance to the nearest training row of the target class) and in_range (every value inside the
    training range). Per row: target, prediction, diversity (mean pairwise cost-metric distance
    between its valid counterfactuals; NaN with fewer than two). Counterfactuals of a row are
    sorted by cost, cheapest first.
    """

    SCHEMA = "audit.explain.counterfactuals/1"
    METRICS = (
        MetricSpec("validity", "higher", "Counterfactual validity",
                   "Share of requested counterfactuals (rows x k) that the model classifies as the target."),
        MetricSpec("row_validity", "higher", "Rows with a counterfactual",
                   "Share of rows with at least one valid counterfactual."),
        MetricSpec("feasible_validity", "higher", "Counterfactual validity where recourse exists",
                   "Share of requested counterfactuals that the model classifies as the target, over the rows "
                   "with at least one (rows with none are infeasible, not invalid)."),
        MetricSpec("infeasible_rate", "lower", "Rows without a counterfactual",
                   "Share of rows for which no counterfactual was found under the constraints (the search "
                   "samples out to the edges of the data's range)."),
        MetricSpec("cost", "lower", "Mean cheapest counterfactual cost",
                   "Mean over rows with a valid counterfactual of the cheapest one's cost (MAD-scaled L1)."),
        MetricSpec("sparsity", "lower", "Mean columns changed",
                   "Mean number of raw columns changed, over valid counterfactuals."),
        MetricSpec("diversity", "higher", "Counterfactual diversity",
                   "Mean pairwise cost-metric distance between the valid counterfactuals of a row, over rows "
                   "with at least two."),
        MetricSpec("plausibility", "lower", "Distance to the target class's data",
                   "Mean cost-metric distance from a valid counterfactual to the nearest training row of "
                   "the target class."),
    )

    feature_names: tuple[str, ...]
    categories: Mapping[str, tuple[str, ...]]
    integer: tuple[str, ...]
    class_names: tuple[str, ...]
    original: np.ndarray
    counterfactuals: np.ndarray
    target: np.ndarray
    prediction: np.ndarray
    validity: np.ndarray
    cost: np.ndarray
    sparsity: np.ndarray
    plausibility: np.ndarray
    in_range: np.ndarray
    diversity: np.ndarray
    immutable: tuple[str, ...]
    monotone: Mapping[str, str]
    provenance: Provenance

    @property
    def n_rows(self) -> int:
        return len(self.original)

    def cheapest(self) -> tuple[np.ndarray, np.ndarray]:
        """Per row: cost of the cheapest valid counterfactual (NaN if none) and whether one exists."""
        cost = np.where(self.validity, self.cost, np.inf).min(axis=1)
        ok = np.isfinite(cost)
        return np.where(ok, cost, np.nan), ok

    def validity_split(self) -> dict[str, int]:
        """The n x k requested counterfactuals, counted: `valid` (the model gives the target),
        `invalid` (missing although the row has a valid one: fewer than k distinct were found) and
        `infeasible` (the row has none under the constraints)."""
        valid = self.validity.astype(bool)
        ok = valid.any(axis=1)
        return {"valid": int(valid.sum()), "invalid": int((~valid[ok]).sum()), "infeasible": int((~valid[~ok]).sum())}

    def metrics(self) -> dict[str, float]:
        valid = self.validity.astype(bool)
        cheapest, ok = self.cheapest()
        mean = lambda v: float(np.mean(v)) if np.size(v) else float("nan")
        return {"validity": mean(valid), "feasible_validity": mean(valid[ok]), "infeasible_rate": mean(~ok),
                "row_validity": mean(ok), "cost": mean(cheapest[ok]),
                "sparsity": mean(self.sparsity[valid]), "plausibility": mean(self.plausibility[valid]),
                "diversity": mean(self.diversity[np.isfinite(self.diversity)])}

    @property
    def findings(self) -> tuple:
        return ()

    def values(self, raw: np.ndarray) -> list[list[Any]]:
        """Raw rows as display values: level names, whole numbers as int, None where missing."""
        out = []
        for row in np.asarray(raw, dtype=np.float64).reshape(-1, len(self.feature_names)):
            vals: list[Any] = []
            for name, v in zip(self.feature_names, row):
                if not np.isfinite(v):
                    vals.append(None)
                elif name in self.categories:
                    vals.append(self.categories[name][int(v)])
                elif name in self.integer:
                    vals.append(int(v))
                else:
                    vals.append(float(v))
            out.append(vals)
        return out

    def to_frame(self):
        """One DataFrame row per original and per counterfactual: columns row, kind
        ("original"/"counterfactual"), rank, every raw column (levels by name), then prediction /
        target class names, validity, cost, sparsity and plausibility."""
        import pandas as pd

        records = []
        n, k = self.validity.shape
        for i in range(n):
            base = {"row": i, "kind": "original", "rank": -1, "class": self.class_names[int(self.prediction[i])],
                    "target": self.class_names[int(self.target[i])], "valid": bool(self.prediction[i] == self.target[i]),
                    "cost": 0.0, "sparsity": 0, "plausibility": np.nan}
            records.append({**base, **dict(zip(self.feature_names, self.values(self.original[i])[0]))})
            for r in range(k):
                if not np.isfinite(self.counterfactuals[i, r]).all():
                    continue
                records.append({"row": i, "kind": "counterfactual", "rank": r,
                                "class": self.class_names[int(self.target[i])] if self.validity[i, r] else None,
                                "target": self.class_names[int(self.target[i])], "valid": bool(self.validity[i, r]),
                                "cost": float(self.cost[i, r]), "sparsity": int(self.sparsity[i, r]),
                                "plausibility": float(self.plausibility[i, r]),
                                **dict(zip(self.feature_names, self.values(self.counterfactuals[i, r])[0]))})
        columns = ["row", "kind", "rank", *self.feature_names, "class", "target", "valid", "cost", "sparsity",
                   "plausibility"]
        return pd.DataFrame.from_records(records, columns=columns)


def _class_index(c: Any, class_names: Sequence[str], what: str) -> int:
    if isinstance(c, (int, np.integer)) and not isinstance(c, bool) and 0 <= int(c) < len(class_names):
        return int(c)
    if str(c) in class_names:
        return list(class_names).index(str(c))
    raise AuditInputError(f"{what} {c!r} is not one of the model's classes {list(class_names)}.")


def favourable_class(data, favorable_class: int | str | None) -> int:
    """The favourable class: as given, else the most common class among the training labels
    (the decision most people get, e.g. 'no default' on credit)."""
    if favorable_class is not None:
        return _class_index(favorable_class, data.class_names, "favorable_class")
    rows = data.splits.get("train", np.arange(len(data)))
    labels = data.y[rows] if len(rows) else data.y
    return int(np.bincount(labels, minlength=data.n_classes).argmax())


def _targets(model, data, proba: np.ndarray, target: Any, favorable_class: Any) -> np.ndarray:
    n = len(proba)
    if target is None:
        return np.full(n, favourable_class(data, favorable_class))
    if isinstance(target, str) and target == "other":
        masked = np.where(np.arange(proba.shape[1]) == proba.argmax(1)[:, None], -np.inf, proba)
        return masked.argmax(1)
    if isinstance(target, (list, tuple, np.ndarray)):
        t = np.array([_class_index(c, model.class_names, "target") for c in target])
        if len(t) != n:
            raise AuditInputError(f"target has {len(t)} entries for {n} rows; give one class per row or one class.")
        return t
    return np.full(n, _class_index(target, model.class_names, "target"))


def _plausibility(space: Space, data, cf: np.ndarray, target: np.ndarray, seed: int) -> np.ndarray:
    """Cost-metric distance from each counterfactual to the nearest training row of its target class."""
    rows = data.splits.get("train", np.arange(len(data)))
    rows = rows if len(rows) else np.arange(len(data))
    train = data.raw[rows] if data.raw is not None and data.encoding is not None else space.decode(data.X[rows])
    labels = data.y[rows]
    out = np.full(cf.shape[:2], np.nan)
    rng = np.random.default_rng(seed)
    for c in np.unique(target):
        ref = train[labels == c]
        if len(ref) == 0:
            continue
        if len(ref) > PLAUSIBILITY_ROWS:
            ref = ref[rng.choice(len(ref), PLAUSIBILITY_ROWS, replace=False)]
        sel = np.flatnonzero(target == c)
        flat = cf[sel].reshape(-1, space.d)
        dist = np.full(len(flat), np.nan)
        chunk = max(1, 2_000_000 // max(1, len(ref) * space.d))
        for s in range(0, len(flat), chunk):
            q = flat[s:s + chunk]
            dist[s:s + chunk] = space.cost(ref[None], q[:, None]).min(axis=1)
        out[sel] = dist.reshape(len(sel), -1)
    return out


def _diversity(space: Space, cf: np.ndarray, valid: np.ndarray) -> np.ndarray:
    n, k, _ = cf.shape
    if k < 2:
        return np.full(n, np.nan)
    pair = space.cost(np.nan_to_num(cf[:, :, None]), np.nan_to_num(cf[:, None]))  # (n, k, k)
    both = valid[:, :, None] & valid[:, None, :] & ~np.eye(k, dtype=bool)
    count = both.sum((1, 2))
    total = np.where(both, pair, 0.0).sum((1, 2))
    return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def counterfactuals(model, data, X: Any, *, target: int | str | Sequence[int | str] | None = None,
                    favorable_class: int | str | None = None, k: int = 3, immutable: Sequence[str] = (),
                    monotone: Mapping[str, str] | None = None, max_changes: int | None = None,
                    cost: str = "mad", categorical_cost: float = 1.0, method: str = "auto",
                    steps: int = 300, step_size: float = 0.1, samples: int = 200, shells: int = 14,
                    sparsify: bool = True, seed: int = 0) -> CounterfactualResult:
    """Up to `k` diverse counterfactuals per row of `X` that the model classifies as `target`.

    `X`: model inputs (n, n_inputs), like `data.X[rows]`, or a DataFrame of raw columns. `data`
    gives the encoding, the training statistics (MAD cost scale, value ranges, integer columns) and
    the rows plausibility is measured against. `target`: None -> the favourable class
    (`favorable_class`, default the most common training label); a class (name or index) for all
    rows, one per row, or "other" (each row's most likely other class). Hard constraints: the
    data's sensitive attributes and `immutable` columns never change, `monotone` columns
    ({"age": "increase"}) move only that way, values stay in the training range, integer columns
    stay whole, categoricals stay one level; at most `max_changes` columns change. `method`:
    "growing_spheres" (model calls only), "gradient" (the JAX gradient search batched over all
    rows, pooled with the growing-spheres candidates and every single categorical switch; the
    cheapest distinct k are kept) or "auto" (gradient unless the model is marked
    non-differentiable). A row the model already gives the
    target is its own counterfactual (cost 0).
    """
    with timer() as t:
        model.check_data(data)
        if method not in METHODS:
            raise AuditInputError(f"method {method!r} must be one of {list(METHODS)}.")
        if not (isinstance(k, int) and k >= 1):
            raise AuditInputError(f"k must be a positive integer, got {k!r}.")
        if max_changes is not None and not (isinstance(max_changes, int) and max_changes >= 1):
            raise AuditInputError(f"max_changes must be a positive integer or None, got {max_changes!r}.")
        if not (isinstance(steps, int) and steps >= 1 and isinstance(samples, int) and samples >= 1
                and isinstance(shells, int) and shells >= 1 and step_size > 0):
            raise AuditInputError("steps, samples and shells must be positive integers and step_size positive; "
                                  f"got steps={steps!r}, samples={samples!r}, shells={shells!r}, "
                                  f"step_size={step_size!r}.")
        if not (isinstance(seed, (int, np.integer)) and seed >= 0):
            raise AuditInputError(f"seed must be a non-negative integer, got {seed!r}.")
        space = build_space(data, immutable=immutable, monotone=monotone, cost=cost,
                            categorical_cost=categorical_cost)
        raw0 = raw_rows(space, data, X)
        proba = model.predict_proba(space.encode(raw0))
        tgt = _targets(model, data, proba, target, favorable_class)
        margin = search.margin_fn(model, space)
        if method == "gradient" and not model.differentiable:
            raise AuditInputError("method='gradient' needs a differentiable model; this one is marked "
                                  "differentiable=False: use method='growing_spheres' (or 'auto').")
        use = ("gradient" if model.differentiable else "growing_spheres") if method == "auto" else method
        # 2k sampled candidates: spares for the distinct k after sparsifying makes some coincide
        cf, found = search.growing_spheres(margin, space, raw0, tgt, k=2 * k, samples=samples, shells=shells,
                                           seed=seed)
        if use == "gradient":  # the gradient search, pooled with the sampled candidates
            g_cf, g_found = search.gradient_search(model, space, raw0, tgt, k=k, steps=steps,
                                                   step_size=step_size, seed=seed)
            cf, found = np.concatenate([g_cf, cf], axis=1), np.concatenate([g_found, found], axis=1)
        spares, spares_ok = [cf], [found]  # before sparsifying: distinct spares for rows left short
        if sparsify:
            cf = search.sparsify(margin, space, raw0, cf, tgt, found)
            spares.append(cf)
            spares_ok.append(found)
        if max_changes is not None:
            cf, found = search.limit_changes(margin, space, raw0, cf, tgt, found, max_changes)
        cf = search.shrink(margin, space, raw0, cf, tgt, found)
        if use == "gradient":
            switches, ok = search.categorical_switches(margin, space, raw0, tgt)
            cf, found = search.pick(space, raw0, np.concatenate([cf, switches], axis=1),
                                    np.concatenate([found, ok], axis=1), k)
        else:
            cf, found = search.pick(space, raw0, cf, found, k)
        cf, found = search.fill(margin, space, raw0, cf, found, tgt, np.concatenate(spares, axis=1),
                                np.concatenate(spares_ok, axis=1), k, max_changes)
        r0 = raw0[:, None]
        valid = found & (margin(cf, tgt[:, None]) > 0)
        cost_ = np.where(valid, space.cost(r0, cf), np.nan)
        order = np.argsort(np.where(valid, cost_, np.inf), axis=1, kind="stable")
        take = lambda a: np.take_along_axis(a, order if a.ndim == 2 else order[..., None], axis=1)
        cf, valid, cost_ = take(cf), take(valid), take(cost_)
        cf = np.where(valid[..., None], cf, np.nan)
        sparsity = np.where(valid, space.changed(r0, cf).sum(-1), 0).astype(np.int64)
        in_range = valid & ((cf >= space.lo) & (cf <= space.hi)).all(-1)
        plaus = np.where(valid, _plausibility(space, data, np.nan_to_num(cf), tgt, seed), np.nan)
        diversity = _diversity(space, cf, valid)
    settings = {"k": k, "immutable": list(immutable), "monotone": dict(monotone or {}),
                "max_changes": max_changes, "cost": cost, "categorical_cost": categorical_cost, "method": use,
                "steps": steps, "step_size": step_size, "samples": samples, "shells": shells,
                "sparsify": sparsify, "target": None if target is None else str(target),
                "favorable_class": None if favorable_class is None else str(favorable_class),
                "scale": {n: float(s) for n, s, c in zip(space.names, space.scale, space.is_cat) if not c}}
    return CounterfactualResult(
        feature_names=space.names, categories=dict(space.categories),
        integer=tuple(n for n, i in zip(space.names, space.integer) if i), class_names=tuple(model.class_names),
        original=raw0, counterfactuals=cf, target=tgt.astype(np.int64), prediction=proba.argmax(1).astype(np.int64),
        validity=valid, cost=cost_, sparsity=sparsity, plausibility=plaus, in_range=in_range, diversity=diversity,
        immutable=tuple(n for n, m in zip(space.names, space.mutable) if not m),
        monotone={n: ("increase" if v > 0 else "decrease") for n, v in zip(space.names, space.direction) if v},
        provenance=Provenance(method=f"counterfactuals.{use}", settings=settings, seed=seed, seconds=t[0]))
