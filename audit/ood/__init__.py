"""Does the model know what it does not know? Out-of-distribution scores and selective prediction.

`evaluate(model, data, ...)` -> `OodReport`; `drift(model, data, current=...)` -> `DriftReport`;
`detect_adversarial(model, data)` -> `AdversarialDetectionReport` (with the adaptive attack's numbers); the scores on their own: `msp_score`, `energy_score`,
`Mahalanobis`, `KNN`, `scorer` (live scores that compare with an audit's), `feature_function` and `jax_features` (penultimate features of any model, or the one its config names), `auroc`, `fpr_at_tpr`.
"""

from audit.ood._adversarial import ADVERSARIAL_DETECTORS, AdversarialDetectionReport, DetectionResult, detect_adversarial
from audit.ood._drift import ColumnDrift, DriftReport
from audit.ood._drift import evaluate as drift
from audit.ood._evaluate import LIVE_DETECTORS, evaluate, scorer
from audit.ood._features import feature_function, jax_features
from audit.ood._report import Abstention, OodReport, Separation
from audit.ood._scores import DETECTORS, KNN, Mahalanobis, energy_score, msp_score
from audit.ood._shifts import IMAGE_SHIFTS, image_shifts, tabular_shifts
from audit.ood._stats import auroc, fpr_at_tpr, risk_coverage

__all__ = ["ADVERSARIAL_DETECTORS", "AdversarialDetectionReport", "DetectionResult", "detect_adversarial", "Abstention", "ColumnDrift", "DriftReport", "drift", "DETECTORS", "IMAGE_SHIFTS", "KNN", "Mahalanobis", "OodReport", "Separation", "auroc",
           "energy_score", "evaluate", "feature_function", "fpr_at_tpr", "jax_features", "image_shifts", "msp_score",
           "risk_coverage", "scorer", "tabular_shifts", "LIVE_DETECTORS"]
