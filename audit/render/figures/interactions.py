"""Interaction figures from an `InteractionResult`: strongest pairs, heatmap, dependence plots.

Pure functions (matplotlib Figure API, no pyplot state); they read the result only. The
dependence plot follows shap.plots.scatter: a player's SHAP value against its value, coloured
by the value of its strongest interaction partner (Lundberg et al. 2020).
"""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from audit.render.figures.shap import POSITIVE, VALUE_CMAP


def top_pairs(result, *, k: int = 10) -> Figure:
    """The k strongest pairs by mean |Phi_ij| + |Phi_ji|, strongest on top."""
    pairs = result.top_pairs(k)
    labels = [f"{a} x {b}" for a, b, _ in pairs]
    heights = [s for _, _, s in pairs]
    fig = Figure(figsize=(6.5, 0.6 + 0.35 * max(1, len(labels))))
    ax = fig.subplots()
    y = np.arange(len(labels))
    ax.barh(y, heights, color=POSITIVE)
    for yi, h in zip(y, heights):
        ax.text(h, yi, f" {h:.3g}", va="center", fontsize=8)
    ax.set_yticks(y, labels)
    ax.invert_yaxis()
    ax.set_xlabel("mean |SHAP interaction value| of the pair (both halves)")
    ax.spines[["top", "right"]].set_visible(False)
    fig.tight_layout()
    return fig


def heatmap(result, *, max_display: int = 12) -> Figure:
    """Mean |interaction| between the `max_display` players with the largest total |attribution|
    (main effects on the diagonal)."""
    s = result.strength()
    order = np.argsort(-s.sum(axis=1), kind="stable")[:max_display]
    sub = s[np.ix_(order, order)]
    names = [result.feature_names[j] for j in order]
    size = 1.6 + 0.45 * len(order)
    fig = Figure(figsize=(size + 1.2, size))
    ax = fig.subplots()
    im = ax.imshow(sub, cmap="Reds", vmin=0.0)
    ax.set_xticks(np.arange(len(order)), names, rotation=60, ha="right", fontsize=8)
    ax.set_yticks(np.arange(len(order)), names, fontsize=8)
    for (i, j), v in np.ndenumerate(sub):
        ax.text(j, i, f"{v:.2g}", ha="center", va="center", fontsize=6,
                color="white" if v > 0.6 * sub.max() else "black")
    fig.colorbar(im, ax=ax, label="mean |interaction| (diagonal: main effect)")
    fig.tight_layout()
    return fig


def dependence(result, feature: int | str, *, partner: int | str | None = None) -> Figure:
    """SHAP value of `feature` against its value, coloured by `partner`'s value (default: the
    strongest partner), with the interaction part shown as the spread between colours."""
    names = list(result.feature_names)
    j = names.index(feature) if isinstance(feature, str) else int(feature)
    k = result.partner(j) if partner is None else (names.index(partner) if isinstance(partner, str) else int(partner))
    x, y, c = result.data[:, j], result.shap_values[:, j], result.data[:, k]
    fig = Figure(figsize=(5.5, 3.8))
    ax = fig.subplots()
    sc = ax.scatter(x, y, c=c, cmap=VALUE_CMAP, s=18)
    fig.colorbar(sc, ax=ax, label=names[k])
    ax.axhline(0.0, color="#999999", lw=0.6)
    ax.set_xlabel(names[j])
    ax.set_ylabel(f"SHAP value of {names[j]}")
    ax.spines[["top", "right"]].set_visible(False)
    fig.tight_layout()
    return fig


def report_figures(result, *, n_dependence: int = 2) -> list[tuple[str, Figure]]:
    """Captioned figures for a report section: pairs, heatmap, dependence of the top pairs."""
    out = [("Strongest interacting pairs: mean |SHAP interaction value| (Lundberg et al. 2020).",
            top_pairs(result)),
           ("Interaction heatmap: mean |interaction| between players; the diagonal is the main effect.",
            heatmap(result))]
    seen: set[str] = set()
    for a, b, _ in result.top_pairs(n_dependence):
        if a in seen:
            continue
        seen.add(a)
        out.append((f"Dependence of {a}: its SHAP value against its value, coloured by {b} (its strongest "
                    "partner); vertical spread at one value is the interaction.", dependence(result, a, partner=b)))
    return out

