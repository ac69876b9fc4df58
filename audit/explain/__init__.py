"""Explanations: SHAP (exact, kernel, expected gradients, shap-library backend) for JAX models."""

from audit.explain._background import background
from audit.explain._players import Players
from audit.explain._shap import ShapResult, compute_shap, global_importance, shap_values

__all__ = ["Players", "ShapResult", "background", "compute_shap", "global_importance", "shap_values"]
