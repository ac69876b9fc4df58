"""Findings and metrics as readers see them: human titles from the metric declarations, the section
each finding belongs to, and one number per finding (F1, F2, ...) that every mention links to.

Shared by the HTML report and the Markdown model card, so both name things the same way.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from audit.pipeline._meaning import spec_in
from audit.results import Finding

STATUS_ORDER = {"fail": 0, "warn": 1, "pass": 2}


def metric_title(report, key: str) -> str | None:
    """The declared human title of "<section>.<metric>" (placeholders filled); None when undeclared."""
    spec = spec_in(report, key)
    return None if spec is None else spec.title_for(key.partition(".")[2])


def metric_key(f: Finding) -> str | None:
    """The full "<section>.<metric>" key a finding measures (analyzer findings name theirs per section)."""
    if not f.metric:
        return None
    if f.id.startswith("policy:"):
        return f.metric
    return f"{f.id.partition(':')[0]}.{f.metric}"


@dataclasses.dataclass(frozen=True)
class Shown:
    """One finding as the report shows it."""

    number: int  # F<number>, in the order shown: fails, then warnings, then passes
    finding: Finding
    title: str  # policy titles name the metric by its human title instead of its key
    section: str | None  # the report section that discusses it (None: no section, e.g. data checks)
    metric: str | None  # the full metric key
    metric_title: str | None

    @property
    def anchor(self) -> str:
        return f"finding-{self.number}"

    @property
    def policy(self) -> bool:
        return self.finding.id.startswith("policy:")


def shown_findings(report) -> list[Shown]:
    """Every finding once, fails first (the policy's before the analyzers' within a status)."""
    ordered = sorted(report.findings, key=lambda f: STATUS_ORDER[f.status])
    out = []
    for n, f in enumerate(ordered, start=1):
        key = metric_key(f)
        title = metric_title(report, key) if key else None
        shown = f.title
        if f.id.startswith("policy:") and title and f.title.startswith(f.metric):
            shown = title + f.title[len(f.metric):]
        owner = (f.metric or "").partition(".")[0] if f.id.startswith("policy:") else f.id.partition(":")[0]
        out.append(Shown(number=n, finding=f, title=shown, section=owner if owner in report.sections else None,
                         metric=key, metric_title=title))
    return out


def rule_text(report, metric: str) -> str:
    """The policy rule on `metric` as written in the config (">= 0.6", "<= 0.02"), "" if none."""
    for rule in (report.metadata.get("config") or {}).get("policy") or []:
        if rule.get("metric") == metric:
            return " and ".join(f"{op} {rule[k]:g}" for op, k in ((">=", "min"), ("<=", "max"))
                                if rule.get(k) is not None)
    return ""


def fmt(value: Any) -> str:
    """A number as the report prints it (4 significant digits; "n/a" when missing)."""
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)
