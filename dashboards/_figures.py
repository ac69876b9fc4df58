"""Small pure figures the dashboard needs where `audit.render.figures` has none yet.

Each maps results (and the slider values) to a matplotlib Figure built with the Figure API
(no pyplot state, no show()); none of them calls a model.
"""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

POSITIVE, NEGATIVE = "#ff0051", "#008bfb"  # shap's red and blue, as audit.render.figures.shap


def threshold_tradeoff(sweep: dict[str, np.ndarray], threshold: float, *, attribute: str) -> Figure:
    """Accuracy and each difference-type disparity against the decision threshold, with the
    chosen threshold marked."""
    t = sweep["threshold"]
    fig = Figure(figsize=(6.5, 3.6))
    ax = fig.subplots()
    ax.plot(t, sweep["accuracy"], color="black", lw=2, label="accuracy")
    for name, values in sweep.items():
        if name not in ("threshold", "accuracy"):
            ax.plot(t, values, lw=1.2, label=name.replace("_", " "))
    ax.axvline(threshold, color="#c0392b", ls="--", lw=1, label=f"threshold {threshold:.2f}")
    ax.set(xlabel="decision threshold on P(positive class)", ylabel="value", ylim=(-0.02, 1.02),
           title=f"Accuracy and gaps by {attribute} as the threshold moves")
    ax.legend(fontsize=7, frameon=False, loc="center left", bbox_to_anchor=(1.0, 0.5))
    ax.spines[["top", "right"]].set_visible(False)
    fig.tight_layout()
    return fig


def pr_at_threshold(thresholds, threshold: float, precision: float, recall: float,
                    fpr: float) -> Figure:
    """The report's precision-recall and ROC curves with the operating point at `threshold`."""
    fig = Figure(figsize=(9.0, 3.6))
    pr, roc = fig.subplots(1, 2)
    pr.plot(thresholds.recall, thresholds.precision, color="0.3")
    roc.plot(thresholds.fpr, thresholds.tpr, color="0.3")
    roc.plot([0, 1], [0, 1], color="0.7", ls=":", lw=0.8)
    label = f"threshold {threshold:.2f}"
    pr.plot([recall], [precision], "o", color="#c0392b", ms=8, label=label)
    roc.plot([fpr], [recall], "o", color="#c0392b", ms=8, label=label)
    pr.set(xlabel="recall", ylabel="precision", xlim=(0, 1.01), ylim=(0, 1.01),
           title=f"Precision-recall ({thresholds.positive_class!r})")
    roc.set(xlabel="false positive rate", ylabel="true positive rate", xlim=(0, 1.01), ylim=(0, 1.01), title="ROC")
    for ax in (pr, roc):
        ax.legend(fontsize=8, frameon=False, loc="lower left" if ax is pr else "lower right")
        ax.title.set_fontsize(9)
        ax.spines[["top", "right"]].set_visible(False)
    fig.tight_layout()
    return fig


def attribution_bars(attribution, index: int = 0, *, max_display: int = 10, title: str | None = None) -> Figure:
    """One example's attribution per feature (tabular), largest |value| first."""
    values = attribution.flat[index]
    names = attribution.feature_names or tuple(f"input {j}" for j in range(len(values)))
    order = np.argsort(-np.abs(values), kind="stable")[:max_display]
    fig = Figure(figsize=(6.0, 0.8 + 0.32 * len(order)))
    ax = fig.subplots()
    y = np.arange(len(order))
    ax.barh(y, values[order], color=[POSITIVE if v >= 0 else NEGATIVE for v in values[order]])
    inputs = attribution.inputs
    labels = [names[j] if inputs is None or inputs.ndim != 2 else f"{names[j]} = {inputs[index, j]:.3g}"
              for j in order]
    ax.set_yticks(y, labels, fontsize=8)
    ax.invert_yaxis()
    ax.axvline(0, color="0.5", lw=0.8)
    ax.set_xlabel("attribution towards the explained class")
    ax.set_title(title or attribution.method, fontsize=9)
    ax.spines[["top", "right"]].set_visible(False)
    fig.tight_layout()
    return fig


def saliency_overlays(image: np.ndarray, maps: dict[str, np.ndarray], *, scores: dict[str, str] | None = None) -> Figure:
    """The image, then each method's attribution as a signed heat map over it (|values| scaled
    per map), captioned with its quality score when given."""
    img = image[..., 0] if image.ndim == 3 and image.shape[-1] == 1 else image
    fig = Figure(figsize=(2.1 * (len(maps) + 1), 2.5))
    axes = fig.subplots(1, len(maps) + 1, squeeze=False)[0]
    axes[0].imshow(img, cmap="gray", vmin=0, vmax=1)
    axes[0].set_title("input", fontsize=8)
    for ax, (name, m) in zip(axes[1:], maps.items()):
        m = np.asarray(m, np.float64)
        m = m.sum(-1) if m.ndim == 3 else m
        span = float(np.abs(m).max()) or 1.0
        ax.imshow(img, cmap="gray", vmin=0, vmax=1)
        ax.imshow(m, cmap="bwr", vmin=-span, vmax=span, alpha=0.6)
        caption = name.replace("_", " ")
        if scores and name in scores:
            caption += f"\n{scores[name]}"
        ax.set_title(caption, fontsize=7)
    for ax in axes:
        ax.set_xticks([]), ax.set_yticks([])
    fig.tight_layout()
    return fig


def probabilities_bar(class_names, before: np.ndarray, after: np.ndarray, *, label: int) -> Figure:
    """Class probabilities before and after an attack, the true class marked."""
    k = len(class_names)
    fig = Figure(figsize=(max(4.0, 0.5 * k + 2), 2.8))
    ax = fig.subplots()
    x = np.arange(k)
    ax.bar(x - 0.2, before, 0.4, label="before", color="#2c3e50")
    ax.bar(x + 0.2, after, 0.4, label="after attack", color="#c0392b")
    ax.set_xticks(x, [f"{c}*" if i == label else str(c) for i, c in enumerate(class_names)], fontsize=8)
    ax.set(ylim=(0, 1), ylabel="probability", title="Class probabilities (* true class)")
    ax.legend(fontsize=8, frameon=False)
    ax.spines[["top", "right"]].set_visible(False)
    fig.tight_layout()
    return fig
