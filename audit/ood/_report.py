"""`OodReport`: how well each detector separates each shift from the test rows, and selective prediction."""

from __future__ import annotations

import dataclasses

import numpy as np

from audit.results import Finding, MetricSpec, Provenance, Result


@dataclasses.dataclass(frozen=True, eq=False)
class Separation(Result):
    """One detector on one shift: AUROC (outliers positive), its interval, FPR at 95% TPR."""

    detector: str
    shift: str
    auroc: float
    low: float
    high: float
    fpr95: float


@dataclasses.dataclass(frozen=True, eq=False)
class Abstention(Result):
    """Selective prediction with one detector's score on the test rows: risk-coverage curve, AURC,
    and per sensitive group the share rejected when the overall coverage is `coverage`."""

    detector: str
    coverage_grid: np.ndarray
    risk: np.ndarray
    aurc: float
    attribute_rejection: dict[str, dict[str, float]]
    attribute_sizes: dict[str, dict[str, int]]


@dataclasses.dataclass(frozen=True, eq=False)
class OodReport(Result):
    """Does the model know what it does not know? Detectors fitted on training rows, scored on `n`
    test rows (inliers) and on shifted copies of them (outliers, made by `audit.ood` itself)."""

    SCHEMA = "audit.ood/1"
    METRICS = (
        MetricSpec("auroc:<detector>@<shift>", "higher", "AUROC of <detector> on <shift>",
                   "Probability that a shifted input scores as more unusual than a test input (0.5: no separation)."),
        MetricSpec("fpr95:<detector>@<shift>", "lower", "FPR at 95% TPR of <detector> on <shift>",
                   "Share of test inputs flagged when the threshold flags 95% of the shifted inputs."),
        MetricSpec("best_auroc@<shift>", "higher", "Best detector's AUROC on <shift>",
                   "AUROC of the detector that separates this shift best."),
        MetricSpec("min_best_auroc", "higher", "Hardest shift: best AUROC",
                   "Over all shifts, the lowest best-detector AUROC: the shift the model is most silently wrong on."),
        MetricSpec("aurc:<detector>", "lower", "Area under the risk-coverage curve, <detector>",
                   "Mean error rate of the kept test rows over all coverages when abstaining on <detector>'s score."),
        MetricSpec("ece:<method>", "lower", "Calibration error, <method>",
                   "Expected calibration error (15 bins, top label) of the mean prediction of <method> "
                   "(model: the audited model alone) on the inlier test rows."),
        MetricSpec("rejection_gap:<attribute>", "lower", "Abstention gap across <attribute> groups",
                   "At the report's coverage with the MSP score, the largest minus the smallest rejection rate "
                   "among groups large enough to judge."),
    )

    detectors: tuple[str, ...]
    shifts: tuple[str, ...]
    features: str
    n_inliers: int
    separations: tuple[Separation, ...]
    inlier_scores: dict[str, np.ndarray]
    outlier_scores: dict[str, dict[str, np.ndarray]]
    abstention: tuple[Abstention, ...]
    coverage: float
    min_group_size: int
    findings: tuple[Finding, ...]
    provenance: Provenance
    calibration: dict[str, float] = dataclasses.field(default_factory=dict)

    def separation(self, detector: str, shift: str) -> Separation:
        return next(s for s in self.separations if s.detector == detector and s.shift == shift)

    def best(self, shift: str) -> Separation:
        return max((s for s in self.separations if s.shift == shift), key=lambda s: s.auroc)

    def metrics(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for s in self.separations:
            out[f"auroc:{s.detector}@{s.shift}"] = s.auroc
            out[f"fpr95:{s.detector}@{s.shift}"] = s.fpr95
        for shift in self.shifts:
            out[f"best_auroc@{shift}"] = self.best(shift).auroc
        if self.shifts:
            out["min_best_auroc"] = min(self.best(shift).auroc for shift in self.shifts)
        out.update({f"ece:{m}": v for m, v in self.calibration.items()})
        for a in self.abstention:
            out[f"aurc:{a.detector}"] = a.aurc
            if a.detector == "msp":
                for attribute, rates in a.attribute_rejection.items():
                    judged = [r for g, r in rates.items() if a.attribute_sizes[attribute][g] >= self.min_group_size]
                    if len(judged) >= 2:
                        out[f"rejection_gap:{attribute}"] = float(max(judged) - min(judged))
        return out
