"""`evaluate(model, data)`: the cost of recourse per sensitive group (Ustun et al. 2019, "Actionable
recourse in linear classification"; Gupta et al. 2019, "Equalizing recourse across groups").

For every row of the split that the model does not give the favourable class, the cheapest
counterfactual under the constraints (sensitive and immutable columns fixed, monotone columns one
way) is searched with `audit.explain.counterfactuals`. Per group of each sensitive attribute: the
mean cost of recourse with a percentile bootstrap interval (rows resampled within the group), the
share of denied rows with no feasible recourse, and the burden ratio between the groups that pay
most and least, with a bootstrap interval for that pair.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from audit.errors import AuditInputError
from audit.explain import counterfactuals
from audit.explain._counterfactuals import favourable_class
from audit.data import attribute_groups
from audit.recourse._report import RecourseAttribute, RecourseGroup, RecourseReport
from audit.results import Finding, Provenance, timer


def _bootstrap_means(costs: np.ndarray, n_bootstrap: int, rng: np.random.Generator) -> np.ndarray:
    if len(costs) == 0 or n_bootstrap == 0:
        return np.full(n_bootstrap, np.nan)
    idx = rng.integers(0, len(costs), size=(n_bootstrap, len(costs)))
    return costs[idx].mean(axis=1)


def _attribute(name: str, codes: np.ndarray, labels: Sequence[str], rule: str, split_codes: np.ndarray,
               cost: np.ndarray, feasible: np.ndarray, *, n_bootstrap: int, confidence: float,
               min_group_size: int, rng: np.random.Generator) -> RecourseAttribute:
    alpha = (1 - confidence) / 2
    groups, boots = [], []
    for g, label in enumerate(labels):
        mine = codes == g
        c = cost[mine & feasible]
        boot = _bootstrap_means(c, n_bootstrap, rng)
        boots.append(boot)
        lo, hi = (np.quantile(boot, [alpha, 1 - alpha]) if len(c) and n_bootstrap else (np.nan, np.nan))
        groups.append(RecourseGroup(
            label=str(label), n_rows=int((split_codes == g).sum()), n_denied=int(mine.sum()),
            n_feasible=int(len(c)), mean_cost=float(c.mean()) if len(c) else float("nan"),
            ci_low=float(lo), ci_high=float(hi), median_cost=float(np.median(c)) if len(c) else float("nan"),
            infeasible_rate=float(np.mean(~feasible[mine])) if mine.any() else float("nan"),
            too_small=bool(len(c) < min_group_size)))
    judged = [i for i, g in enumerate(groups) if not g.too_small]
    if len(judged) < 2:
        return RecourseAttribute(name=name, rule=rule, groups=tuple(groups), burden_ratio=float("nan"),
                                 ci_low=float("nan"), ci_high=float("nan"), high_group=None, low_group=None)
    high = max(judged, key=lambda i: groups[i].mean_cost)
    low = min(judged, key=lambda i: groups[i].mean_cost)
    ratio = groups[high].mean_cost / groups[low].mean_cost if groups[low].mean_cost > 0 else float("inf")
    with np.errstate(divide="ignore", invalid="ignore"):
        boot_ratio = boots[high] / boots[low]
    lo, hi = np.quantile(boot_ratio, [alpha, 1 - alpha]) if n_bootstrap else (np.nan, np.nan)
    return RecourseAttribute(name=name, rule=rule, groups=tuple(groups), burden_ratio=float(ratio),
                             ci_low=float(lo), ci_high=float(hi), high_group=groups[high].label,
                             low_group=groups[low].label)


def _findings(attributes: Sequence[RecourseAttribute], feasible: np.ndarray, favorable: str, *,
              max_ratio: float, max_infeasible: float, n_denied: int) -> tuple[Finding, ...]:
    out = []
    if n_denied == 0:
        return (Finding(id="recourse.none_denied", status="pass", title="Nobody needs recourse",
                        message=f"The model gives every row of the split the favourable class {favorable!r}."),)
    for a in attributes:
        small = [g.label for g in a.groups if g.too_small]
        if not np.isfinite(a.burden_ratio):
            out.append(Finding(id=f"recourse.burden:{a.name}", status="warn", title=f"Recourse burden by {a.name}",
                               message=(f"Fewer than two {a.name} groups have enough denied rows with recourse to "
                                        f"compare (too small: {small}); no burden ratio is reported.")))
            continue
        hi, lo = a.group(a.high_group), a.group(a.low_group)
        sure = a.ci_low > 1.0
        status = "pass" if a.burden_ratio <= max_ratio else ("fail" if sure else "warn")
        message = (f"Denied rows with {a.name} = {a.high_group!r} need {a.burden_ratio:.2f} times the change of "
                   f"{a.low_group!r} to be given {favorable!r} (mean cost {hi.mean_cost:.2f} vs {lo.mean_cost:.2f}, "
                   f"ratio interval {a.ci_low:.2f} to {a.ci_high:.2f}; rule: at most {max_ratio})")
        if status == "warn":
            message += ", but the interval includes 1: it may be chance"
        if small:
            message += f"; groups too small to judge: {small}"
        out.append(Finding(id=f"recourse.burden:{a.name}", status=status, title=f"Recourse burden by {a.name}",
                           message=message + ".", metric=f"burden_ratio:{a.name}", value=a.burden_ratio,
                           threshold=max_ratio))
    rate = float(np.mean(~feasible))
    worst = [(g.infeasible_rate, a.name, g.label) for a in attributes for g in a.groups
             if g.n_denied >= 1 and not g.too_small and np.isfinite(g.infeasible_rate)]
    detail = ""
    if worst and max(worst)[0] > 0:
        r, attr, label = max(worst)
        detail = f"; highest for {attr} = {label!r} ({r:.1%})"
    out.append(Finding(id="recourse.infeasible", status="warn" if rate > max_infeasible else "pass",
                       title="Denied rows without recourse",
                       message=(f"{rate:.1%} of the denied rows have no counterfactual under the constraints "
                                f"(rule: at most {max_infeasible:.0%}){detail}."),
                       metric="infeasible_rate", value=rate, threshold=max_infeasible))
    return tuple(out)


def evaluate(model, data, *, split: str = "test", attributes: Sequence[str] | None = None,
             favorable_class: int | str | None = None, immutable: Sequence[str] = (),
             monotone: Mapping[str, str] | None = None, cost: str = "mad", categorical_cost: float = 1.0,
             method: str = "auto", max_rows: int = 1000, n_bootstrap: int = 500, confidence: float = 0.95,
             min_group_size: int = 30, max_ratio: float = 1.25, max_infeasible: float = 0.2,
             n_bins: int = 4, seed: int = 0) -> RecourseReport:
    """Cost of recourse per group for the rows of `split` denied the favourable class.

    `favorable_class` defaults to the most common training label; `attributes` to every sensitive
    attribute (continuous ones binned into `n_bins` quantile groups, as in fairness). At most
    `max_rows` denied rows are explained (a seeded sample). A burden ratio above `max_ratio` fails
    when its bootstrap interval excludes 1 (else warns); groups with fewer than `min_group_size`
    feasible rows are reported but never carry the headline. More than `max_infeasible` of denied
    rows without recourse warns.
    """
    with timer() as t:
        model.check_data(data)
        if data.kind != "tabular":
            raise AuditInputError(f"recourse applies to tabular data; {data.name!r} is {data.kind} data.")
        if split not in data.splits or len(data.splits[split]) == 0:
            raise AuditInputError(f"{data.name}: no rows in split {split!r}; have "
                                  f"{ {k: len(v) for k, v in data.splits.items()} }.")
        names = sorted(data.sensitive) if attributes is None else list(attributes)
        if not names:
            raise AuditInputError(f"{data.name} has no sensitive attributes; build it with sensitive=[...].")
        for name in names:
            if name not in data.sensitive:
                raise AuditInputError(f"{data.name} has no sensitive attribute {name!r}; it has {sorted(data.sensitive)}.")
        if not (isinstance(max_rows, int) and max_rows >= 1 and isinstance(n_bootstrap, int) and n_bootstrap >= 0
                and 0 < confidence < 1 and isinstance(min_group_size, int) and min_group_size >= 1
                and max_ratio >= 1 and 0 <= max_infeasible <= 1):
            raise AuditInputError("max_rows and min_group_size must be positive integers, n_bootstrap an integer "
                                  ">= 0, confidence in (0, 1), max_ratio >= 1 and max_infeasible in [0, 1].")
        fav = favourable_class(data, favorable_class)
        rows = data.splits[split]
        pred = model.predict(data.X[rows])
        denied = np.flatnonzero(pred != fav)
        rng = np.random.default_rng(seed)
        if len(denied) > max_rows:
            denied = np.sort(rng.choice(denied, max_rows, replace=False))
        result = None
        costs = np.zeros(0)
        feasible = np.zeros(0, bool)
        if len(denied):
            result = counterfactuals(model, data, data.X[rows[denied]], target=fav, k=1, immutable=immutable,
                                     monotone=monotone, cost=cost,
                                     categorical_cost=categorical_cost, method=method, seed=seed)
            costs, feasible = result.cheapest()
        results = []
        for name in names:
            grouping = attribute_groups(data, name, n_bins=n_bins)  # the data layer's grouping
            split_codes = grouping.codes[rows]
            results.append(_attribute(name, split_codes[denied], grouping.labels, grouping.rule, split_codes,
                                      np.nan_to_num(costs), feasible, n_bootstrap=n_bootstrap,
                                      confidence=confidence, min_group_size=min_group_size, rng=rng))
        findings = _findings(results, feasible, data.class_names[fav], max_ratio=max_ratio,
                             max_infeasible=max_infeasible, n_denied=len(denied))
    settings = {"attributes": names, "favorable_class": data.class_names[fav], "immutable": list(immutable),
                "monotone": dict(monotone or {}), "cost": cost,
                "categorical_cost": categorical_cost, "method": method, "max_rows": max_rows,
                "n_bootstrap": n_bootstrap, "confidence": confidence, "min_group_size": min_group_size,
                "max_ratio": max_ratio, "max_infeasible": max_infeasible, "n_bins": n_bins}
    return RecourseReport(split=split, class_names=tuple(model.class_names), favorable_class=data.class_names[fav],
                          n_rows=len(rows), rows=denied.astype(np.int64), feasible=feasible,
                          cost=np.where(feasible, costs, np.nan), counterfactuals=result, attributes=tuple(results),
                          findings=findings,
                          provenance=Provenance(method="recourse.evaluate", settings=settings, seed=seed,
                                                seconds=t[0]))
