"""Explanations: SHAP (exact, kernel, expected gradients, shap-library backend), LIME (lime
package and native JAX), gradient saliency (gradient, Gradient x Input, Integrated Gradients,
SmoothGrad), permutation importance, explanation quality and `analyze()` for JAX models."""

from audit.explain._background import background
from audit.explain._counterfactuals import CounterfactualResult, counterfactuals
from audit.explain._players import Players
from audit.explain._attribution import Attribution
from audit.explain._importance import PermutationImportance, permutation_importance
from audit.explain._lime import lime_image, lime_tabular
from audit.explain._lime_native import lime_native
from audit.explain._gradcam import grad_cam
from audit.explain._lrp import deeplift, lrp
from audit.explain._quality import (Agreement, Curves, Stability, faithfulness_curves, rank_agreement,
                                    spearman, stability, top_k_overlap)
from audit.explain._analyze import analyze
from audit.explain._report import ExplanationReport
from audit.explain._saliency import gradient, gradient_x_input, integrated_gradients, smoothgrad
from audit.explain._shap import ShapResult, compute_shap, global_importance, shap_values
from audit.explain._shap_interactions import InteractionResult, shap_interactions
from audit.explain._surrogate import SurrogateResult, surrogate_tree

__all__ = ["Players", "ShapResult", "background", "compute_shap", "global_importance", "shap_values",
           # LIME, saliency, quality (part B)
           "Agreement", "Attribution", "Curves", "ExplanationReport", "PermutationImportance", "Stability",
           "analyze", "faithfulness_curves", "gradient", "gradient_x_input", "integrated_gradients",
           "lime_image", "lime_native", "lime_tabular", "permutation_importance", "rank_agreement",
           "smoothgrad", "spearman", "stability", "top_k_overlap",
           # more ways to ask why (#18)
           "InteractionResult", "SurrogateResult", "deeplift", "grad_cam", "lrp", "shap_interactions", "surrogate_tree",
           # counterfactuals (#16)
           "CounterfactualResult", "counterfactuals"]
