"""Adversarial robustness: attacks (FGSM, PGD, APGD, Square), minimal perturbations,
robust-accuracy evaluation with intervals, and sanity checks against gradient masking.
Stronger and wider: C&W L2, AutoAttack (APGD-CE, APGD-T, FAB-T, Square), transfer attacks from a
trained surrogate, and accuracy under common corruptions.

Attacks are pure functions `attack(apply_fn, params, x, y, *, eps, ..., key)` on a model's
apply function, usable inside `jit` (adversarial training); `evaluate(model, data)` runs
them over an eps grid and returns a `RobustnessReport`. Robustness II: `certify` (IBP and
randomized-smoothing certificates next to the attacks), `AdversarialTraining` recipes for
`audit.models.train(..., adversarial=...)` and the before/after audit `adversarial_training`.
"""

from audit.robustness._adversarial_training import (AdversarialTraining, AdversarialTrainingReport,
                                                    adversarial_training)
from audit.robustness._apgd import apgd
from audit.robustness._autoattack import AutoAttackInfo, autoattack
from audit.robustness._corruption_report import CorruptionReport, GroupCorruption, corruptions
from audit.robustness._corruptions import IMAGE_CORRUPTIONS, TABULAR_CORRUPTIONS, Corrupter
from audit.robustness._cw import cw_l2
from audit.robustness._certify import CertificationReport, attack_smoothed, certify
from audit.robustness._domain import Domain, box_domain, domain_for
from audit.robustness._evaluate import default_eps, evaluate
from audit.robustness._explanation_stability import ExplanationStabilityReport, explanation_stability
from audit.robustness._ibp import ibp_bounds, ibp_margins, interval_function, layer_ops
from audit.robustness._minimal import minimal_perturbation
from audit.robustness._noise import noise
from audit.robustness._pgd import fgsm, pgd
from audit.robustness._registry import ATTACKS, AttackSpec
from audit.robustness._report import AdversarialExample, Curve, RobustnessReport, eps_name
from audit.robustness._smoothing import SmoothingCertificate, certify_smoothed, class_counts, predict_smoothed
from audit.robustness._square import square
from audit.robustness._transfer import TRANSFER_ATTACKS, TransferReport, mifgsm, transfer

__all__ = ["ATTACKS", "CorruptionReport", "Corrupter", "GroupCorruption", "IMAGE_CORRUPTIONS", "TABULAR_CORRUPTIONS", "TRANSFER_ATTACKS", "TransferReport", "AdversarialExample", "AdversarialTraining", "AdversarialTrainingReport", "AttackSpec", "AutoAttackInfo",
           "CertificationReport", "Curve", "Domain", "ExplanationStabilityReport", "RobustnessReport", "SmoothingCertificate",
           "adversarial_training", "apgd", "autoattack", "cw_l2", "attack_smoothed", "box_domain", "certify", "certify_smoothed",
           "class_counts", "corruptions", "default_eps", "domain_for", "eps_name", "evaluate", "explanation_stability", "fgsm", "ibp_bounds",
           "ibp_margins", "interval_function", "layer_ops", "mifgsm", "minimal_perturbation", "noise", "pgd",
           "predict_smoothed", "square", "transfer"]
