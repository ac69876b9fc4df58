"""Figures for local explanations: image heat-map overlays, LIME weight bars, deletion /
insertion curves, method agreement and permutation importance.

Pure functions drawn with matplotlib's Figure API (no pyplot state, no show()); they read
`Attribution`, `ExplanationReport` or `PermutationImportance` objects and never call the model.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from matplotlib.figure import Figure

POSITIVE, NEGATIVE = "#ff0051", "#008bfb"
DIVERGING = "RdBu_r"


def _gray(image: np.ndarray) -> np.ndarray:
    """(H, W, C) -> (H, W) in [0, 1] for display."""
    img = image.mean(axis=-1) if image.ndim == 3 else image
    lo, hi = float(img.min()), float(img.max())
    return (img - lo) / (hi - lo) if hi > lo else np.zeros_like(img)


def _heat(values: np.ndarray) -> np.ndarray:
    """(H, W, C) attributions -> (H, W), summed over channels."""
    return values.sum(axis=-1) if values.ndim == 3 else values


def _overlay(ax, image: np.ndarray, values: np.ndarray, *, alpha: float) -> None:
    heat = _heat(values)
    lim = float(np.abs(heat).max()) or 1.0
    ax.imshow(_gray(image), cmap="gray", interpolation="nearest")
    ax.imshow(heat, cmap=DIVERGING, vmin=-lim, vmax=lim, alpha=alpha, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])


def heatmap_overlay(attribution, *, examples: Sequence[int] | None = None, alpha: float = 0.6,
                    class_names: Sequence[str] = ()) -> Figure:
    """Each example's image next to its attribution map overlaid in red (for) / blue (against)."""
    if attribution.inputs is None or attribution.values.ndim != 4:
        raise ValueError("heatmap_overlay needs image attributions (n, H, W, C) that keep their inputs")
    idx = list(range(min(4, len(attribution)))) if examples is None else list(examples)
    fig = Figure(figsize=(4.2, 2.1 * len(idx)), layout="constrained")
    axes = fig.subplots(len(idx), 2, squeeze=False)
    for row, i in enumerate(idx):
        t = int(attribution.target[i])
        label = class_names[t] if t < len(class_names) else str(t)
        axes[row, 0].imshow(_gray(attribution.inputs[i]), cmap="gray", interpolation="nearest")
        axes[row, 0].set_xticks([])
        axes[row, 0].set_yticks([])
        axes[row, 0].set_title(f"example {i}", fontsize=9)
        _overlay(axes[row, 1], attribution.inputs[i], attribution.values[i], alpha=alpha)
        axes[row, 1].set_title(f"{attribution.method} -> {label}", fontsize=9)
    return fig


def method_grid(report, *, examples: Sequence[int] | None = None, alpha: float = 0.6) -> Figure:
    """Image reports: one row per example, one column per method (the input first)."""
    methods = [m for m, a in report.attributions.items() if a.values.ndim == 4]
    if not methods:
        raise ValueError("method_grid needs a report on images")
    first = report.attributions[methods[0]]
    inputs = first.inputs if first.inputs is not None else next(
        a.inputs for a in report.attributions.values() if a.inputs is not None)
    idx = list(range(min(4, len(report.rows)))) if examples is None else list(examples)
    fig = Figure(figsize=(1.7 * (len(methods) + 1), 1.8 * len(idx)), layout="constrained")
    axes = fig.subplots(len(idx), len(methods) + 1, squeeze=False)
    for row, i in enumerate(idx):
        t = int(report.target[i])
        wrong = " (misclassified)" if report.labels[i] != report.predictions[i] else ""
        axes[row, 0].imshow(_gray(inputs[i]), cmap="gray", interpolation="nearest")
        axes[row, 0].set_xticks([])
        axes[row, 0].set_yticks([])
        axes[row, 0].set_title(f"{report.class_names[t]}{wrong}", fontsize=8)
        for col, m in enumerate(methods, start=1):
            _overlay(axes[row, col], inputs[i], report.attributions[m].values[i], alpha=alpha)
            if row == 0:
                axes[row, col].set_title(m.replace("_", " "), fontsize=8)
    return fig


def lime_weights(attribution, *, example: int = 0, top: int = 10, shown=None) -> Figure:
    """Bars of one example's attributions per feature (LIME's contributions for tabular data,
    superpixel weights for images), largest magnitude on top. `shown`: the example's raw values
    as text (ExplanationReport.display_rows), labelled "feature = value"."""
    if attribution.level == "raw" or attribution.values.ndim == 2:
        values = attribution.flat[example]
        names = list(attribution.feature_names) or [f"x{j}" for j in range(len(values))]
        if shown is not None and len(shown) == len(names):
            names = [f"{n} = {v}" for n, v in zip(names, shown)]
    else:
        weights = np.asarray(attribution.extras.get("segment_weights", attribution.flat)[example])
        values = weights[np.isfinite(weights)]
        names = [f"superpixel {j}" for j in range(len(values))]
    order = np.argsort(-np.abs(values), kind="stable")[:top][::-1]
    fig = Figure(figsize=(6, 0.35 * len(order) + 1.2), layout="constrained")
    ax = fig.subplots()
    ax.barh(range(len(order)), values[order], color=[POSITIVE if v > 0 else NEGATIVE for v in values[order]])
    ax.set_yticks(range(len(order)), [names[j] for j in order])
    ax.axvline(0, color="#999", lw=0.8)
    title = f"{attribution.method}: example {example}"
    if "score" in attribution.extras:
        title += f" (local R^2 {float(attribution.extras['score'][example]):.2f})"
    ax.set_title(title, fontsize=10)
    ax.set_xlabel("contribution to the explained class")
    return fig


def faithfulness_curves(report) -> Figure:
    """Mean deletion (left) and insertion (right) curves per method, a random order dashed."""
    fig = Figure(figsize=(9, 3.4), layout="constrained")
    ax_del, ax_ins = fig.subplots(1, 2)
    last = None
    for m, c in report.curves.items():
        ax_del.plot(c.fractions, c.deletion.mean(axis=0), label=f"{m} ({c.deletion_auc.mean():.3f})")
        ax_ins.plot(c.fractions, c.insertion.mean(axis=0), label=f"{m} ({c.insertion_auc.mean():.3f})")
        last = c
    if last is not None:
        ax_del.plot(last.fractions, last.deletion_random.mean(axis=0), "k--", lw=1,
                    label=f"random ({last.deletion_auc_random.mean():.3f})")
        ax_ins.plot(last.fractions, last.insertion_random.mean(axis=0), "k--", lw=1,
                    label=f"random ({last.insertion_auc_random.mean():.3f})")
    for ax, title in ((ax_del, "Deletion (lower AUC is better)"), (ax_ins, "Insertion (higher AUC is better)")):
        ax.set_xlabel("fraction of features removed" if ax is ax_del else "fraction of features inserted")
        ax.set_ylabel("probability of the explained class")
        ax.set_title(title, fontsize=10)
        ax.legend(fontsize=7)
    return fig


def agreement_matrix(report) -> Figure:
    """Mean Spearman rank agreement between every pair of methods."""
    methods = list(report.attributions)
    k = len(methods)
    M = np.eye(k)
    for pair, a in report.agreement.items():
        x, y = pair.split("~")
        i, j = methods.index(x), methods.index(y)
        M[i, j] = M[j, i] = float(np.nanmean(a.spearman))
    fig = Figure(figsize=(1.0 * k + 2.5, 0.9 * k + 1.5), layout="constrained")
    ax = fig.subplots()
    im = ax.imshow(M, cmap=DIVERGING, vmin=-1, vmax=1)
    ax.set_xticks(range(k), [m.replace("_", " ") for m in methods], rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(k), [m.replace("_", " ") for m in methods], fontsize=8)
    for i in range(k):
        for j in range(k):
            ax.text(j, i, f"{M[i, j]:.2f}", ha="center", va="center", fontsize=7)
    fig.colorbar(im, ax=ax, label="Spearman")
    ax.set_title("Rank agreement between methods", fontsize=10)
    return fig


def permutation_importance(result, *, top: int = 15) -> Figure:
    """Mean increase of the loss per shuffled feature with its interval, largest on top."""
    low, high = result.interval
    order = np.argsort(-result.mean, kind="stable")[:top][::-1]
    fig = Figure(figsize=(6, 0.35 * len(order) + 1.2), layout="constrained")
    ax = fig.subplots()
    mean = result.mean[order]
    ax.barh(range(len(order)), mean, xerr=np.vstack([mean - low[order], high[order] - mean]),
            color="#5b8def", capsize=2)
    ax.set_yticks(range(len(order)), [result.feature_names[j] for j in order])
    ax.axvline(0, color="#999", lw=0.8)
    what = "increase in log loss" if result.metric == "log_loss" else f"drop in {result.metric}"
    ax.set_xlabel(f"{what} when shuffled ({result.confidence:.0%} interval)")
    ax.set_title("Permutation importance", fontsize=10)
    return fig
