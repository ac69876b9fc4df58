"""Compare two audit reports: which findings and metrics got better or worse.

"Better" and "worse" come from each metric's declared direction (its analyzer's `METRICS`;
a policy rule with only a lower or only an upper bound decides first). The summary lists the
metrics the policy names first, then changed findings, then every other metric; interval bounds
are hidden unless asked. A new model that predicts one class for every audited row is flagged:
its zero parity gaps are not a fairness improvement.
"""

from __future__ import annotations

import dataclasses
import math
import re
from typing import Any

from audit.pipeline._meaning import is_interval_bound, spec_in, spec_of

_STATUS_RANK = {"pass": 0, "warn": 1, "fail": 2}
_SIGN = {"higher": 1, "lower": -1, "info": 0}


def direction(metric: str, rules=(), spec=None) -> int:
    """+1 if higher is better, -1 if lower is better, 0 if neither or undeclared. Policy rules decide
    first; `spec` (default: the registry's declaration) says the rest."""
    for rule in rules:
        if rule.metric == metric:
            if rule.min is not None and rule.max is None:
                return 1
            if rule.max is not None and rule.min is None:
                return -1
    spec = spec_of(metric) if spec is None else spec
    return 0 if spec is None else _SIGN[spec.direction]


@dataclasses.dataclass(frozen=True)
class MetricChange:
    metric: str
    old: float | None
    new: float | None
    verdict: str  # better | worse | changed | same | added | removed
    policy: bool = False  # a policy rule names this metric
    bound: bool = False  # an interval's end (hidden unless asked)


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
    warnings: tuple[str, ...] = ()

    @property
    def regressions(self) -> list[Any]:
        return [c for c in (*self.findings, *self.metrics) if c.verdict == "worse"]

    @property
    def regressed(self) -> bool:
        return bool(self.regressions)

    def lines(self, *, show_all: bool = False) -> list[str]:
        """Warnings, then the policy's metrics, then changed findings, then the other metrics
        (interval bounds only with `show_all`)."""
        def metric_line(c: MetricChange) -> str:
            old = "-" if c.old is None else f"{c.old:.4g}"
            new = "-" if c.new is None else f"{c.new:.4g}"
            return f"metric  {c.verdict:>7}: {c.metric}: {old} -> {new}"

        out = [f"warning: {w}" for w in self.warnings]
        policy = [c for c in self.metrics if c.policy]
        if policy:
            out.append("policy metrics:")
            out += ["  " + metric_line(c) for c in policy]
        for c in self.findings:
            out.append(f"finding {c.verdict:>7}: {c.id}: {c.old or '-'} -> {c.new or '-'} ({c.title})")
        hidden = 0
        for c in self.metrics:
            if c.policy or c.verdict == "same":
                continue
            if c.bound and not show_all:
                hidden += 1
                continue
            out.append(metric_line(c))
        if hidden:
            out.append(f"({hidden} interval bound(s) changed; --all shows them)")
        return out


def _collapsed(report) -> str | None:
    """Why the report's model looks like a constant predictor (None if it does not)."""
    m = report.metrics()
    rates: dict[str, list[float]] = {}
    for name, v in m.items():
        hit = re.fullmatch(r"fairness\.selection_rate:([^=]+)=.+", name)
        if hit:
            rates.setdefault(hit.group(1), []).append(v)
    for attribute, values in rates.items():
        if len(values) >= 2 and (all(v == 0 for v in values) or all(v == 1 for v in values)):
            return f"selection rate {values[0]:g} in every group of {attribute}"
    recalls = [v for k, v in m.items() if re.fullmatch(r"imbalance\.recall:.+", k)]
    if len(recalls) >= 2 and sorted(recalls)[-1] == 1 and all(v == 0 for v in sorted(recalls)[:-1]):
        return "recall 1 for one class and 0 for every other"
    return None


def diff_reports(old, new, *, tolerance: float = 0.01) -> ReportDiff:
    """Findings whose status changed, and metrics that moved by more than `tolerance` (absolute).

    A finding that got worse (pass -> warn -> fail), or a metric with a declared good direction
    that moved the wrong way by more than `tolerance`, is a regression. When the new model is a
    collapsed constant predictor, its fairness disparities are "changed", never "better", and a
    warning says why (with the accuracy it gave up).
    """
    rules = list(_rules(new))
    ruled = {r.metric for r in rules}
    a, b = old.metrics(), new.metrics()
    collapse = _collapsed(new) if _collapsed(old) is None else None
    metrics = []
    for name in sorted(set(a) | set(b)):
        x, y = a.get(name), b.get(name)
        spec = spec_in(new, name) or spec_in(old, name)
        if x is None or y is None or not (math.isfinite(x) and math.isfinite(y)):
            verdict = "same" if x == y else ("added" if x is None else "removed" if y is None else "changed")
        elif abs(y - x) <= tolerance:
            verdict = "same"
        else:
            sign = direction(name, rules, spec)
            verdict = "changed" if sign == 0 else ("better" if (y - x) * sign > 0 else "worse")
            if collapse and verdict == "better" and name.startswith(("fairness.", "fairness_mitigation.")):
                verdict = "changed"
        metrics.append(MetricChange(name, x, y, verdict, policy=name in ruled,
                                    bound=is_interval_bound(spec)))
    warnings = []
    if collapse:
        acc = [k for k in ("imbalance.accuracy", "robustness.clean_accuracy") if k in a and k in b]
        lost = f"; accuracy {a[acc[0]]:.3f} -> {b[acc[0]]:.3f}" if acc else ""
        warnings.append(f"the new model predicts one class for every audited row ({collapse}{lost}): its "
                        "parity gaps are small because it decides nothing, not because it is fairer")
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
    return ReportDiff(metrics=tuple(metrics), findings=tuple(findings), tolerance=tolerance,
                      warnings=tuple(warnings))


def _rules(report):
    from audit.pipeline._policy import Rule

    for r in (report.metadata.get("config") or {}).get("policy", []):
        yield Rule.from_dict(r)
