"""Missing-data figures from a `MissingReport`: the missing rate of each column per sensitive group
(with Wilson intervals), and accuracy / minority recall as values go missing at prediction time.

Pure functions drawn with matplotlib's Figure API (no pyplot state, no show()); they read the
result only and never call the model.
"""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure


def group_rates(report) -> Figure:
    """One panel per (attribute, column): each group's missing rate with its interval; red when the
    gap is unequal (intervals apart), grey for groups too small to judge."""
    panels = report.attributes
    fig = Figure(figsize=(7.0, max(2.2, sum(0.4 * len(a.groups) + 0.9 for a in panels) + 0.4)))
    axes = fig.subplots(len(panels), 1, squeeze=False)[:, 0]
    for ax, a in zip(axes, panels):
        ypos = np.arange(len(a.groups))[::-1]
        for y, g in zip(ypos, a.groups):
            color = "0.6" if g.too_small else ("#c0392b" if a.unequal and g.label == a.high_group else "#2c3e50")
            if np.isfinite(g.ci_low):
                ax.plot([g.ci_low, g.ci_high], [y, y], color=color, lw=2, alpha=0.6)
                ax.plot([g.rate], [y], "o", color=color)
        ax.set_yticks(ypos, [f"{g.label} (n={g.n})" for g in a.groups], fontsize=8)
        ax.set_ylim(-0.7, len(a.groups) - 0.3)
        gap = f"gap {a.rate_gap:.1%}" if np.isfinite(a.rate_gap) else "groups too small to compare"
        ax.set_title(f"{a.column} missing, by {a.attribute}: {gap}" + (" (unequal)" if a.unequal else ""),
                     fontsize=9)
        ax.set_xlim(left=0)
        ax.spines[["top", "right"]].set_visible(False)
    axes[-1].set_xlabel("share of rows with the value missing")
    fig.tight_layout()
    return fig


def robustness_curves(report) -> Figure:
    """Accuracy and minority-class recall against the share of values blanked at random, overall
    (black, with Wilson bands) and per group of each attribute (thin lines)."""
    rates = np.array([p.rate for p in report.curve])
    fig = Figure(figsize=(9.0, 3.6))
    axes = fig.subplots(1, 2)
    for ax, key, title in ((axes[0], "accuracy", "Accuracy"),
                           (axes[1], "minority_recall", f"Recall of {report.minority_class!r}")):
        overall = [getattr(p, key) for p in report.curve]
        ax.fill_between(rates, [r.ci_low for r in overall], [r.ci_high for r in overall], color="0.85")
        ax.plot(rates, [r.rate for r in overall], "o-", color="black", label="all rows")
        for k, g in enumerate(report.curve[0].groups):
            series = [getattr(p.groups[k], key) for p in report.curve]
            if series[0].too_small:
                continue
            ax.plot(rates, [r.rate for r in series], ".-", lw=1, alpha=0.8, label=f"{g.attribute}={series[0].label}")
        ax.set_xlabel("share of values missing (MCAR), imputed")
        ax.set_title(title, fontsize=9)
        ax.spines[["top", "right"]].set_visible(False)
    axes[1].legend(frameon=False, fontsize=7, loc="best")
    fig.suptitle(f"Imputer: {report.imputer}", fontsize=8)
    fig.tight_layout()
    return fig


def report_figures(report) -> list[tuple[str, Figure]]:
    out = []
    if report.attributes:
        out.append(("Missing rate per sensitive group (all rows, before imputation). Points: rate; bars: Wilson "
                    "interval; red: the group missing far more often.", group_rates(report)))
    if len(report.curve) > 1:
        out.append(("Robustness to values missing at prediction time: a share of the test rows' values is "
                    "blanked at random and filled by the data's imputer.", robustness_curves(report)))
    return out
