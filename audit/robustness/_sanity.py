"""Attack sanity checks: is the evaluation itself trustworthy?

A weak attack makes any model look robust; gradient masking (shattered, vanishing or noisy
gradients) is the usual cause. These checks follow Athalye, Carlini & Wagner, "Obfuscated
gradients give a false sense of security" (ICML 2018) and Carlini et al., "On evaluating
adversarial robustness" (2019). Each returns one `Finding`; a failed check is a warning that
the robust accuracies above are optimistic.
"""

from __future__ import annotations

import numpy as np

from audit.results import Finding

MASKING = "possible gradient masking: the robust accuracies are likely overestimates."


def _worst(values: np.ndarray) -> tuple[float, int]:
    j = int(np.nanargmax(values))
    return float(values[j]), j


def pgd_vs_fgsm(eps, pgd_acc, fgsm_acc, *, tol: float) -> Finding:
    """PGD (many steps) must be at least as strong as FGSM (one step) at every eps."""
    gap = np.asarray(pgd_acc) - np.asarray(fgsm_acc)
    worst, j = _worst(gap)
    ok = worst <= tol
    msg = (f"PGD is at least as strong as FGSM at every eps (largest excess {worst:+.3f})." if ok else
           f"PGD leaves {worst:.1%} more examples correct than FGSM at eps={eps[j]:g}: {MASKING}")
    return Finding("robustness.pgd_vs_fgsm", "pass" if ok else "warn", "PGD at least as strong as FGSM",
                   msg, metric="pgd_minus_fgsm_accuracy", value=worst, threshold=tol)


def more_iterations(eps: float, base_acc: float, strong_acc: float, *, tol: float,
                    converge_tol: float = 0.05) -> Finding:
    """Doubling steps and adding a restart never raises robust accuracy, and should barely
    lower it (else the attack had not converged)."""
    diff = float(strong_acc - base_acc)
    if diff > tol:
        status, msg = "warn", (f"PGD with more steps and restarts is weaker ({strong_acc:.3f} vs {base_acc:.3f} "
                               f"at eps={eps:g}): the loss surface is erratic, {MASKING}")
    elif diff < -converge_tol:
        status, msg = "warn", (f"PGD with more steps and restarts lowers robust accuracy from {base_acc:.3f} "
                               f"to {strong_acc:.3f} at eps={eps:g}: the attack has not converged; raise "
                               "`steps` / `restarts`, the reported robust accuracies are overestimates.")
    else:
        status, msg = "pass", (f"More steps and restarts change robust accuracy by {diff:+.3f} at eps={eps:g} "
                               "(converged, monotone).")
    return Finding("robustness.more_iterations", status, "More iterations never help the model", msg,
                   metric="stronger_pgd_minus_pgd_accuracy", value=diff, threshold=tol)


def large_eps(eps: float, acc: float, *, chance: float) -> Finding:
    """With eps as large as the domain allows, accuracy must fall to chance or below."""
    ok = acc <= chance
    msg = (f"At eps={eps:g} (the whole domain) PGD brings accuracy to {acc:.3f} (chance {chance:.3f})." if ok else
           f"Even at eps={eps:g}, the whole input domain, PGD leaves accuracy at {acc:.3f} (chance {chance:.3f}): "
           f"either the immutable inputs alone decide the prediction, or {MASKING}")
    return Finding("robustness.large_eps", "pass" if ok else "warn", "Unbounded attack reaches chance",
                   msg, metric="large_eps_accuracy", value=float(acc), threshold=float(chance))


def black_box_vs_white_box(eps, black_acc, white_acc, *, tol: float) -> Finding:
    """A gradient-free attack must not beat the gradient-based ones."""
    gap = np.asarray(white_acc) - np.asarray(black_acc)
    worst, j = _worst(gap)
    ok = worst <= tol
    msg = (f"The black-box Square attack is not stronger than the white-box attacks (largest excess {worst:+.3f})."
           if ok else f"The black-box Square attack fools {worst:.1%} more examples than the best white-box attack "
                      f"at eps={eps[j]:g}: gradients mislead the attacks, {MASKING}")
    return Finding("robustness.black_box_vs_white_box", "pass" if ok else "warn",
                   "Black-box attack not stronger than white-box", msg,
                   metric="white_minus_black_box_accuracy", value=worst, threshold=tol)


def noise_vs_attack(eps, noise_acc, attack_acc, *, tol: float) -> Finding:
    """Random noise of the same norm must be weaker than the attack."""
    gap = np.asarray(attack_acc) - np.asarray(noise_acc)
    worst, j = _worst(gap)
    ok = worst <= tol
    msg = (f"Random noise of equal norm is weaker than the attacks at every eps (largest excess {worst:+.3f})."
           if ok else f"Random noise of equal norm fools {worst:.1%} more examples than the attacks at "
                      f"eps={eps[j]:g}: {MASKING}")
    return Finding("robustness.noise_vs_attack", "pass" if ok else "warn", "Noise weaker than the attack", msg,
                   metric="attack_minus_noise_accuracy", value=worst, threshold=tol)


def gradients(bad_fraction: float, *, limit: float = 0.5) -> Finding:
    """Input gradients must be non-zero and finite on most inputs."""
    ok = bad_fraction <= limit
    msg = (f"Input gradients are zero or non-finite on {bad_fraction:.1%} of inputs." if ok else
           f"Input gradients are zero or non-finite on {bad_fraction:.1%} of inputs (quantised, saturated or "
           f"non-differentiable model): gradient attacks cannot work here, {MASKING}")
    return Finding("robustness.gradients", "pass" if ok else "warn", "Gradients are usable", msg,
                   metric="zero_or_nonfinite_gradient_fraction", value=float(bad_fraction), threshold=limit)


def censored(found_rate: float) -> Finding:
    """Most examples should have a minimal perturbation within the search range."""
    ok = found_rate >= 0.5
    msg = (f"PGD found an adversarial within the search range for {found_rate:.1%} of examples." if ok else
           f"PGD found an adversarial within the search range for only {found_rate:.1%} of examples, so "
           "the median minimal perturbation is a lower bound.")
    return Finding("robustness.min_perturbation_range", "pass" if ok else "warn", "Minimal perturbation found",
                   msg, metric="min_perturbation_found_rate", value=float(found_rate), threshold=0.5)
