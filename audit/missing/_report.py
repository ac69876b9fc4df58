"""`MissingReport`: where values are missing, for whom, whether it predicts the label, and what
missing values at prediction time cost the model, per group."""

from __future__ import annotations

import dataclasses

import numpy as np

from audit.results import Finding, MetricSpec, Provenance, Result


@dataclasses.dataclass(frozen=True, eq=False)
class GroupRate(Result):
    """A share among one group's rows with its Wilson interval; `too_small`: fewer than
    `min_group_size` rows, so the group never carries a headline."""

    label: str
    n: int
    count: int
    rate: float
    ci_low: float
    ci_high: float
    too_small: bool


@dataclasses.dataclass(frozen=True, eq=False)
class ColumnProfile(Result):
    """One raw column's missingness over all rows: its rate, and how well the mask alone ranks
    the minority class (`mask_auc`, 0.5: uninformative) with the rates among minority-class rows
    and the rest (Wilson intervals); `informative` when those intervals do not overlap and the AUC
    is at least `auc_margin` away from 0.5."""

    column: str
    n_missing: int
    rate: float
    mask_auc: float
    minority: GroupRate
    rest: GroupRate
    informative: bool


@dataclasses.dataclass(frozen=True, eq=False)
class AttributeMissingness(Result):
    """One column's missing rate per group of one sensitive attribute; `rate_gap` is the highest
    minus the lowest rate among groups large enough to judge (NaN if fewer than two); `unequal`
    when it is at least `min_gap` and their Wilson intervals do not overlap."""

    attribute: str
    column: str
    rule: str
    groups: tuple[GroupRate, ...]
    rate_gap: float
    high_group: str | None
    low_group: str | None
    unequal: bool


@dataclasses.dataclass(frozen=True, eq=False)
class GroupPoint(Result):
    """One group's accuracy and minority-class recall (Wilson intervals) at one injected rate."""

    attribute: str
    accuracy: GroupRate
    minority_recall: GroupRate


@dataclasses.dataclass(frozen=True, eq=False)
class FairnessGap(Result):
    """Fairness gaps across one sensitive attribute's groups large enough to judge, computed by
    `audit.fairness` (fairlearn's between-groups differences, positive class: the minority)."""

    attribute: str
    demographic_parity: float
    equalized_odds: float


@dataclasses.dataclass(frozen=True, eq=False)
class RatePoint(Result):
    """The model on the split's rows with a share `rate` of the imputable values blanked (rate 0:
    the data as it is) and filled by one strategy; with multiple imputation every share is pooled
    over the draws by Rubin's rules (its interval is Rubin's, not Wilson's)."""

    rate: float
    accuracy: GroupRate
    minority_recall: GroupRate
    groups: tuple[GroupPoint, ...]
    gaps: tuple[FairnessGap, ...] = ()


@dataclasses.dataclass(frozen=True, eq=False)
class Curve(Result):
    """One injection scenario filled by one strategy: `scenario` is "mcar" (values blanked
    completely at random), "important" (concentrated on the columns the model relies on most) or
    "group:<attribute>" (only the named group's rows lose values); `strategy` names the imputer
    ("multiple": IterativeImputer posterior draws pooled by Rubin's rules)."""

    scenario: str
    strategy: str
    description: str
    points: tuple[RatePoint, ...]

    @property
    def key(self) -> str:
        return self.scenario if self.strategy == "data" else f"{self.scenario}/{self.strategy}"


@dataclasses.dataclass(frozen=True, eq=False)
class ColumnImportance(Result):
    """Permutation importance of one imputable raw column: accuracy lost when its values are
    shuffled across the importance rows (Breiman 2001); it ranks columns for the "important" scenario."""

    column: str
    importance: float


_CURVE_METRICS = (
    MetricSpec("accuracy@<rate>:<curve>", "higher", "Accuracy with <rate> of values missing (<curve>)",
               "Accuracy on the split's rows with this share of values blanked in the named scenario "
               "(important: concentrated on the columns the model relies on; group:<attribute>: only the "
               "named group's rows) and filled by the named strategy (the data's imputer when none is named)."),
    MetricSpec("accuracy_drop@<rate>:<curve>", "lower", "Accuracy lost with <rate> of values missing (<curve>)",
               "Accuracy on the split as it is minus accuracy with this share of values blanked in the named "
               "scenario and imputed by the named strategy."),
    MetricSpec("minority_recall@<rate>:<curve>", "higher", "Minority recall with <rate> of values missing (<curve>)",
               "Recall of the minority class with this share of values blanked in the named scenario and imputed."),
    MetricSpec("demographic_parity_difference@<rate>:<attribute>", "lower",
               "Demographic parity gap by <attribute> with <rate> of values missing",
               "Largest minus smallest selection rate of the minority class among the <attribute> groups large "
               "enough to judge, with this share of values blanked (MCAR unless a scenario is named after the "
               "attribute) and imputed."),
    MetricSpec("equalized_odds_difference@<rate>:<attribute>", "lower",
               "Equalized odds gap by <attribute> with <rate> of values missing",
               "The larger of the TPR and FPR gaps among the <attribute> groups large enough to judge, with this "
               "share of values blanked (MCAR unless a scenario is named after the attribute) and imputed."),
    MetricSpec("importance:<column>", "info", "Permutation importance of <column>",
               "Accuracy lost when <column>'s values are shuffled across the importance rows."),
)


@dataclasses.dataclass(frozen=True, eq=False)
class MissingReport(Result):
    """Result of `audit.missing.evaluate`: the missingness profile of the data (all rows) and the
    robustness curves of the model to missing values injected into the split's rows, one per
    scenario and imputation strategy (`curves[0]`: MCAR, the data's imputer)."""

    SCHEMA = "audit.missing/2"
    METRICS = _CURVE_METRICS + (
        MetricSpec("rate:<column>", "info", "Missing rate of <column>",
                   "Share of all rows whose raw <column> value is missing."),
        MetricSpec("rate_gap:<attribute>", "lower", "Missingness gap by <attribute>",
                   "Largest difference, over columns, between the highest and lowest missing rate of the "
                   "<attribute> groups large enough to judge (all rows)."),
        MetricSpec("mask_auc:<column>", "info", "Missingness of <column> as a predictor",
                   "ROC AUC of the 0/1 missingness mask of <column> for the minority class over all rows "
                   "(0.5: missingness says nothing about the label)."),
        MetricSpec("accuracy@<rate>", "higher", "Accuracy with <rate> of values missing",
                   "Accuracy on the split's rows after blanking this share of the imputable values "
                   "completely at random and filling them with the data's imputer."),
        MetricSpec("accuracy_drop@<rate>", "lower", "Accuracy lost with <rate> of values missing",
                   "Accuracy on the split as it is minus accuracy with this share of values blanked at "
                   "random and imputed."),
        MetricSpec("minority_recall@<rate>", "higher", "Minority recall with <rate> of values missing",
                   "Recall of the minority class on the split's rows with this share of values blanked "
                   "at random and imputed."),
    )

    split: str
    minority_class: str
    imputer: str
    columns: tuple[ColumnProfile, ...]
    attributes: tuple[AttributeMissingness, ...]
    importance: tuple[ColumnImportance, ...]
    curves: tuple[Curve, ...]
    findings: tuple[Finding, ...]
    provenance: Provenance

    @classmethod
    def from_dict(cls, d):
        """Also reads reports written before the scenarios (schema audit.missing/1: one MCAR curve)."""
        if isinstance(d, dict) and d.get("schema") == "audit.missing/1":
            d = {**{k: v for k, v in d.items() if k != "curve"}, "schema": cls.SCHEMA, "importance": [],
                 "curves": [{"scenario": "mcar", "strategy": "data", "description": "missing completely at random",
                             "points": d.get("curve", [])}]}
        return super().from_dict(d)

    @property
    def curve(self) -> tuple[RatePoint, ...]:
        """The headline curve: values missing completely at random, filled by the data's imputer."""
        return self.curves[0].points if self.curves else ()

    def metrics(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for c in self.columns:
            out[f"rate:{c.column}"] = float(c.rate)
            out[f"mask_auc:{c.column}"] = float(c.mask_auc)
        for name in dict.fromkeys(a.attribute for a in self.attributes):
            gaps = [a.rate_gap for a in self.attributes if a.attribute == name and np.isfinite(a.rate_gap)]
            out[f"rate_gap:{name}"] = float(max(gaps)) if gaps else float("nan")
        for c in self.importance:
            out[f"importance:{c.column}"] = float(c.importance)
        for k, curve in enumerate(self.curves):
            suffix = "" if k == 0 else f":{curve.key}"
            base = curve.points[0].accuracy.rate
            for p in curve.points:
                if p.rate > 0:
                    out[f"accuracy@{p.rate:g}{suffix}"] = float(p.accuracy.rate)
                    out[f"accuracy_drop@{p.rate:g}{suffix}"] = float(base - p.accuracy.rate)
                    out[f"minority_recall@{p.rate:g}{suffix}"] = float(p.minority_recall.rate)
                if p.rate > 0 or k == 0:
                    for g in p.gaps:
                        out[f"demographic_parity_difference@{p.rate:g}:{g.attribute}{suffix}"] = g.demographic_parity
                        out[f"equalized_odds_difference@{p.rate:g}:{g.attribute}{suffix}"] = g.equalized_odds
        return out


@dataclasses.dataclass(frozen=True, eq=False)
class StrategyCell(Result):
    """A model retrained with the `train` strategy's imputer, evaluated with the `evaluate`
    strategy's imputer on the split with values blanked at random: accuracy and its worst judged
    group (`worst_group`, labelled "<attribute>=<group>")."""

    train: str
    evaluate: str
    accuracy: GroupRate
    worst_group: GroupRate


@dataclasses.dataclass(frozen=True, eq=False)
class StrategyComparison(Result):
    """Result of `audit.missing.compare_strategies`: every imputation strategy used end to end
    (train with each, evaluate with each); `best_train` / `best_evaluate` name the pair with the highest
    worst-group accuracy."""

    SCHEMA = "audit.missing.strategies/1"
    METRICS = (
        MetricSpec("worst_group_accuracy:<train>/<evaluate>", "higher",
                   "Worst-group accuracy, trained with <train>, imputed with <evaluate>",
                   "Accuracy of the worst judged sensitive group on the split with values blanked at random, "
                   "for a model retrained on data filled by <train> and evaluated with <evaluate>'s imputer."),
        MetricSpec("best_worst_group_accuracy", "higher", "Best worst-group accuracy over imputation strategies",
                   "The highest worst-group accuracy over every (train, evaluate) pair of imputation strategies."),
    )

    split: str
    rate: float
    strategies: tuple[str, ...]
    cells: tuple[StrategyCell, ...]
    best_train: str
    best_evaluate: str
    findings: tuple[Finding, ...]
    provenance: Provenance

    def metrics(self) -> dict[str, float]:
        out = {f"worst_group_accuracy:{c.train}/{c.evaluate}": float(c.worst_group.rate) for c in self.cells}
        out["best_worst_group_accuracy"] = max((c.worst_group.rate for c in self.cells), default=float("nan"))
        return out
