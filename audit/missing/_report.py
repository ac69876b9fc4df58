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
class RatePoint(Result):
    """The model on the split's rows with a share `rate` of the imputable values blanked
    completely at random and filled by the data's imputer (rate 0: the data as it is)."""

    rate: float
    accuracy: GroupRate
    minority_recall: GroupRate
    groups: tuple[GroupPoint, ...]


@dataclasses.dataclass(frozen=True, eq=False)
class MissingReport(Result):
    """Result of `audit.missing.evaluate`: the missingness profile of the data (all rows) and the
    robustness curve of the model to missing values injected into the split's rows."""

    SCHEMA = "audit.missing/1"
    METRICS = (
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
    curve: tuple[RatePoint, ...]
    findings: tuple[Finding, ...]
    provenance: Provenance

    def metrics(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for c in self.columns:
            out[f"rate:{c.column}"] = float(c.rate)
            out[f"mask_auc:{c.column}"] = float(c.mask_auc)
        for name in dict.fromkeys(a.attribute for a in self.attributes):
            gaps = [a.rate_gap for a in self.attributes if a.attribute == name and np.isfinite(a.rate_gap)]
            out[f"rate_gap:{name}"] = float(max(gaps)) if gaps else float("nan")
        base = self.curve[0].accuracy.rate if self.curve else float("nan")
        for p in self.curve[1:]:
            out[f"accuracy@{p.rate:g}"] = float(p.accuracy.rate)
            out[f"accuracy_drop@{p.rate:g}"] = float(base - p.accuracy.rate)
            out[f"minority_recall@{p.rate:g}"] = float(p.minority_recall.rate)
        return out
