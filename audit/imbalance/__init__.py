"""Class imbalance: per-class metrics, thresholds, calibration and retrained mitigations.

`evaluate(model, data)` is the audit entry point; `compare_mitigations(model, data)` retrains
with class weights, over/under-sampling and SMOTE and puts minority recall and PR-AUC side by side.
"""

from audit.imbalance._calibration import Reliability, reliability
from audit.imbalance._compare import MitigationComparison, compare_mitigations, resample
from audit.imbalance._evaluate import class_metrics, evaluate
from audit.imbalance._report import ImbalanceReport
from audit.imbalance._stream import ImbalanceSink, evaluate_stream
from audit.imbalance._threshold import (OperatingPoint, ThresholdAnalysis, cost_threshold,
                                        f1_optimal_threshold)

__all__ = ["ImbalanceReport", "ImbalanceSink", "MitigationComparison", "OperatingPoint", "Reliability",
           "ThresholdAnalysis", "class_metrics", "compare_mitigations", "cost_threshold", "evaluate",
           "evaluate_stream", "f1_optimal_threshold", "reliability", "resample"]
