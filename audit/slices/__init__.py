"""Error analysis: cohorts of the data (conjunctions of raw-column conditions) where the model errs
significantly more than on the rest. `evaluate(model, data)` is the audit entry point."""

from audit.slices._evaluate import cohort_rows, evaluate, find_cohorts
from audit.slices._report import Cohort, SliceReport
from audit.intervals import wilson_interval

__all__ = ["Cohort", "SliceReport", "cohort_rows", "evaluate", "find_cohorts", "wilson_interval"]
