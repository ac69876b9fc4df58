"""Missing-data figures from a `MissingReport`: the missing rate of each column per sensitive group
(with Wilson intervals), accuracy / minority recall as values go missing at prediction time per
group, the scenarios (MCAR, most important columns, one group) side by side, the fairness gaps
along each curve, the imputation strategies compared, and (`StrategyComparison`) the retrained
train x evaluate strategy grid.

Pure functions drawn with matplotlib's Figure API (no pyplot state, no show()); they read the
result only and never call the model.
"""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle


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


def _band(ax, rates, series, color, label, style="o-", lw=1.5):
    ax.fill_between(rates, [r.ci_low for r in series], [r.ci_high for r in series], color=color, alpha=0.15, lw=0)
    ax.plot(rates, [r.rate for r in series], style, color=color, lw=lw, label=label)


def robustness_curves(report, curve=None) -> Figure:
    """Accuracy and minority-class recall against the share of values blanked, for one curve (the
    headline MCAR curve by default): overall (black, with its band) and per judged group of each
    attribute (coloured, with their bands)."""
    curve = report.curves[0] if curve is None else curve
    rates = np.array([p.rate for p in curve.points])
    fig = Figure(figsize=(9.0, 3.6))
    axes = fig.subplots(1, 2)
    colors = [f"C{k}" for k in range(10)]
    for ax, key, title in ((axes[0], "accuracy", "Accuracy"),
                           (axes[1], "minority_recall", f"Recall of {report.minority_class!r}")):
        _band(ax, rates, [getattr(p, key) for p in curve.points], "black", "all rows")
        shown = 0
        for k, g in enumerate(curve.points[0].groups):
            series = [getattr(p.groups[k], key) for p in curve.points]
            if series[0].too_small:
                continue
            _band(ax, rates, series, colors[shown % 10], f"{g.attribute}={series[0].label}", ".-", 1)
            shown += 1
        ax.set_xlabel(f"share of values {curve.description}, imputed")
        ax.set_title(title, fontsize=9)
        ax.spines[["top", "right"]].set_visible(False)
    axes[1].legend(frameon=False, fontsize=7, loc="best")
    fig.suptitle(f"Imputer: {report.imputer if curve.strategy == 'data' else curve.strategy}", fontsize=8)
    fig.tight_layout()
    return fig


def scenario_curves(report) -> Figure:
    """Accuracy and minority recall per injection scenario (the data's imputer), with intervals."""
    curves = [c for c in report.curves if c.strategy == "data"]
    fig = Figure(figsize=(9.0, 3.4))
    axes = fig.subplots(1, 2)
    for ax, key, title in ((axes[0], "accuracy", "Accuracy"),
                           (axes[1], "minority_recall", f"Recall of {report.minority_class!r}")):
        for k, c in enumerate(curves):
            _band(ax, [p.rate for p in c.points], [getattr(p, key) for p in c.points], f"C{k}", c.description)
        ax.set_xlabel("share of values blanked, imputed")
        ax.set_title(title, fontsize=9)
        ax.spines[["top", "right"]].set_visible(False)
    axes[1].legend(frameon=False, fontsize=7, loc="best")
    fig.tight_layout()
    return fig


def fairness_curves(report) -> Figure:
    """Demographic parity and equalized odds differences per attribute along each scenario's curve."""
    curves = [c for c in report.curves if c.strategy == "data"]
    attributes = list(dict.fromkeys(g.attribute for g in curves[0].points[0].gaps))
    fig = Figure(figsize=(9.0, 2.8 * len(attributes) + 0.4))
    axes = fig.subplots(len(attributes), 2, squeeze=False)
    for row, attribute in zip(axes, attributes):
        for ax, key, title in ((row[0], "demographic_parity", "Demographic parity difference"),
                               (row[1], "equalized_odds", "Equalized odds difference")):
            for k, c in enumerate(curves):
                values = [next(getattr(g, key) for g in p.gaps if g.attribute == attribute) for p in c.points]
                ax.plot([p.rate for p in c.points], values, "o-", color=f"C{k}", lw=1.5, label=c.description)
            ax.set_title(f"{title} by {attribute}", fontsize=9)
            ax.set_ylim(bottom=0)
            ax.spines[["top", "right"]].set_visible(False)
    for ax in axes[-1]:
        ax.set_xlabel("share of values blanked, imputed")
    axes[0][1].legend(frameon=False, fontsize=7, loc="best")
    fig.tight_layout()
    return fig


def strategy_curves(report) -> Figure:
    """Accuracy (with its interval; Rubin's for multiple imputation) and the worst judged group's
    accuracy per imputation strategy as values go missing completely at random."""
    curves = [c for c in report.curves if c.scenario == "mcar"]
    fig = Figure(figsize=(9.0, 3.4))
    axes = fig.subplots(1, 2)
    for k, c in enumerate(curves):
        rates = [p.rate for p in c.points]
        name = f"data's imputer ({report.imputer.split(' ')[0]})" if c.strategy == "data" else c.strategy
        _band(axes[0], rates, [p.accuracy for p in c.points], f"C{k}", name)
        worst = []
        for p in c.points:
            judged = [g.accuracy for g in p.groups if not g.accuracy.too_small]
            worst.append(min(judged, key=lambda r: r.rate) if judged else p.accuracy)
        _band(axes[1], rates, worst, f"C{k}", name)
    for ax, title in zip(axes, ("Accuracy", "Worst judged group's accuracy")):
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("share of values missing (MCAR), imputed")
        ax.spines[["top", "right"]].set_visible(False)
    axes[1].legend(frameon=False, fontsize=7, loc="best")
    fig.tight_layout()
    return fig


def strategy_grid(comparison) -> Figure:
    """Worst-group accuracy of each (train strategy, evaluate strategy) pair; the best is boxed."""
    names = list(comparison.strategies)
    grid = np.full((len(names), len(names)), np.nan)
    for c in comparison.cells:
        grid[names.index(c.train), names.index(c.evaluate)] = c.worst_group.rate
    fig = Figure(figsize=(1.4 * len(names) + 2.6, 1.0 * len(names) + 1.4))
    ax = fig.subplots()
    image = ax.imshow(grid, cmap="RdYlGn", vmin=np.nanmin(grid) - 0.02, vmax=np.nanmax(grid) + 0.02)
    for i in range(len(names)):
        for j in range(len(names)):
            best = (names[i], names[j]) == (comparison.best_train, comparison.best_evaluate)
            ax.text(j, i, f"{grid[i, j]:.1%}", ha="center", va="center", fontsize=8,
                    fontweight="bold" if best else "normal")
            if best:
                ax.add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, lw=2, color="black"))
    ax.set_xticks(range(len(names)), names, fontsize=8)
    ax.set_yticks(range(len(names)), names, fontsize=8)
    ax.set_xlabel("imputed at evaluation with")
    ax.set_ylabel("trained on data imputed with")
    ax.set_title(f"Worst-group accuracy, {comparison.rate:.0%} of values missing at random", fontsize=9)
    fig.colorbar(image, ax=ax, fraction=0.05)
    fig.tight_layout()
    return fig


def comparison_figures(comparison) -> list[tuple[str, Figure]]:
    return [("Each imputation strategy end to end: the model retrained on data filled by one strategy (rows) and "
             "evaluated with values filled by another (columns); boxed: the pair with the best worst group.",
             strategy_grid(comparison))]


def report_figures(report) -> list[tuple[str, Figure]]:
    out = []
    if report.attributes:
        out.append(("Missing rate per sensitive group (all rows, before imputation). Points: rate; bars: Wilson "
                    "interval; red: the group missing far more often.", group_rates(report)))
    if report.curves and len(report.curve) > 1:
        out.append(("Robustness to values missing at prediction time: a share of the test rows' values is "
                    "blanked at random and filled by the data's imputer; bands: intervals, per judged group.",
                    robustness_curves(report)))
        if sum(c.strategy == "data" for c in report.curves) > 1:
            out.append(("Injection scenarios side by side: at random, concentrated on the columns the model relies "
                        "on most, and only in one group's rows.", scenario_curves(report)))
        if report.curves[0].points[0].gaps:
            out.append(("Fairness gaps (audit.fairness: demographic parity and equalized odds differences over the "
                        "judged groups) along each scenario's curve.", fairness_curves(report)))
        if sum(c.scenario == "mcar" for c in report.curves) > 1:
            out.append(("Imputation strategies compared as values go missing at random (multiple imputation: "
                        "Rubin's intervals).", strategy_curves(report)))
    return out
