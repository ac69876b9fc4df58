"""Policy rules: thresholds on named metrics, turned into pass / warn / fail findings."""

from __future__ import annotations

import dataclasses
import difflib
import math
from typing import Any, Mapping

from audit.errors import AuditInputError
from audit.results import Finding

# One sentence per metric family (the part of the name before ':' or '@'), for findings.
MEANINGS = {
    "accuracy": "share of test examples classified correctly",
    "clean_accuracy": "share of attacked test examples classified correctly before the attack",
    "robust_accuracy": "share of test examples still classified correctly under the strongest attack at this budget",
    "median_min_perturbation": "median distance from a test example to the nearest adversarial example",
    "robust_accuracy_gap": "difference in robust accuracy between the best and worst protected group",
    "demographic_parity_difference": "largest gap between groups in the rate of positive predictions",
    "demographic_parity_ratio": "smallest over largest group selection rate",
    "disparate_impact": "smallest over largest group selection rate (the four-fifths rule asks for >= 0.8)",
    "equalized_odds_difference": "largest gap between groups in true- or false-positive rate",
    "equal_opportunity_difference": "largest gap between groups in true-positive rate",
    "predictive_parity_difference": "largest gap between groups in precision",
    "calibration_gap": "largest gap between groups in calibration error",
    "min_class_recall": "recall of the class the model finds worst",
    "recall": "share of this class's examples the model finds",
    "balanced_accuracy": "mean recall over classes",
    "ece": "expected calibration error: how far confidences are from observed accuracy",
    "ig_completeness_error": "how far Integrated Gradients attributions miss summing to the output change",
    "pr_auc": "area under the precision-recall curve for this class",
    "sensitive_attribution_share": "share of the model's attribution that goes to the sensitive attribute itself",
    "attack_success_rate": "share of correctly classified examples that the attack flips",
    "certified_accuracy": "share of test examples provably classified correctly for every perturbation in the budget",
    "explanation_spearman": "rank correlation between explanations before and after an attack that keeps the label",
    "explanation_top_k": "overlap of the top features of explanations before and after an attack that keeps the label",
    "deletion_auc": "how fast the output falls when the most important features are deleted first (lower is more faithful)",
    "insertion_auc": "how fast the output rises when the most important features are inserted first (higher is more faithful)",
    "stability": "rank correlation of an explanation with itself under small input noise",
    "rank_agreement": "rank correlation between two explanation methods",
    "robust_accuracy_gain": "robust accuracy gained by adversarial training",
    "clean_accuracy_drop": "clean accuracy lost by adversarial training",
}


def meaning(metric: str) -> str:
    name = metric.split(".", 1)[-1]
    family = name.replace("@", ":").split(":")[0]
    return MEANINGS.get(family, f"the audit metric {name}")


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
            return Finding(id=rule_id, status=self.severity, title=f"{self.metric} was not measured",
                           message=f"The policy asks for {self.metric} {bounds}, but the audit produced no "
                                   f"such metric (is its analyzer enabled?).{hint}",
                           metric=self.metric, threshold=self.min if self.min is not None else self.max)
        value = float(metrics[self.metric])
        ok = (self.min is None or value >= self.min) and (self.max is None or value <= self.max)
        threshold = self.min if self.min is not None else self.max
        return Finding(id=rule_id, status="pass" if ok else self.severity,
                       title=f"{self.metric} = {value:.4g} ({'meets' if ok else 'breaks'} {bounds})",
                       message=f"{meaning(self.metric).capitalize()}; the policy requires {bounds}.",
                       metric=self.metric, value=value, threshold=threshold)
