"""Compare two audit reports: which findings and metrics got better or worse."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

_STATUS_RANK = {"pass": 0, "warn": 1, "fail": 2}
_HIGHER = ("accuracy", "recall", "precision", "f1", "auc", "disparate_impact", "ratio", "agreement",
           "min_perturbation", "certified", "stability", "mcc", "matthews", "gain", "overlap", "spearman",
           "radius")
# Checked first: "clean_accuracy_drop" is about accuracy but lower is better.
_LOWER = ("difference", "gap", "ece", "brier", "error", "deletion_auc", "success_rate", "drop",
          "found_rate", "abstain", "sensitivity", "mce", "cost")
# Facts about the data or settings, not quality: reported as "changed", never better or worse.
_NEUTRAL = ("imbalance_ratio", "support", "size", "base_rate", "selection_rate", "threshold", "examples",
            "train_rows", "importance")


def direction(metric: str, rules=()) -> int:
    """+1 if higher is better, -1 if lower is better, 0 if unknown. Policy rules decide first."""
    for rule in rules:
        if rule.metric == metric:
            if rule.min is not None and rule.max is None:
                return 1
            if rule.max is not None and rule.min is None:
                return -1
    name = metric.split(".", 1)[-1]
    if any(token in metric for token in _NEUTRAL):
        return 0
    if any(token in name for token in _LOWER):
        return -1
    if any(token in name for token in _HIGHER):
        return 1
    return 0


@dataclasses.dataclass(frozen=True)
class MetricChange:
    metric: str
    old: float | None
    new: float | None
    verdict: str  # better | worse | changed | same | added | removed


@dataclasses.dataclass(frozen=True)
class FindingChange:
    id: str
    title: str
    old: str | None
    new: str | None
    verdict: str  # better | worse | added | removed


@dataclasses.dataclass(frozen=True)
class ReportDiff:
    metrics: tuple[MetricChange, ...]
    findings: tuple[FindingChange, ...]
    tolerance: float

    @property
    def regressions(self) -> list[Any]:
        return [c for c in (*self.findings, *self.metrics) if c.verdict == "worse"]

    @property
    def regressed(self) -> bool:
        return bool(self.regressions)

    def lines(self) -> list[str]:
        out = []
        for c in self.findings:
            out.append(f"finding {c.verdict:>7}: {c.id}: {c.old or '-'} -> {c.new or '-'} ({c.title})")
        for c in self.metrics:
            if c.verdict != "same":
                old = "-" if c.old is None else f"{c.old:.4g}"
                new = "-" if c.new is None else f"{c.new:.4g}"
                out.append(f"metric  {c.verdict:>7}: {c.metric}: {old} -> {new}")
        return out


def diff_reports(old, new, *, tolerance: float = 0.01) -> ReportDiff:
    """Findings whose status changed, and metrics that moved by more than `tolerance` (absolute).

    A finding that got worse (pass -> warn -> fail), or a metric with a known good direction
    that moved the wrong way by more than `tolerance`, is a regression.
    """
    rules = [r for r in _rules(new)]
    a, b = old.metrics(), new.metrics()
    metrics = []
    for name in sorted(set(a) | set(b)):
        x, y = a.get(name), b.get(name)
        if x is None or y is None or not (math.isfinite(x) and math.isfinite(y)):
            verdict = "same" if x == y else ("added" if x is None else "removed" if y is None else "changed")
        elif abs(y - x) <= tolerance:
            verdict = "same"
        else:
            sign = direction(name, rules)
            verdict = "changed" if sign == 0 else ("better" if (y - x) * sign > 0 else "worse")
        metrics.append(MetricChange(name, x, y, verdict))
    before = {f.id: f for f in old.findings}
    after = {f.id: f for f in new.findings}
    findings = []
    for key in sorted(set(before) | set(after)):
        f, g = before.get(key), after.get(key)
        if f is not None and g is not None and f.status == g.status:
            continue
        if g is None:
            verdict = "removed"
        elif f is None:
            verdict = "worse" if g.status == "fail" else "added"
        else:
            verdict = "worse" if _STATUS_RANK[g.status] > _STATUS_RANK[f.status] else "better"
        findings.append(FindingChange(key, (g or f).title, f.status if f else None, g.status if g else None,
                                      verdict))
    return ReportDiff(metrics=tuple(metrics), findings=tuple(findings), tolerance=tolerance)


def _rules(report):
    from audit.pipeline._policy import Rule

    for r in (report.metadata.get("config") or {}).get("policy", []):
        yield Rule.from_dict(r)
