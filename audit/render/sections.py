"""Which figures each report section shows, for analyzers whose figure module has no such list."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from audit.render.figures import interactions as interaction_figures
from audit.render.figures import robustness as rfig
from audit.render.figures import saliency as xfig
from audit.render.figures import shap as shapfig
from audit.render.figures import surrogate as surrogate_figures


def robustness_figures(report) -> list[tuple[str, Figure]]:
    """Curves per attack, per class and per group; minimal perturbations; adversarial examples."""
    figures = [("Robust accuracy against the perturbation budget, per attack (bold: the worst case "
                "over attacks; dotted: random noise of the same norm).",
                rfig.robust_accuracy_curves(report, by="attack")),
               ("Robust accuracy per true class.", rfig.robust_accuracy_curves(report, by="class"))]
    for attribute in report.attributes:
        figures.append((f"Robust accuracy per {attribute} group: is one group easier to fool?",
                        rfig.robust_accuracy_curves(report, by="group", attribute=attribute)))
    if report.min_found.any() or np.isfinite(report.cw_distance).any():
        figures.append(("Distance from each example to its nearest adversarial example found (PGD bisection"
                        + (", and C&W L2 as an outline" if report.cw_distance.size else "") + ").",
                        rfig.min_perturbation_histogram(report)))
    if report.examples:
        figures.append(("Adversarial examples: original, perturbation, adversarial, with both predictions.",
                        rfig.adversarial_examples(report)))
    return figures


def explain_figures(report) -> list[tuple[str, Figure]]:
    """Global importance first, then per-example explanations, then how far to trust them."""
    figures = []
    if report.shap is not None:
        if report.kind == "tabular":
            figures.append(("Global importance: mean |SHAP value| per raw feature.", shapfig.bar(report.shap)))
            figures.append(("SHAP values of the explained examples: each dot is one example; colour is the "
                            "feature's value.", shapfig.beeswarm(report.shap)))
            for i in range(min(2, len(report.rows))):
                figures.append((f"Why example {int(report.rows[i])} of the test split was scored as it was "
                                "(SHAP waterfall from the average prediction).", shapfig.waterfall(report.shap, i)))
    if report.permutation is not None:
        figures.append(("Permutation importance with intervals: how much the loss grows when a feature is "
                        "shuffled.", xfig.permutation_importance(report.permutation)))
    if report.kind == "image" and report.attributions:
        figures.append(("Saliency maps per method for the explained examples (red: evidence for the "
                        "explained class, blue: against).", xfig.method_grid(report)))
    if "lime" in report.attributions and report.kind == "tabular":
        figures.append(("LIME's local weights for the first explained example.",
                        xfig.lime_weights(report.attributions["lime"],
                                          shown=report.display_rows[0] if report.display_rows else None)))
    if report.curves:
        figures.append(("Faithfulness: deleting (left) or inserting (right) the most important features first "
                        "should move the output fastest; a random order is dashed.", xfig.faithfulness_curves(report)))
    if len(report.agreement) > 0:
        figures.append(("Rank agreement between methods (Spearman): low values mean the explanations disagree.",
                        xfig.agreement_matrix(report)))
    if report.interactions is not None:
        figures += interaction_figures.report_figures(report.interactions)
    if report.surrogate is not None:
        figures += surrogate_figures.report_figures(report.surrogate)
    return figures
