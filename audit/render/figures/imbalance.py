"""Imbalance figures from an `ImbalanceReport` / `MitigationComparison`: class distribution,
confusion matrix, PR and ROC curves with the chosen thresholds, reliability diagram, and
mitigation side-by-side bars.

Pure functions drawn with matplotlib's Figure API (no pyplot state, no show()); they read the
result only and never call the model.
"""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

_POINT_STYLE = {"default": ("s", "#2c3e50"), "f1_optimal": ("o", "#27ae60"), "cost_weighted": ("^", "#c0392b")}


def class_distribution(report) -> Figure:
    """Class counts in the training rows and the audited rows, with the imbalance ratio."""
    fig = Figure(figsize=(max(4.5, 0.6 * len(report.class_names) + 2), 3.2))
    ax = fig.subplots()
    x = np.arange(len(report.class_names))
    ax.bar(x - 0.2, report.train_counts, 0.4, label="train")
    ax.bar(x + 0.2, report.counts, 0.4, label=report.split)
    ax.set_xticks(x, report.class_names, fontsize=8)
    ax.set_ylabel("rows")
    ax.set_title(f"Class distribution (imbalance ratio {report.imbalance_ratio:.1f}:1)")
    ax.legend(frameon=False, fontsize=8)
    ax.spines[["top", "right"]].set_visible(False)
    fig.tight_layout()
    return fig


def confusion_matrix(report, *, normalize: bool = True) -> Figure:
    """Confusion matrix; with `normalize` each true-class row sums to 1 (recall on the diagonal)."""
    cm = report.confusion.astype(np.float64)
    shown = cm / np.maximum(cm.sum(1, keepdims=True), 1) if normalize else cm
    k = len(report.class_names)
    fig = Figure(figsize=(1.2 + 0.55 * k + 1.5, 1.2 + 0.55 * k + 1))
    ax = fig.subplots()
    ax.imshow(shown, cmap="Blues", vmin=0, vmax=1 if normalize else None)
    for (i, j), v in np.ndenumerate(shown):
        ax.text(j, i, f"{v:.2f}" if normalize else f"{int(v)}", ha="center", va="center", fontsize=7,
                color="white" if v > (0.5 if normalize else shown.max() / 2) else "black")
    ax.set_xticks(range(k), report.class_names, fontsize=8)
    ax.set_yticks(range(k), report.class_names, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title("Confusion matrix" + (" (row-normalised)" if normalize else ""))
    fig.tight_layout()
    return fig


def pr_roc_curves(report) -> Figure:
    """Precision-recall and ROC curves (binary models) with the default, F1-optimal and
    cost-weighted operating points marked."""
    th = report.thresholds
    if th is None:
        raise ValueError("PR/ROC threshold curves need a binary model's report.")
    fig = Figure(figsize=(9.0, 3.8))
    pr, roc = fig.subplots(1, 2)
    pr.plot(th.recall, th.precision, color="0.2")
    base = report.counts[1] / report.counts.sum()
    pr.axhline(base, color="0.7", ls=":", lw=0.8)
    roc.plot(th.fpr, th.tpr, color="0.2")
    roc.plot([0, 1], [0, 1], color="0.7", ls=":", lw=0.8)
    for p in th.points:
        marker, color = _POINT_STYLE.get(p.name, ("o", "k"))
        label = f"{p.name} (t={p.threshold:.2f})"
        pr.plot([p.recall], [p.precision], marker, color=color, label=label)
        roc.plot([p.false_positive_rate], [p.recall], marker, color=color, label=label)
    pr.set(xlabel="recall", ylabel="precision", xlim=(0, 1.01), ylim=(0, 1.01),
           title=f"Precision-recall ({th.positive_class!r}; PR-AUC {report.per_class['pr_auc'][1]:.3f})")
    roc.set(xlabel="false positive rate", ylabel="true positive rate", xlim=(0, 1.01), ylim=(0, 1.01),
            title=f"ROC (AUC {report.per_class['roc_auc'][1]:.3f})")
    roc.legend(fontsize=7, frameon=False, loc="lower right", title=f"chosen on {th.chosen_on}",
               title_fontsize=7)
    for ax in (pr, roc):
        ax.title.set_fontsize(9)
        ax.spines[["top", "right"]].set_visible(False)
    fig.tight_layout()
    return fig


def reliability_diagram(report) -> Figure:
    """Accuracy against confidence per bin (top-label), bin counts below, ECE in the title."""
    rel = report.reliability
    centers = (rel.edges[:-1] + rel.edges[1:]) / 2
    width = np.diff(rel.edges)
    fig = Figure(figsize=(4.6, 5.0))
    top, bottom = fig.subplots(2, 1, height_ratios=(3, 1), sharex=True)
    filled = rel.counts > 0
    top.bar(centers[filled], rel.accuracy[filled], width[filled], color="#2980b9", edgecolor="white",
            label="accuracy")
    top.plot([0, 1], [0, 1], color="0.4", ls="--", lw=0.8, label="perfect calibration")
    top.plot(rel.confidence[filled], rel.accuracy[filled], "o", color="#c0392b", ms=3, label="bin mean")
    top.set(ylabel="accuracy", ylim=(0, 1),
            title=f"Reliability (ECE {rel.ece:.3f}, Brier {report.summary['brier']:.3f})")
    top.legend(fontsize=7, frameon=False, loc="upper left")
    bottom.bar(centers, rel.counts, width, color="0.6", edgecolor="white")
    bottom.set(xlabel="confidence", ylabel="rows", xlim=(0, 1))
    for ax in (top, bottom):
        ax.spines[["top", "right"]].set_visible(False)
    fig.tight_layout()
    return fig


def mitigation_bars(result, *, columns=("minority_recall", "minority_pr_auc", "balanced_accuracy", "accuracy")) -> Figure:
    """Each imbalance mitigation's minority recall, PR-AUC and accuracy side by side."""
    fig = Figure(figsize=(7.5, 3.6))
    ax = fig.subplots()
    x = np.arange(len(result.methods))
    width = 0.8 / len(columns)
    for k, c in enumerate(columns):
        ax.bar(x + (k - (len(columns) - 1) / 2) * width, [result.values[m][c] for m in result.methods], width,
               label=c.replace("_", " "))
    ax.set_xticks(x, result.methods, fontsize=8)
    ax.set_ylim(0, 1.05)
    ax.legend(fontsize=7, frameon=False, ncol=len(columns), loc="upper center", bbox_to_anchor=(0.5, -0.12))
    ax.set_title(f"Imbalance mitigations (minority class {result.minority!r})")
    ax.spines[["top", "right"]].set_visible(False)
    fig.tight_layout()
    return fig


def report_figures(report) -> list[tuple[str, Figure]]:
    """(caption, Figure) pairs for the HTML report's imbalance section."""
    out = [("Class distribution", class_distribution(report)), ("Confusion matrix", confusion_matrix(report))]
    if report.thresholds is not None:
        out.append(("Precision-recall and ROC curves with the chosen thresholds", pr_roc_curves(report)))
    out.append(("Reliability diagram", reliability_diagram(report)))
    return out


def mitigation_figures(result) -> list[tuple[str, Figure]]:
    """(caption, Figure) pairs for the imbalance-mitigation section."""
    return [("Imbalance mitigations side by side", mitigation_bars(result))]
