"""Recourse figures and tables from a `RecourseReport`: the per-group burden (mean cost of the cheapest
counterfactual with its bootstrap interval, and the share without recourse) and worked examples.

Pure functions: they read the result only (no model calls, no pyplot state).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from matplotlib.figure import Figure


def burden_chart(report) -> Figure:
    """One panel per attribute: each group's mean cost of recourse with its interval (grey: too
    small to judge), labelled with its denied rows and the share of them without recourse."""
    attrs = report.attributes
    height = sum(0.45 * len(a.groups) + 0.9 for a in attrs) + 0.6
    fig = Figure(figsize=(7.0, max(2.2, height)))
    axes = fig.subplots(len(attrs), 1, squeeze=False)[:, 0]
    for ax, a in zip(axes, attrs):
        ypos = np.arange(len(a.groups))[::-1]
        for y, g in zip(ypos, a.groups):
            color = "0.6" if g.too_small else ("#c0392b" if g.label == a.high_group and a.ci_low > 1 else "#2c3e50")
            if np.isfinite(g.ci_low):
                ax.plot([g.ci_low, g.ci_high], [y, y], color=color, lw=2, alpha=0.6)
            if np.isfinite(g.mean_cost):
                ax.plot([g.mean_cost], [y], "o", color=color)
            ax.annotate(f"{g.n_denied} denied, {g.infeasible_rate:.0%} without recourse"
                        + (" (too small)" if g.too_small else ""),
                        (0, y), xycoords=("axes fraction", "data"), xytext=(4, 7), textcoords="offset points",
                        fontsize=7, color="0.35")
        ax.set_yticks(ypos, [g.label for g in a.groups], fontsize=8)
        ax.set_ylim(-0.7, len(a.groups) - 0.3)
        ratio = f"burden ratio {a.burden_ratio:.2f} [{a.ci_low:.2f}, {a.ci_high:.2f}]" \
            if np.isfinite(a.burden_ratio) else "burden ratio: groups too small to judge"
        ax.set_title(f"{a.name}: {ratio}", fontsize=9)
        ax.spines[["top", "right"]].set_visible(False)
        ax.set_xlim(left=0)
    axes[-1].set_xlabel("mean cost of the cheapest counterfactual (MAD-scaled L1; interval: bootstrap)")
    fig.tight_layout()
    return fig


def cost_histogram(report) -> Figure:
    """Distribution of the cheapest counterfactual's cost over denied rows with recourse."""
    fig = Figure(figsize=(6.0, 2.6))
    ax = fig.subplots()
    cost = report.cost[report.feasible]
    if len(cost):
        ax.hist(cost, bins=min(40, max(5, len(cost) // 5)), color="#2c3e50", alpha=0.8)
    ax.set_xlabel("cost of the cheapest counterfactual")
    ax.set_ylabel("denied rows")
    ax.spines[["top", "right"]].set_visible(False)
    fig.tight_layout()
    return fig


def report_figures(report) -> list[tuple[str, Figure]]:
    if len(report.rows) == 0:
        return []
    return [(f"Cost of recourse per group: how much the rows denied {report.favorable_class!r} must change to "
             "get it. Points: mean cost of the cheapest counterfactual; bars: bootstrap interval.",
             burden_chart(report)),
            ("How far denied rows are from the favourable decision (cheapest counterfactual per row).",
             cost_histogram(report))]


def validity_table(report) -> dict[str, Any]:
    """The counterfactuals searched, split: valid (the model gives the favourable class), invalid
    (missing although one exists: fewer distinct than asked) and infeasible (none under the
    constraints), over all denied rows and per group."""
    cf = report.counterfactuals
    split = cf.validity_split() if cf is not None else {"valid": 0, "invalid": 0, "infeasible": 0}
    k = cf.validity.shape[1] if cf is not None else 1
    rows = [("all denied rows", [(str(len(report.rows) * k), False), (str(split["valid"]), False),
                                 (str(split["invalid"]), False), (str(split["infeasible"]), split["infeasible"] > 0)])]
    if k == 1:  # one counterfactual per row: a group's split follows from its feasible count
        for a in report.attributes:
            for g in a.groups:
                rows.append((f"{a.name} = {g.label}", [(str(g.n_denied), False), (str(g.n_feasible), False),
                                                       ("0", False), (str(g.n_denied - g.n_feasible),
                                                                      g.n_denied > g.n_feasible)]))
    return {"caption": (f"Counterfactuals searched for the rows denied {report.favorable_class!r}: valid, "
                        "invalid (a valid one exists but fewer distinct than asked) and infeasible (none under "
                        "the constraints; marked when any)."),
            "columns": ["requested", "valid", "invalid", "infeasible"], "rows": rows}


def example_tables(report, *, n: int = 4) -> list[dict[str, Any]]:
    """The validity split (`validity_table`), then worked examples: the cheapest denied rows to
    help and the most expensive, each as a two-row table (original, counterfactual) with the
    changed cells marked. Values are plain text; the HTML template escapes them."""
    cf = report.counterfactuals
    if cf is None:
        return []
    if not report.feasible.any():
        return [validity_table(report)]
    ok = np.flatnonzero(report.feasible)
    order = ok[np.argsort(report.cost[ok], kind="stable")]
    picks = list(dict.fromkeys([*order[:n // 2], *order[::-1][:n - n // 2]]))
    tables = [validity_table(report)]
    for i in picks:
        before, after = cf.values(cf.original[i])[0], cf.values(cf.counterfactuals[i, 0])[0]
        changed = [b != a for b, a in zip(before, after)]
        fmt = lambda v: f"{v:.4g}" if isinstance(v, float) else str(v)
        tables.append({
            "caption": (f"Row {int(report.rows[i])} of the {report.split} split: cost {report.cost[i]:.2f}, "
                        f"{sum(changed)} column(s) changed to get {report.favorable_class!r}."),
            "columns": list(cf.feature_names),
            "rows": [("original", [(fmt(v), False) for v in before]),
                     ("counterfactual", [(fmt(v), c) for v, c in zip(after, changed)])]})
    return tables
