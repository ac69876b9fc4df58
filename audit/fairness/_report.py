"""Fairness result types: per-attribute group tables and disparities, proxies, the report."""

from __future__ import annotations

import dataclasses
from typing import Mapping

import numpy as np
import numpy.typing as npt

from audit.fairness._disparity import DISPARITIES, Disparity
from audit.results import Finding, MetricSpec, Provenance, Result

_GAP_TITLES = {"demographic_parity_difference": "Demographic parity difference",
               "demographic_parity_ratio": "Demographic parity ratio",
               "disparate_impact": "Disparate impact ratio",
               "equal_opportunity_difference": "Equal opportunity difference",
               "equalized_odds_difference": "Equalized odds difference",
               "predictive_parity_difference": "Predictive parity difference",
               "calibration_gap": "Calibration gap"}
_GAP_MEANINGS = {"demographic_parity_difference": "largest gap in selection rate (share predicted positive)",
                 "demographic_parity_ratio": "smallest over largest selection rate",
                 "disparate_impact": "smallest over largest rate of the favourable outcome (four-fifths rule: >= 0.8)",
                 "equal_opportunity_difference": "largest gap in true-positive rate",
                 "equalized_odds_difference": "larger of the true- and false-positive-rate gaps",
                 "predictive_parity_difference": "largest gap in precision",
                 "calibration_gap": "largest gap in calibration error"}
# group metrics in the tables: (direction, meaning)
_GROUP_METRICS = {"size": ("info", "rows of the group"),
                  "base_rate": ("info", "share of the group's rows whose true class is the class"),
                  "selection_rate": ("info", "share of the group's rows predicted as the class"),
                  "accuracy": ("higher", "share of the group's rows classified correctly"),
                  "tpr": ("higher", "share of the group's rows of the class that the model finds"),
                  "fpr": ("lower", "share of the group's rows not of the class predicted as it"),
                  "fnr": ("lower", "share of the group's rows of the class that the model misses"),
                  "precision": ("higher", "share of the group's predictions of the class that are right"),
                  "roc_auc": ("higher", "ROC-AUC of the class's score within the group"),
                  "calibration_error": ("lower", "expected calibration error of the class's score within the group")}


def _fairness_specs() -> tuple[MetricSpec, ...]:
    """One spec per metric FairnessReport.metrics() yields; the more specific patterns first."""
    out = []
    for name, (_, kind) in DISPARITIES.items():
        better = "lower" if kind == "difference" else "higher"
        title, meaning = _GAP_TITLES[name], _GAP_MEANINGS[name]
        out += [MetricSpec(f"{name}:<attribute>:all_groups", better, f"{title} by <attribute>, all groups",
                           f"{meaning.capitalize()} over every group where it is defined, however small "
                           "(fairlearn's number), on the audited rows."),
                MetricSpec(f"{name}_ci_low:<attribute>", "info", f"{title} by <attribute>, interval low",
                           "Lower end of the bootstrap interval of the headline value."),
                MetricSpec(f"{name}_ci_high:<attribute>", "info", f"{title} by <attribute>, interval high",
                           "Upper end of the bootstrap interval of the headline value."),
                MetricSpec(f"{name}:<attribute>:<class>", better, f"{title} by <attribute>, class <class>",
                           f"{meaning.capitalize()} for one class one-vs-rest, between groups large enough to "
                           "judge, on the audited rows."),
                MetricSpec(f"{name}:<attribute>", better, f"{title} by <attribute>",
                           f"{meaning.capitalize()} between groups large enough to judge (rows >= "
                           "min_group_size, denominator >= min_count), worst over analysed classes, on the "
                           "audited rows.")]
    for m, (direction, meaning) in _GROUP_METRICS.items():
        out.append(MetricSpec(f"{m}:<attribute>=<group>", direction, f"{m.replace('_', ' ')} of <attribute>=<group>",
                              f"{meaning.capitalize()} (first analysed class), on the audited rows."))
    out += [MetricSpec("min_group_size:<attribute>", "info", "Smallest group of <attribute>",
                       "Rows in the smallest group of the attribute among the audited rows."),
            MetricSpec("proxy_probe_auc:<attribute>", "lower", "Proxy probe ROC-AUC for <attribute>",
                       "ROC-AUC of a held-out probe predicting the attribute from the model inputs (0.5: the "
                       "inputs carry none of it; higher: more leakage)."),
            MetricSpec("proxy_max_nmi:<attribute>", "lower", "Strongest proxy for <attribute>",
                       "Largest normalised mutual information between one input column and the attribute."),
            MetricSpec("proxy_nmi:<attribute>:<column>", "lower", "Proxy strength of <column> for <attribute>",
                       "Normalised mutual information between the column and the attribute (0: none, 1: "
                       "determines it)."),
            MetricSpec("sensitive_attribution_share:<attribute>", "lower", "Model's use of <attribute>",
                       "Share of the model's attribution that goes to the sensitive attribute as an input.")]
    return tuple(out)


@dataclasses.dataclass(frozen=True, eq=False)
class GroupTable(Result):
    """Group metrics for one attribute, one-vs-rest for class `class_name`: `values[metric][g]`.

    For each rate (a proportion such as TPR = TP / positives) `ci_low[metric][g]` /
    `ci_high[metric][g]` is its exact (Clopper-Pearson) interval, and `too_small[metric][g]` says
    the group has fewer rows than `min_group_size` or fewer than `min_count` in the rate's
    denominator: its rate is shown but never realises a headline disparity.
    """

    attribute: str
    class_name: str
    groups: tuple[str, ...]
    values: Mapping[str, npt.NDArray[np.float64]]
    ci_low: Mapping[str, npt.NDArray[np.float64]] = dataclasses.field(default_factory=dict)
    ci_high: Mapping[str, npt.NDArray[np.float64]] = dataclasses.field(default_factory=dict)
    too_small: Mapping[str, npt.NDArray[np.bool_]] = dataclasses.field(default_factory=dict)

    def metric(self, name: str) -> dict[str, float]:
        return {g: float(v) for g, v in zip(self.groups, self.values[name])}

    def small_groups(self, name: str) -> tuple[str, ...]:
        """Groups too small to judge metric `name`."""
        flags = self.too_small.get(name, np.zeros(len(self.groups), bool))
        return tuple(g for g, f in zip(self.groups, flags) if f)

    def to_frame(self):
        """The table as a pandas DataFrame: one row per group, one column per metric."""
        import pandas as pd

        return pd.DataFrame({k: np.asarray(v, np.float64) for k, v in self.values.items()},
                            index=pd.Index(self.groups, name=self.attribute))


@dataclasses.dataclass(frozen=True, eq=False)
class AttributeResult(Result):
    """One sensitive attribute (or intersection of two): its groups, tables and disparities."""

    name: str
    rule: str
    groups: tuple[str, ...]
    sizes: npt.NDArray[np.int64]
    tables: tuple[GroupTable, ...]
    disparities: tuple[Disparity, ...]
    empty_groups: tuple[str, ...] = ()

    def table(self, class_name: str | None = None) -> GroupTable:
        """The group table for `class_name` (default: the first analysed class)."""
        if class_name is None:
            return self.tables[0]
        for t in self.tables:
            if t.class_name == class_name:
                return t
        raise KeyError(f"no table for class {class_name!r}; have {[t.class_name for t in self.tables]}")

    @property
    def by_group(self):
        """The first analysed class's group table as a DataFrame (like fairlearn's MetricFrame.by_group)."""
        return self.table().to_frame()

    def to_frame(self):
        """Every class's group table in one DataFrame indexed by (class, group)."""
        import pandas as pd

        return pd.concat({t.class_name: t.to_frame() for t in self.tables}, names=["class", self.name])

    def disparity(self, name: str, class_name: str | None = None) -> Disparity:
        for d in self.disparities:
            if d.name == name and (class_name is None or d.class_name == class_name):
                return d
        raise KeyError(f"no disparity {name!r} for class {class_name!r} on {self.name!r}")


@dataclasses.dataclass(frozen=True, eq=False)
class ProxyResult(Result):
    """Which model inputs predict a sensitive attribute, and how much the model relies on it.

    `mutual_information[j]` (nats) and `normalized_mi[j]` (divided by the attribute's entropy)
    are per raw input column; `probe_auc` is a held-out logistic-regression probe predicting
    the attribute from all model inputs (0.5 = no information); `attribution_share` is the
    attribute's share of the model's permutation importance when it is itself an input.
    """

    attribute: str
    columns: tuple[str, ...]
    mutual_information: np.ndarray
    normalized_mi: np.ndarray
    probe_auc: float
    attribution_share: float | None = None
    attribution_method: str | None = None

    def ranked(self) -> list[tuple[str, float]]:
        """Columns by normalised mutual information, strongest proxy first."""
        order = np.argsort(-self.normalized_mi, kind="stable")
        return [(self.columns[j], float(self.normalized_mi[j])) for j in order]


@dataclasses.dataclass(frozen=True, eq=False)
class FairnessReport(Result):
    """Group metrics, disparities with intervals and proxies for each sensitive attribute.

    `classes` are the classes analysed one-vs-rest (the positive class for a binary model,
    every class for a multi-class one). See `metrics()` for the flat names policies use.
    """

    SCHEMA = "audit.fairness/1"
    METRICS = _fairness_specs()

    attributes: tuple[AttributeResult, ...]
    proxies: tuple[ProxyResult, ...]
    class_names: tuple[str, ...]
    classes: tuple[str, ...]
    favorable_class: str
    split: str
    n_rows: int
    findings: tuple[Finding, ...]
    provenance: Provenance

    def attribute(self, name: str) -> AttributeResult:
        for a in self.attributes:
            if a.name == name:
                return a
        raise KeyError(f"no attribute {name!r}; have {[a.name for a in self.attributes]}")

    def proxy(self, name: str) -> ProxyResult:
        for p in self.proxies:
            if p.attribute == name:
                return p
        raise KeyError(f"no proxy analysis for {name!r}")

    def metrics(self) -> dict[str, float]:
        """Flat metrics. Per attribute A: "<disparity>:A" (worst over analysed classes: largest
        difference, smallest ratio; only groups large enough to judge are compared),
        "<disparity>:A:all_groups" (the same over every group, fairlearn's number),
        "<disparity>_ci_low:A" / "_ci_high:A" for it, per class
        "<disparity>:A:<class>" (multi-class only), "<group metric>:A=<group>" (first analysed
        class), "min_group_size:A"; proxies: "proxy_probe_auc:A", "proxy_max_nmi:A",
        "proxy_nmi:A:<column>", "sensitive_attribution_share:A". Undefined values are left out."""
        out: dict[str, float] = {}
        multi = len(self.classes) > 1
        for a in self.attributes:
            for name in dict.fromkeys(d.name for d in a.disparities):
                every = [d.all_groups_value for d in a.disparities
                         if d.name == name and np.isfinite(d.all_groups_value)]
                if every:
                    kind = next(d.kind for d in a.disparities if d.name == name)
                    out[f"{name}:{a.name}:all_groups"] = float((max if kind == "difference" else min)(every))
                ds = [d for d in a.disparities if d.name == name and np.isfinite(d.value)]
                if not ds:
                    continue
                worst = (max if ds[0].kind == "difference" else min)(ds, key=lambda d: d.value)
                out[f"{name}:{a.name}"] = worst.value
                if np.isfinite(worst.ci_low):
                    out[f"{name}_ci_low:{a.name}"] = worst.ci_low
                    out[f"{name}_ci_high:{a.name}"] = worst.ci_high
                if multi:
                    for d in ds:
                        out[f"{name}:{a.name}:{d.class_name}"] = d.value
            table = a.tables[0]
            for metric, values in table.values.items():
                for g, v in zip(table.groups, values):
                    if np.isfinite(v):
                        out[f"{metric}:{a.name}={g}"] = float(v)
            out[f"min_group_size:{a.name}"] = float(np.min(a.sizes))
        for p in self.proxies:
            if np.isfinite(p.probe_auc):
                out[f"proxy_probe_auc:{p.attribute}"] = p.probe_auc
            if len(p.normalized_mi):
                out[f"proxy_max_nmi:{p.attribute}"] = float(np.max(p.normalized_mi))
            for c, v in zip(p.columns, p.normalized_mi):
                out[f"proxy_nmi:{p.attribute}:{c}"] = float(v)
            if p.attribution_share is not None:
                out[f"sensitive_attribution_share:{p.attribute}"] = p.attribution_share
        return out
