"""Fairness figures from a `FairnessReport` / `FairnessMitigation`: disparities with intervals,
a heat map of group metrics (the dashboard's; the HTML report shows `group_tables`), group metric bars,
proxies, and mitigation before/after bars.

Pure functions drawn with matplotlib's Figure API (no pyplot state, no show()); they read the
result only and never call the model.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from matplotlib.figure import Figure

_DIFFERENCES = ("demographic_parity_difference", "equal_opportunity_difference", "equalized_odds_difference",
                "predictive_parity_difference", "calibration_gap")
_TABLE = ("base_rate", "selection_rate", "accuracy", "tpr", "fpr", "fnr", "precision", "roc_auc",
          "calibration_error")


def _pick(report, attribute):
    if attribute is None:
        return report.attributes[0]
    return report.attribute(attribute)


def disparity_chart(report, *, attribute: str | None = None, class_name: str | None = None,
                    max_difference: float | None = None) -> Figure:
    """Each difference-type disparity for one attribute as a point with its bootstrap interval;
    the dashed line is the tolerance (`max_difference`, default from the report's settings)."""
    a = _pick(report, attribute)
    cls = class_name or a.tables[0].class_name
    ds = [a.disparity(n, cls) for n in _DIFFERENCES if any(d.name == n and d.class_name == cls
                                                            for d in a.disparities)]
    limit = max_difference if max_difference is not None else report.provenance.settings.get("max_difference", 0.1)
    fig = Figure(figsize=(6.5, 0.5 * len(ds) + 1.4))
    ax = fig.subplots()
    ypos = np.arange(len(ds))[::-1]
    for y, d in zip(ypos, ds):
        color = "#c0392b" if d.significant and d.value > limit else "#2c3e50"
        if np.isfinite(d.ci_low):
            ax.plot([d.ci_low, d.ci_high], [y, y], color=color, lw=2, alpha=0.6)
        ax.plot([d.value], [y], "o", color=color)
        if np.isfinite(d.value):
            ax.annotate(f"{d.high_group} vs {d.low_group}", (d.value, y), textcoords="offset points",
                        xytext=(0, 6), ha="center", fontsize=7, color="0.3")
    ax.axvline(0, color="0.6", lw=0.8)
    ax.axvline(limit, color="#c0392b", lw=0.8, ls="--")
    ax.set_yticks(ypos, [d.name.replace("_", " ") for d in ds], fontsize=8)
    small = sorted({g for d in ds for g in d.small_groups})
    ax.set_xlabel("gap between the two most different groups large enough to judge (interval: bootstrap)"
                  + (f"\ntoo small to judge: {', '.join(small)}" if small else ""))
    ax.set_title(f"Disparities by {a.name} (class {cls!r})")
    ax.spines[["top", "right"]].set_visible(False)
    fig.tight_layout()
    return fig


def group_heatmap(report, *, attribute: str | None = None, class_name: str | None = None) -> Figure:
    """Group metric table as a heat map: rows are groups (with sizes), columns metrics."""
    a = _pick(report, attribute)
    table = a.table(class_name)
    values = np.array([table.values[m] for m in _TABLE]).T
    fig = Figure(figsize=(1.0 + 0.75 * len(_TABLE), 0.45 * len(table.groups) + 1.8))
    ax = fig.subplots()
    ax.imshow(np.ma.masked_invalid(values), cmap="viridis", vmin=0, vmax=1, aspect="auto")
    for (i, j), v in np.ndenumerate(values):
        ax.text(j, i, "n/a" if not np.isfinite(v) else f"{v:.2f}", ha="center", va="center", fontsize=7,
                color="white" if np.isfinite(v) and v < 0.6 else "black")
    ax.set_xticks(range(len(_TABLE)), [m.replace("_", " ") for m in _TABLE], rotation=35, ha="right", fontsize=8)
    small = {g for m in _TABLE for g in table.small_groups(m)}
    ax.set_yticks(range(len(table.groups)),
                  [f"{g} (n={int(n)}{', too small to judge' if g in small else ''})"
                   for g, n in zip(table.groups, a.sizes)], fontsize=8)
    ax.set_title(f"Group metrics by {a.name} (class {table.class_name!r})")
    fig.tight_layout()
    return fig


_TITLES = {"tpr": "true positive rate", "fpr": "false positive rate", "fnr": "false negative rate",
           "roc_auc": "ROC AUC"}


def group_tables(report) -> list[dict[str, Any]]:
    """The group metric table per attribute as an HTML table (rows: groups with sizes; columns: metrics),
    for the first analysed class; groups too small to judge are named so and their cells marked."""
    tables = []
    for a in report.attributes:
        table = a.table(None)
        small = {g for m in _TABLE for g in table.small_groups(m)}
        rows = []
        for k, (g, n) in enumerate(zip(table.groups, a.sizes)):
            label = f"{g} (n={int(n)}{', too small to judge' if g in small else ''})"
            cells = [("n/a" if not np.isfinite(v) else f"{v:.3f}", g in table.small_groups(m))
                     for m in _TABLE for v in [float(table.values[m][k])]]
            rows.append((label, cells))
        tables.append({"caption": (f"Group metrics by {a.name} (class {table.class_name!r}); marked: the group is "
                                   "too small to judge that metric (min_group_size / min_count)."),
                       "columns": [_TITLES.get(m, m.replace("_", " ")) for m in _TABLE], "rows": rows})
    return tables


def group_bars(report, *, attribute: str | None = None, metrics=("selection_rate", "tpr", "fpr"),
               class_name: str | None = None) -> Figure:
    """Selected group metrics side by side per group, with the overall base rate for reference."""
    a = _pick(report, attribute)
    table = a.table(class_name)
    fig = Figure(figsize=(max(5.0, 1.1 * len(table.groups) + 2), 3.6))
    ax = fig.subplots()
    x = np.arange(len(table.groups))
    width = 0.8 / len(metrics)
    for k, m in enumerate(metrics):
        ax.bar(x + (k - (len(metrics) - 1) / 2) * width, np.nan_to_num(table.values[m]), width,
               label=m.replace("_", " "))
    ax.set_xticks(x, table.groups, rotation=20, ha="right", fontsize=8)
    ax.set_ylim(0, 1)
    ax.legend(fontsize=8, frameon=False)
    ax.set_title(f"Rates by {a.name} (class {table.class_name!r})")
    ax.spines[["top", "right"]].set_visible(False)
    fig.tight_layout()
    return fig


def proxy_chart(report, *, attribute: str | None = None, top: int = 10) -> Figure:
    """Inputs ranked by normalised mutual information with the attribute, with the probe's AUC."""
    p = report.proxies[0] if attribute is None else report.proxy(attribute)
    ranked = p.ranked()[:top][::-1]
    fig = Figure(figsize=(6.0, 0.35 * len(ranked) + 1.4))
    ax = fig.subplots()
    ax.barh([c for c, _ in ranked], [v for _, v in ranked], color="#8e44ad")
    ax.set_xlabel("mutual information / entropy of the attribute")
    share = "" if p.attribution_share is None else f", attribution share {p.attribution_share:.1%}"
    ax.set_title(f"Proxies for {p.attribute} (probe ROC-AUC {p.probe_auc:.2f}{share})", fontsize=10)
    ax.spines[["top", "right"]].set_visible(False)
    fig.tight_layout()
    return fig


def mitigation_bars(result, *, disparity: str = "equalized_odds_difference") -> Figure:
    """Accuracy and one disparity (with intervals) for the baseline and each mitigation."""
    arms = result.arms
    fig = Figure(figsize=(7.5, 3.4))
    left, right = fig.subplots(1, 2)
    names = [a.name for a in arms]
    left.bar(names, [a.accuracy for a in arms], color="#2980b9")
    low = min(a.accuracy for a in arms)
    left.set_ylim(max(0.0, low - 0.1), 1.0)
    left.set_title("accuracy")
    ds = [next(d for d in a.disparities if d.name == disparity) for a in arms]
    err = np.array([[d.value - d.ci_low, d.ci_high - d.value] if np.isfinite(d.ci_low) else [0, 0]
                    for d in ds]).T
    right.bar(names, [d.value for d in ds], yerr=np.maximum(err, 0), capsize=4, color="#c0392b")
    right.set_title(disparity.replace("_", " ") + f" ({result.attribute})", fontsize=10)
    for ax in (left, right):
        ax.tick_params(axis="x", labelsize=8, rotation=15)
        ax.spines[["top", "right"]].set_visible(False)
    fig.tight_layout()
    return fig


def report_figures(report) -> list[tuple[str, Figure]]:
    """(caption, Figure) pairs for the HTML report's fairness section."""
    out = []
    for a in report.attributes:
        out.append((f"Disparities by {a.name} with bootstrap intervals", disparity_chart(report, attribute=a.name)))
    for p in report.proxies:
        out.append((f"Proxies for {p.attribute}", proxy_chart(report, attribute=p.attribute)))
    return out


def mitigation_figures(result) -> list[tuple[str, Figure]]:
    """(caption, Figure) pairs for the fairness-mitigation section."""
    return [(f"Mitigations for {result.attribute}: accuracy and equalized-odds gap", mitigation_bars(result))]
