"""Fairness: group metrics with bootstrap intervals, disparities, proxies and mitigations.

`evaluate(model, data)` is the audit entry point; `assess(y_true, y_pred, groups)` works on
arrays; `mitigate(model, data, attribute=...)` retrains with reweighing and fits per-group
thresholds, reporting before/after numbers. `demographic_parity_difference(y_true, y_pred, *,
sensitive_features=...)` and its siblings take fairlearn's call shape and give its numbers.
"""

from audit.fairness._assess import assess
from audit.fairness._disparity import DISPARITIES, Disparity, Gap
from audit.fairness._evaluate import evaluate
from audit.fairness._metrics import (by_group, demographic_parity_difference, demographic_parity_ratio,
                                     equal_opportunity_difference, equal_opportunity_ratio,
                                     equalized_odds_difference, equalized_odds_ratio)
from audit.data._groups import Grouping, intersect, make_grouping
from audit.fairness._mitigate import FairnessMitigation, MitigationArm, mitigate, reweighing_weights
from audit.fairness._stream import FairnessSink, evaluate_stream
from audit.fairness._report import AttributeResult, FairnessReport, GroupTable, ProxyResult

__all__ = ["AttributeResult", "DISPARITIES", "Disparity", "FairnessMitigation", "FairnessReport", "FairnessSink",
           "Gap", "GroupTable", "Grouping", "MitigationArm", "ProxyResult", "assess", "evaluate", "evaluate_stream",
           "intersect",
           "make_grouping", "mitigate", "reweighing_weights",
           # fairlearn's call shape: f(y_true, y_pred, *, sensitive_features, method, sample_weight, pos_label)
           "by_group", "demographic_parity_difference", "demographic_parity_ratio", "equal_opportunity_difference",
           "equal_opportunity_ratio", "equalized_odds_difference", "equalized_odds_ratio"]
