"""Missing data: where values are missing and for whom, whether missingness predicts the label, and
the model's robustness to missing values at prediction time (per scenario and imputation strategy,
multiple imputation pooled by Rubin's rules). `evaluate(model, data)` is the audit entry point;
`compare_strategies` retrains with each strategy; imputation itself lives in `audit.data` (the
`missing=` option of `from_pandas`)."""

from audit.missing._evaluate import evaluate, strategy_encodings, wilson
from audit.missing._report import (AttributeMissingness, ColumnImportance, ColumnProfile, Curve, FairnessGap,
                                   GroupPoint, GroupRate, MissingReport, RatePoint, StrategyCell,
                                   StrategyComparison)
from audit.missing._rubin import rubin
from audit.missing._strategies import compare_strategies

__all__ = ["AttributeMissingness", "ColumnImportance", "ColumnProfile", "Curve", "FairnessGap", "GroupPoint",
           "GroupRate", "MissingReport", "RatePoint", "StrategyCell", "StrategyComparison", "compare_strategies", "evaluate", "rubin",
           "strategy_encodings", "wilson"]
