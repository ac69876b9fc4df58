"""Recourse: how much a denied row must change to get the favourable decision, and whether that
burden falls harder on some groups. `evaluate(model, data)` is the audit entry point; it uses
`audit.explain.counterfactuals` for the search."""

from audit.recourse._evaluate import evaluate
from audit.recourse._report import RecourseAttribute, RecourseGroup, RecourseReport

__all__ = ["RecourseAttribute", "RecourseGroup", "RecourseReport", "evaluate"]
