"""SHAP figures from a `ShapResult`: beeswarm, bar (global importance) and waterfall (one example).

Pure functions drawn with matplotlib's Figure API (no pyplot state, no show()); they read the
result only and never call the model. The look follows shap.plots (Lundberg et al. 2020,
"From local explanations to global understanding with explainable AI for trees").
"""

from __future__ import annotations

import numpy as np
from matplotlib.colors import LinearSegmentedColormap, Normalize
from matplotlib.figure import Figure

from audit.data._encoding import format_value

POSITIVE, NEGATIVE = "#ff0051", "#008bfb"  # shap's red and blue
VALUE_CMAP = LinearSegmentedColormap.from_list("shap_value", [NEGATIVE, "#8a2be2", POSITIVE])


def _output_label(result) -> str:
    what = "probability" if result.output == "probability" else "logit"
    classes = np.unique(result.class_index)
    if len(classes) == 1 and 0 <= classes[0] < len(result.class_names):
        return f"{what} of class {result.class_names[classes[0]]!r}"
    return f"{what} of the explained class"


def _top(result, max_display: int) -> np.ndarray:
    order = np.argsort(-np.abs(result.values).mean(axis=0), kind="stable")
    return order[:max(1, max_display)]


def bar(result, *, max_display: int = 10) -> Figure:
    """Mean |SHAP| per feature, largest on top; the rest summed into one bar."""
    imp = np.abs(result.values).mean(axis=0)
    top = _top(result, max_display)
    labels = [result.feature_names[j] for j in top]
    heights = list(imp[top])
    rest = np.setdiff1d(np.arange(len(imp)), top)
    if rest.size:
        labels.append(f"sum of {rest.size} other features")
        heights.append(float(imp[rest].sum()))
    fig = Figure(figsize=(6.5, 0.6 + 0.35 * len(labels)))
    ax = fig.subplots()
    y = np.arange(len(labels))
    ax.barh(y, heights, color=POSITIVE)
    for yi, h in zip(y, heights):
        ax.text(h, yi, f" {h:.3g}", va="center", fontsize=8)
    ax.set_yticks(y, labels)
    ax.invert_yaxis()
    ax.set_xlabel(f"mean |SHAP value| ({_output_label(result)})")
    ax.spines[["top", "right"]].set_visible(False)
    fig.tight_layout()
    return fig


def _swarm_offsets(x: np.ndarray, *, bins: int = 60, width: float = 0.38) -> np.ndarray:
    """Deterministic vertical offsets: points that fall in the same x bin are spread out."""
    if len(x) == 0:
        return x
    span = np.ptp(x) or 1.0
    bin_of = np.floor((x - x.min()) / span * bins).astype(np.int64)
    order = np.lexsort((np.arange(len(x)), bin_of))
    rank = np.zeros(len(x), np.int64)
    counts = np.bincount(bin_of)
    start = np.concatenate([[0], np.cumsum(counts)[:-1]])
    rank[order] = np.arange(len(x)) - start[bin_of[order]]
    layer = (rank + 1) // 2 * np.where(rank % 2 == 1, 1, -1)
    most = max(1, int(counts.max()))
    return layer * (2 * width / most)


def beeswarm(result, *, max_display: int = 10) -> Figure:
    """One row per top feature: each example's SHAP value, coloured by the feature's value."""
    top = _top(result, max_display)
    fig = Figure(figsize=(7.0, 0.8 + 0.4 * len(top)))
    ax = fig.subplots()
    ax.axvline(0.0, color="#999999", lw=0.8, zorder=0)
    for row, j in enumerate(top):
        v = result.values[:, j]
        data = np.asarray(result.data[:, j], np.float64)
        finite = np.isfinite(data)
        lo, hi = (np.percentile(data[finite], [5, 95]) if finite.any() else (0.0, 1.0))
        if hi <= lo:
            lo, hi = (np.min(data[finite]), np.max(data[finite])) if finite.any() else (0.0, 1.0)
        colour = np.clip((data - lo) / (hi - lo), 0, 1) if hi > lo else np.full(len(data), 0.5)
        ax.scatter(v, row + _swarm_offsets(v), c=VALUE_CMAP(np.nan_to_num(colour, nan=0.5)), s=12,
                   linewidths=0, alpha=0.85, rasterized=len(v) > 500)
    ax.set_yticks(np.arange(len(top)), [result.feature_names[j] for j in top])
    ax.set_ylim(len(top) - 0.5, -0.5)
    ax.set_xlabel(f"SHAP value (impact on {_output_label(result)})")
    ax.spines[["top", "right"]].set_visible(False)
    bar_ = fig.colorbar(_mappable(), ax=ax, ticks=[0, 1], aspect=40, pad=0.02)
    bar_.set_ticklabels(["low", "high"])
    bar_.set_label("feature value")
    bar_.outline.set_visible(False)
    fig.tight_layout()
    return fig


def _mappable():
    from matplotlib.cm import ScalarMappable

    return ScalarMappable(norm=Normalize(0, 1), cmap=VALUE_CMAP)


def _fmt(value) -> str:
    """A feature's value as the data has it (display values are rounded by the encoding)."""
    return format_value(value)


def waterfall(result, index: int = 0, *, max_display: int = 10) -> Figure:
    """How one example's output moves from the base value E[f(b)] to f(x), feature by feature
    (largest |SHAP| first; the smallest ones summed into one step)."""
    n = len(result.values)
    if not -n <= index < n:
        raise IndexError(f"example index {index} out of range for {n} explained examples")
    values = result.values[index]
    base = float(result.base_values[index])
    shown = np.argsort(-np.abs(values), kind="stable")[:max(1, max_display)]
    rest = np.setdiff1d(np.arange(len(values)), shown)
    display = result.display_data if result.display_data is not None else result.data
    labels = [f"{result.feature_names[j]} = {_fmt(display[index, j])}" for j in shown]
    steps = list(values[shown])
    if rest.size:
        labels.append(f"{rest.size} other features")
        steps.append(float(values[rest].sum()))
    # draw from the bottom (smallest) up to the top (largest), as shap does
    labels, steps = labels[::-1], steps[::-1]
    fx = base + float(values.sum())
    fig = Figure(figsize=(7.0, 0.9 + 0.4 * len(steps)))
    ax = fig.subplots()
    left = base + np.concatenate([[0.0], np.cumsum(steps)[:-1]])  # each step starts where the last ended
    y = np.arange(len(steps))
    colours = [POSITIVE if s >= 0 else NEGATIVE for s in steps]
    ax.barh(y, steps, left=left, color=colours, height=0.7)
    span = max(abs(s) for s in steps) if steps else 1.0
    for yi, l, s in zip(y, left, steps):
        ax.text(l + s + (0.01 * span if s >= 0 else -0.01 * span), yi, f"{s:+.3g}",
                va="center", ha="left" if s >= 0 else "right", fontsize=8)
    ax.axvline(base, color="#999999", lw=0.8, ls="--")
    ax.axvline(fx, color="#333333", lw=0.8, ls="--")
    ax.set_yticks(y, labels)
    ax.set_xlabel(_output_label(result))
    ax.set_title(f"E[f(X)] = {base:.4g}    f(x) = {fx:.4g}", fontsize=9)
    ax.spines[["top", "right"]].set_visible(False)
    fig.tight_layout()
    return fig
