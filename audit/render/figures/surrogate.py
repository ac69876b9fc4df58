"""Surrogate figures from a `SurrogateResult`: the rules as text, fidelity per group.

Pure functions (matplotlib Figure API, no pyplot state); they read the result only. Rule text
is drawn as plain text (never interpreted), so column names cannot inject markup.
"""

from __future__ import annotations

import textwrap

import numpy as np
from matplotlib.figure import Figure

from audit.render.figures.shap import NEGATIVE, POSITIVE


def rules(result, *, max_rules: int = 12) -> Figure:
    """The rules, most supported first: condition, predicted class, rows covered, agreement."""
    ordered = sorted(result.rules, key=lambda r: -r.support)[:max_rules]
    lines = []
    for r in ordered:
        body = textwrap.fill(r.text, width=96, subsequent_indent="      ")
        lines.append(f"{body}\n      ({r.support} training rows; the model agrees on {r.confidence:.0%})")
    text = ("\n".join(lines) if lines else "(no rules)").replace("$", r"\$")  # no mathtext from names
    height = 0.9 + 0.19 * text.count("\n") + 0.19 * len(lines)
    fig = Figure(figsize=(8.5, height))
    fig.text(0.01, 0.99, text, va="top", ha="left", family="monospace", fontsize=7.5)
    fig.text(0.01, 0.01, f"fidelity on held-out rows: {result.fidelity:.1%}", va="bottom", fontsize=8,
             color="#444444")
    return fig


def group_fidelity(result) -> Figure:
    """Fidelity per group of each sensitive attribute against the overall fidelity (dashed);
    groups too small to judge are hatched."""
    groups = list(result.groups)
    labels = [f"{g.attribute} = {g.group} (n={g.size})" for g in groups]
    fig = Figure(figsize=(6.5, 0.8 + 0.32 * max(1, len(groups))))
    ax = fig.subplots()
    y = np.arange(len(groups))
    colors = [POSITIVE if g.judged and result.fidelity - g.fidelity > 0.1 else NEGATIVE for g in groups]
    bars = ax.barh(y, [g.fidelity for g in groups], color=colors)
    for b, g in zip(bars, groups):
        if not g.judged:
            b.set_hatch("//")
            b.set_alpha(0.5)
    ax.axvline(result.fidelity, color="black", ls="--", lw=1)
    ax.set_yticks(y, labels)
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel("fidelity: share of held-out rows where the rules predict the model's class")
    ax.spines[["top", "right"]].set_visible(False)
    fig.tight_layout()
    return fig


def report_figures(result) -> list[tuple[str, Figure]]:
    out = [("Global surrogate: a shallow decision tree fit to the model's predictions, read as rules on "
            "raw columns.", rules(result))]
    if result.groups:
        out.append(("How well the rules describe each group (dashed: overall; red: a group described "
                    "poorly; hatched: too small to judge).", group_fidelity(result)))
    return out
