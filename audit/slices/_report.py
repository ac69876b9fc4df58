"""`SliceReport`: cohorts (conjunctions of raw-column conditions) where the model errs more than elsewhere."""

from __future__ import annotations

import dataclasses

import numpy as np

from audit.results import Finding, MetricSpec, Provenance, Result


@dataclasses.dataclass(frozen=True, eq=False)
class Cohort(Result):
    """One cohort of the split's rows and how the model does on it against the rest of the split.

    conditions: one raw-column condition each ("sector = retail", "income < 28000"), all of which
    hold; error with its Wilson interval (error_low, error_high); rest_error on the other rows;
    p_value: one-sided Fisher exact test (more errors than the rest); p_adjusted: corrected for
    every cohort tried; significant: p_adjusted below alpha and the error ratio at least min_ratio."""

    conditions: tuple[str, ...]
    size: int
    errors: int
    error: float
    error_low: float
    error_high: float
    rest_error: float
    error_ratio: float
    p_value: float
    p_adjusted: float
    significant: bool

    @property
    def name(self) -> str:
        return " and ".join(self.conditions)


@dataclasses.dataclass(frozen=True, eq=False)
class SliceReport(Result):
    """Result of `audit.slices.evaluate`.

    cohorts: the cohorts kept (every significant one, then the worst others, up to `max_cohorts`),
    ranked by p-value; n_tried: how many cohorts were tested (the family the correction is over);
    error: the model's error on the whole split (n_rows rows)."""

    SCHEMA = "audit.slices/1"
    METRICS = (
        MetricSpec("worst_error_ratio", "lower", "Worst cohort's error over the rest's",
                   "Error rate of the most significantly worse cohort (smallest corrected p-value), divided by "
                   "the error rate on the rest of the split (1 when no cohort is significantly worse)."),
        MetricSpec("worst_error", "lower", "Worst cohort's error",
                   "Error rate of the most significantly worse cohort (the split's error when there is none)."),
        MetricSpec("n_significant", "lower", "Significantly worse cohorts",
                   "Number of cohorts whose error is significantly above the rest's after the correction for "
                   "the number of cohorts tried."),
        MetricSpec("error", "lower", "Error on the split", "Share of the split's rows the model misclassifies."),
        MetricSpec("n_tried", "info", "Cohorts tried",
                   "Number of conjunctions of raw-column conditions large enough to be tested."),
    )

    split: str
    n_rows: int
    error: float
    columns: tuple[str, ...]
    n_tried: int
    alpha: float
    correction: str
    cohorts: tuple[Cohort, ...]
    findings: tuple[Finding, ...]
    provenance: Provenance

    @property
    def significant(self) -> tuple[Cohort, ...]:
        return tuple(c for c in self.cohorts if c.significant)

    def worst(self) -> Cohort | None:
        """The most surely worse cohort: the first significant one in rank (None when there is none)."""
        sig = self.significant
        return sig[0] if sig else None

    def metrics(self) -> dict[str, float]:
        worst = self.worst()
        return {"worst_error_ratio": float(worst.error_ratio) if worst else 1.0,
                "worst_error": float(worst.error) if worst else float(self.error),
                "n_significant": float(len(self.significant)),
                "error": float(self.error), "n_tried": float(self.n_tried)}

