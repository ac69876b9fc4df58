"""Missing data: where values are missing and for whom, whether missingness predicts the label, and
the model's robustness to missing values at prediction time. `evaluate(model, data)` is the audit
entry point; imputation itself lives in `audit.data` (the `missing=` option of `from_pandas`)."""

from audit.missing._evaluate import evaluate, wilson
from audit.missing._report import (AttributeMissingness, ColumnProfile, GroupPoint, GroupRate, MissingReport,
                                   RatePoint)

__all__ = ["AttributeMissingness", "ColumnProfile", "GroupPoint", "GroupRate", "MissingReport", "RatePoint",
           "evaluate", "wilson"]
