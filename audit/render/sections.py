"""Which figures each report section shows, for analyzers whose figure module has no such list."""

from __future__ import annotations

from matplotlib.figure import Figure

from audit.render.figures import robustness as rfig


def robustness_figures(report) -> list[tuple[str, Figure]]:
    """Curves per attack, per class and per group; minimal perturbations; adversarial examples."""
    figures = [("Robust accuracy against the perturbation budget, per attack (bold: the worst case "
                "over attacks; dotted: random noise of the same norm).",
                rfig.robust_accuracy_curves(report, by="attack")),
               ("Robust accuracy per true class.", rfig.robust_accuracy_curves(report, by="class"))]
    for attribute in report.attributes:
        figures.append((f"Robust accuracy per {attribute} group: is one group easier to fool?",
                        rfig.robust_accuracy_curves(report, by="group", attribute=attribute)))
    if report.min_found.any():
        figures.append(("Distance from each example to its nearest adversarial example found.",
                        rfig.min_perturbation_histogram(report)))
    if report.examples:
        figures.append(("Adversarial examples: original, perturbation, adversarial, with both predictions.",
                        rfig.adversarial_examples(report)))
    return figures
