"""Fairness result types: per-attribute group tables and disparities, proxies, the report."""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping

import numpy as np

from audit.fairness._disparity import Disparity
from audit.results import Finding, Provenance, array, to_jsonable


def _nan(v) -> float:
    return float("nan") if v is None else float(v)


@dataclasses.dataclass(frozen=True, eq=False)
class GroupTable:
    """Group metrics for one attribute, one-vs-rest for class `class_name`: `values[metric][g]`."""

    attribute: str
    class_name: str
    groups: tuple[str, ...]
    values: Mapping[str, np.ndarray]

    def metric(self, name: str) -> dict[str, float]:
        return {g: float(v) for g, v in zip(self.groups, self.values[name])}

    def to_frame(self):
        """The table as a pandas DataFrame: one row per group, one column per metric."""
        import pandas as pd

        return pd.DataFrame({k: np.asarray(v, np.float64) for k, v in self.values.items()},
                            index=pd.Index(self.groups, name=self.attribute))

    def to_dict(self) -> dict[str, Any]:
        return {"attribute": self.attribute, "class_name": self.class_name, "groups": list(self.groups),
                "values": {k: to_jsonable(np.asarray(v, np.float64)) for k, v in self.values.items()}}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "GroupTable":
        return cls(attribute=d["attribute"], class_name=d["class_name"], groups=tuple(d["groups"]),
                   values={k: array(v) for k, v in d["values"].items()})


@dataclasses.dataclass(frozen=True, eq=False)
class AttributeResult:
    """One sensitive attribute (or intersection of two): its groups, tables and disparities."""

    name: str
    rule: str
    groups: tuple[str, ...]
    sizes: np.ndarray
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

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "rule": self.rule, "groups": list(self.groups),
                "sizes": to_jsonable(np.asarray(self.sizes)), "tables": [t.to_dict() for t in self.tables],
                "disparities": [d.to_dict() for d in self.disparities],
                "empty_groups": list(self.empty_groups)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "AttributeResult":
        return cls(name=d["name"], rule=d["rule"], groups=tuple(d["groups"]),
                   sizes=array(d["sizes"], np.int64),
                   tables=tuple(GroupTable.from_dict(t) for t in d["tables"]),
                   disparities=tuple(Disparity.from_dict(x) for x in d["disparities"]),
                   empty_groups=tuple(d.get("empty_groups", ())))


@dataclasses.dataclass(frozen=True, eq=False)
class ProxyResult:
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

    def to_dict(self) -> dict[str, Any]:
        return {"attribute": self.attribute, "columns": list(self.columns),
                "mutual_information": to_jsonable(np.asarray(self.mutual_information, np.float64)),
                "normalized_mi": to_jsonable(np.asarray(self.normalized_mi, np.float64)),
                "probe_auc": to_jsonable(self.probe_auc),
                "attribution_share": to_jsonable(self.attribution_share),
                "attribution_method": self.attribution_method}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "ProxyResult":
        share = d.get("attribution_share")
        return cls(attribute=d["attribute"], columns=tuple(d["columns"]),
                   mutual_information=array(d["mutual_information"]), normalized_mi=array(d["normalized_mi"]),
                   probe_auc=_nan(d["probe_auc"]), attribution_share=None if share is None else float(share),
                   attribution_method=d.get("attribution_method"))


@dataclasses.dataclass(frozen=True, eq=False)
class FairnessReport:
    """Group metrics, disparities with intervals and proxies for each sensitive attribute.

    `classes` are the classes analysed one-vs-rest (the positive class for a binary model,
    every class for a multi-class one). See `metrics()` for the flat names policies use.
    """

    SCHEMA = "audit.fairness/1"

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
        difference, smallest ratio), "<disparity>_ci_low:A" / "_ci_high:A" for it, per class
        "<disparity>:A:<class>" (multi-class only), "<group metric>:A=<group>" (first analysed
        class), "min_group_size:A"; proxies: "proxy_probe_auc:A", "proxy_max_nmi:A",
        "proxy_nmi:A:<column>", "sensitive_attribution_share:A". Undefined values are left out."""
        out: dict[str, float] = {}
        multi = len(self.classes) > 1
        for a in self.attributes:
            for name in dict.fromkeys(d.name for d in a.disparities):
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

    def to_dict(self) -> dict[str, Any]:
        return {"schema": self.SCHEMA, "attributes": [a.to_dict() for a in self.attributes],
                "proxies": [p.to_dict() for p in self.proxies], "class_names": list(self.class_names),
                "classes": list(self.classes), "favorable_class": self.favorable_class,
                "split": self.split, "n_rows": self.n_rows,
                "findings": [f.to_dict() for f in self.findings], "provenance": self.provenance.to_dict()}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "FairnessReport":
        if d.get("schema") != cls.SCHEMA:
            raise ValueError(f"expected schema {cls.SCHEMA!r}, got {d.get('schema')!r}")
        return cls(attributes=tuple(AttributeResult.from_dict(a) for a in d["attributes"]),
                   proxies=tuple(ProxyResult.from_dict(p) for p in d["proxies"]),
                   class_names=tuple(d["class_names"]), classes=tuple(d["classes"]),
                   favorable_class=d["favorable_class"], split=d["split"], n_rows=int(d["n_rows"]),
                   findings=tuple(Finding.from_dict(f) for f in d["findings"]),
                   provenance=Provenance.from_dict(d["provenance"]))
