"""Small pure figures the dashboard needs where `audit.render.figures` has none yet.

Each maps results (and the slider values) to a matplotlib Figure built with the Figure API
(no pyplot state, no show()); none of them calls a model.
"""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

POSITIVE, NEGATIVE = "#ff0051", "#008bfb"  # shap's red and blue, as audit.render.figures.shap


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
