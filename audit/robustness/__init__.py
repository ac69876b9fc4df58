"""Adversarial robustness: attacks (FGSM, PGD, APGD, Square), minimal perturbations,
robust-accuracy evaluation with intervals, and sanity checks against gradient masking.

Attacks are pure functions `attack(apply_fn, params, x, y, *, eps, ..., key)` on a model's
apply function, usable inside `jit` (adversarial training); `evaluate(model, data)` runs
them over an eps grid and returns a `RobustnessReport`.
"""

from audit.robustness._apgd import apgd
from audit.robustness._domain import Domain, box_domain, domain_for
from audit.robustness._evaluate import default_eps, evaluate
from audit.robustness._minimal import minimal_perturbation
from audit.robustness._noise import noise
from audit.robustness._pgd import fgsm, pgd
from audit.robustness._registry import ATTACKS, AttackSpec
from audit.robustness._report import AdversarialExample, Curve, RobustnessReport, eps_name
from audit.robustness._square import square

__all__ = ["ATTACKS", "AdversarialExample", "AttackSpec", "Curve", "Domain", "RobustnessReport",
           "apgd", "box_domain", "default_eps", "domain_for", "eps_name", "evaluate", "fgsm",
           "minimal_perturbation", "noise", "pgd", "square"]
