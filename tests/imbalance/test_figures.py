"""Imbalance figures: pure Figure objects drawn from results alone."""

from __future__ import annotations

import json

import pytest
from matplotlib.figure import Figure

from audit.imbalance import ImbalanceReport, MitigationComparison, evaluate
from audit.render.figures import imbalance as figs
from audit.results import Provenance, to_jsonable


def test_imbalance_figures_draw_from_the_result(credit_model, credit_small):
    report = ImbalanceReport.from_dict(json.loads(json.dumps(to_jsonable(evaluate(credit_model, credit_small).to_dict()))))
    assert len(figs.class_distribution(report).axes[0].patches) == 4
    cm = figs.confusion_matrix(report)
    assert len(cm.axes[0].texts) == 4
    curves = figs.pr_roc_curves(report)
    assert len(curves.axes) == 2 and len(curves.axes[1].get_legend().get_texts()) == 3
    assert "ECE" in figs.reliability_diagram(report).axes[0].get_title()
    assert [c for c, _ in figs.report_figures(report)][2].startswith("Precision-recall")


def test_multiclass_has_no_threshold_curves(digits_cnn, digits):
    report = evaluate(digits_cnn, digits)
    with pytest.raises(ValueError, match="binary"):
        figs.pr_roc_curves(report)
    assert len(figs.report_figures(report)) == 3


def test_mitigation_bars():
    values = {m: {"accuracy": 0.9, "balanced_accuracy": 0.8, "macro_f1": 0.7, "minority_recall": r,
                  "minority_precision": 0.5, "minority_pr_auc": 0.6, "train_rows": 10.0}
              for m, r in (("none", 0.4), ("smote", 0.8))}
    result = MitigationComparison(methods=("none", "smote"), minority="yes", values=values, findings=(),
                                  provenance=Provenance(method="test"))
    fig = figs.mitigation_bars(result)
    assert isinstance(fig, Figure) and len(fig.axes[0].patches) == 8
