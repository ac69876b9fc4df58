"""Robustness figures: pure functions of a report that draw every curve and example."""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib.figure import Figure

from audit.render.figures import robustness as figs


@pytest.fixture(scope="module")
def small_reports(credit_report, digits_report):
    return credit_report, digits_report


def test_curves_per_attack_class_and_group(small_reports):
    credit, digits = small_reports
    fig = figs.robust_accuracy_curves(credit)
    assert isinstance(fig, Figure)
    labels = [line.get_label() for line in fig.axes[0].get_lines()]
    assert {"fgsm", "pgd", "apgd", "square", "ensemble", "gaussian_noise", "uniform_noise"} <= set(labels)
    ens = next(line for line in fig.axes[0].get_lines() if line.get_label() == "ensemble")
    np.testing.assert_allclose(ens.get_ydata(), credit.curve("ensemble").accuracy)
    groups = figs.robust_accuracy_curves(credit, by="group", attribute="sex")
    assert len([line for line in groups.axes[0].get_lines() if "n=" in line.get_label()]) == 2
    classes = figs.robust_accuracy_curves(digits, by="class")
    assert len([line for line in classes.axes[0].get_lines() if "n=" in line.get_label()]) == 10
    with pytest.raises(ValueError, match="no sensitive attributes"):
        figs.robust_accuracy_curves(digits, by="group")


def test_examples_and_histogram(small_reports):
    credit, digits = small_reports
    img = figs.adversarial_examples(digits, max_examples=2)
    assert len(img.axes) == 3 * min(2, len(digits.examples))
    tab = figs.adversarial_examples(credit, max_examples=2)
    assert len(tab.axes) == min(2, len(credit.examples))
    assert len(tab.axes[0].patches) == min(8, np.count_nonzero(credit.examples[0].perturbation))
    hist = figs.min_perturbation_histogram(credit)
    assert isinstance(hist, Figure) and hist.axes[0].patches
