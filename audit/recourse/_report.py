"""`RecourseReport`: who pays more to change the model's decision, per sensitive group."""

from __future__ import annotations

import dataclasses

import numpy as np

from audit.explain import CounterfactualResult
from audit.results import Finding, MetricSpec, Provenance, Result


@dataclasses.dataclass(frozen=True, eq=False)
class RecourseGroup(Result):
    """One group's recourse among its rows that got the unfavourable decision.

    mean_cost with its bootstrap interval (ci_low, ci_high) and median_cost are over the rows with
    a feasible counterfactual; infeasible_rate is the share of the group's denied rows with none.
    too_small: fewer than `min_group_size` feasible rows, so the group never carries a headline."""

    label: str
    n_rows: int
    n_denied: int
    n_feasible: int
    mean_cost: float
    ci_low: float
    ci_high: float
    median_cost: float
    infeasible_rate: float
    too_small: bool


@dataclasses.dataclass(frozen=True, eq=False)
class RecourseAttribute(Result):
    """Recourse per group of one sensitive attribute, and the burden ratio between the groups with
    the highest and the lowest mean cost (among groups large enough to judge; NaN if fewer than two)."""

    name: str
    rule: str
    groups: tuple[RecourseGroup, ...]
    burden_ratio: float
    ci_low: float
    ci_high: float
    high_group: str | None
    low_group: str | None

    def group(self, label: str) -> RecourseGroup:
        return next(g for g in self.groups if g.label == label)


@dataclasses.dataclass(frozen=True, eq=False)
class RecourseReport(Result):
    """Result of `audit.recourse.evaluate`.

    rows: indices into the split of the denied rows explained (all of them, or a seeded sample of
    `max_rows`); counterfactuals: their cheapest counterfactual each (k=1) toward
    `favorable_class`; attributes: per-group costs, infeasible shares and burden ratios."""

    SCHEMA = "audit.recourse/1"
    METRICS = (
        MetricSpec("burden_ratio:<attribute>", "lower", "Recourse burden ratio by <attribute>",
                   "Mean cheapest-counterfactual cost of the group that pays most over that of the group that "
                   "pays least, among denied rows with feasible recourse (1 = equal burden)."),
        MetricSpec("infeasible_rate", "lower", "Denied rows without recourse",
                   "Share of the rows given the unfavourable decision for which no counterfactual exists "
                   "under the constraints."),
        MetricSpec("mean_cost", "info", "Mean cost of recourse",
                   "Mean cost (MAD-scaled L1 plus a unit per changed categorical) of the cheapest "
                   "counterfactual, over denied rows with feasible recourse."),
        MetricSpec("denied_rate", "info", "Rows given the unfavourable decision",
                   "Share of the split's rows the model does not give the favourable class."),
        MetricSpec("mean_cost:<attribute>=<group>", "info", "Mean cost of recourse, <attribute> = <group>",
                   "Mean cheapest-counterfactual cost over the group's denied rows with feasible recourse."),
        MetricSpec("infeasible_rate:<attribute>=<group>", "lower", "No recourse, <attribute> = <group>",
                   "Share of the group's denied rows with no counterfactual under the constraints."),
    )

    split: str
    class_names: tuple[str, ...]
    favorable_class: str
    n_rows: int
    rows: np.ndarray
    feasible: np.ndarray
    cost: np.ndarray
    counterfactuals: CounterfactualResult | None
    attributes: tuple[RecourseAttribute, ...]
    findings: tuple[Finding, ...]
    provenance: Provenance

    def attribute(self, name: str) -> RecourseAttribute:
        for a in self.attributes:
            if a.name == name:
                return a
        raise KeyError(f"no attribute {name!r}; have {[a.name for a in self.attributes]}")

    def metrics(self) -> dict[str, float]:
        denied = len(self.rows)
        out = {"denied_rate": denied / self.n_rows if self.n_rows else float("nan"),
               "infeasible_rate": float(np.mean(~self.feasible)) if denied else 0.0,
               "mean_cost": float(np.mean(self.cost[self.feasible])) if self.feasible.any() else float("nan")}
        for a in self.attributes:
            out[f"burden_ratio:{a.name}"] = float(a.burden_ratio)
            for g in a.groups:
                out[f"mean_cost:{a.name}={g.label}"] = float(g.mean_cost)
                out[f"infeasible_rate:{a.name}={g.label}"] = float(g.infeasible_rate)
        return out
