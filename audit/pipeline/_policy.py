"""Policy rules: thresholds on named metrics, turned into pass / warn / fail findings."""

from __future__ import annotations

import dataclasses
import difflib
import math
from typing import Any, Mapping

from audit.errors import AuditInputError
from audit.pipeline._meaning import spec_of
from audit.results import Finding

def meaning(metric: str) -> str:
    """One sentence saying what "<section>.<metric>" is, from its analyzer's declared METRICS."""
    spec = spec_of(metric)
    if spec is None:
        return f"The audit metric {metric.split('.', 1)[-1]} (its analyzer declares no meaning for it)."
    return f"{spec.title_for(metric.split('.', 1)[1])}: {spec.meaning}"


@dataclasses.dataclass(frozen=True)
class Rule:
    """`metric` (as "section.name") must be >= `min` and/or <= `max`; breaking it is `severity`."""

    metric: str
    min: float | None = None
    max: float | None = None
    severity: str = "fail"

    @classmethod
    def from_dict(cls, d: Any, *, where: str = "policy rule") -> "Rule":
        if not isinstance(d, Mapping):
            raise AuditInputError(f"{where} must be a mapping like {{metric: robustness.robust_accuracy@0.1, min: 0.5}}.")
        unknown = sorted(set(d) - {"metric", "min", "max", "severity"})
        if unknown:
            raise AuditInputError(f"{where} has unknown key(s) {unknown}; allowed: metric, min, max, severity.")
        metric = d.get("metric")
        if not isinstance(metric, str) or "." not in metric:
            raise AuditInputError(f"{where}: 'metric' must name a metric as 'section.name', e.g. "
                                  "'fairness.equalized_odds_difference:sex'.")
        bounds = {}
        for key in ("min", "max"):
            value = d.get(key)
            if value is not None:
                if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                    raise AuditInputError(f"{where}: '{key}' must be a finite number, got {value!r}.")
                bounds[key] = float(value)
        if not bounds:
            raise AuditInputError(f"{where}: give 'min' and/or 'max' for {metric!r}.")
        if "min" in bounds and "max" in bounds and bounds["min"] > bounds["max"]:
            raise AuditInputError(f"{where}: min {bounds['min']} is above max {bounds['max']}; no value can pass.")
        severity = d.get("severity", "fail")
        if severity not in ("fail", "warn"):
            raise AuditInputError(f"{where}: 'severity' must be 'fail' or 'warn', got {severity!r}.")
        return cls(metric=metric, severity=severity, **bounds)

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in dataclasses.asdict(self).items() if v is not None}

    def evaluate(self, metrics: Mapping[str, float]) -> Finding:
        """One finding: pass if the metric meets the bounds, else `severity`."""
        bounds = " and ".join(f"{op} {v:g}" for op, v in ((">=", self.min), ("<=", self.max)) if v is not None)
        rule_id = f"policy:{self.metric}"
        if self.metric not in metrics or metrics[self.metric] is None or not math.isfinite(metrics[self.metric]):
            close = difflib.get_close_matches(self.metric, list(metrics), n=3)
            hint = f" Did you mean {', '.join(close)}?" if close else ""
            every = metrics.get(f"{self.metric}:all_groups")
            if every is not None:  # a disparity with fewer than two groups large enough to judge
                return Finding(id=rule_id, status=self.severity, title=f"{self.metric} cannot be judged",
                               message=f"The policy asks for {self.metric} {bounds}, but fewer than two groups "
                                       "are large enough to judge (min_group_size / min_count); over every "
                                       f"group, however small, it is {every:.4g} ({self.metric}:all_groups).",
                               metric=self.metric, threshold=self.min if self.min is not None else self.max)
            return Finding(id=rule_id, status=self.severity, title=f"{self.metric} was not measured",
                           message=f"The policy asks for {self.metric} {bounds}, but the audit produced no "
                                   f"such metric (is its analyzer enabled?).{hint}",
                           metric=self.metric, threshold=self.min if self.min is not None else self.max)
        value = float(metrics[self.metric])
        ok = (self.min is None or value >= self.min) and (self.max is None or value <= self.max)
        threshold = self.min if self.min is not None else self.max
        return Finding(id=rule_id, status="pass" if ok else self.severity,
                       title=f"{self.metric} = {value:.4g} ({'meets' if ok else 'breaks'} {bounds})",
                       message=f"{meaning(self.metric)} The policy requires {bounds}.",
                       metric=self.metric, value=value, threshold=threshold)
