"""Figures from a `CorruptionReport` (common corruptions) and a `TransferReport` (transfer
attacks). Pure: result -> matplotlib Figure, no pyplot state, no model calls."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure


def _heatmap(ax, values: np.ndarray, rows, cols, *, vmin=0.0, vmax=1.0, fmt="{:.0%}"):
    im = ax.imshow(values, cmap="RdYlGn", vmin=vmin, vmax=vmax, aspect="auto")
    ax.set_xticks(range(len(cols)), [str(c) for c in cols], fontsize=8)
    ax.set_yticks(range(len(rows)), [str(r).replace("_", " ") for r in rows], fontsize=8)
    for i in range(values.shape[0]):
        for j in range(values.shape[1]):
            v = values[i, j]
            if np.isfinite(v):
                ax.text(j, i, fmt.format(v), ha="center", va="center", fontsize=7,
                        color="black" if 0.25 < (v - vmin) / max(vmax - vmin, 1e-12) < 0.85 else "white")
    return im


def corruption_grid(report) -> Figure:
    """Accuracy per corruption (rows) and severity (columns), the clean accuracy first."""
    values = np.column_stack([np.full(len(report.corruptions), report.clean_accuracy), report.accuracy])
    fig = Figure(figsize=(1.6 + 0.75 * values.shape[1], 0.9 + 0.42 * values.shape[0]))
    ax = fig.add_subplot()
    im = _heatmap(ax, values, report.corruptions, ["clean", *report.severities])
    ax.set_xlabel("severity")
    ax.set_title(f"Accuracy under common corruptions (n={report.n}; mean corruption error "
                 f"{report.mean_corruption_error:.1%})", fontsize=9)
    fig.colorbar(im, ax=ax, fraction=0.04, pad=0.02)
    fig.tight_layout()
    return fig


def corruption_by_class(report) -> Figure:
    """Accuracy per corruption (rows) and true class (columns), averaged over severities."""
    keep = [k for k in range(len(report.class_names)) if report.class_counts[k] > 0]
    values = np.nanmean(report.class_accuracy[:, :, keep], axis=1)
    fig = Figure(figsize=(1.8 + 0.6 * len(keep), 0.9 + 0.42 * len(report.corruptions)))
    ax = fig.add_subplot()
    im = _heatmap(ax, values, report.corruptions,
                  [f"{report.class_names[k]}\n(n={int(report.class_counts[k])})" for k in keep])
    ax.set_title("Accuracy per true class under each corruption (mean over severities)", fontsize=9)
    fig.colorbar(im, ax=ax, fraction=0.04, pad=0.02)
    fig.tight_layout()
    return fig


def corruption_by_group(report, attribute: str) -> Figure:
    """Accuracy against severity, averaged over corruptions, one line per group of `attribute`."""
    groups = [g for g in report.groups if g.attribute == attribute]
    if not groups:
        raise ValueError(f"no groups for attribute {attribute!r}.")
    fig = Figure(figsize=(6.0, 3.8))
    ax = fig.add_subplot()
    sev = [0, *report.severities]
    for g in groups:
        small = g.n < report.min_group_size
        ax.plot(sev, [g.clean_accuracy, *g.accuracy.mean(axis=0)], marker="o", ms=3, ls=":" if small else "-",
                label=f"{g.group} (n={g.n}{', too small to judge' if small else ''})")
    ax.set(xlabel="severity (0: clean)", ylabel="accuracy, mean over corruptions", ylim=(-0.02, 1.02),
           title=f"Accuracy under corruptions per {attribute}")
    ax.legend(fontsize=8, frameon=False)
    ax.spines[["top", "right"]].set_visible(False)
    fig.tight_layout()
    return fig


def corruption_figures(report) -> list[tuple[str, Figure]]:
    """The report section: the grid, per class, per sensitive attribute."""
    out = [("Accuracy per corruption and severity (green: accuracy kept; red: lost).", corruption_grid(report)),
           ("Accuracy per true class under each corruption: which classes break first.", corruption_by_class(report))]
    for attr in dict.fromkeys(g.attribute for g in report.groups):
        out.append((f"Accuracy under corruptions per {attr} group (dotted: too few rows to judge).",
                    corruption_by_group(report, attr)))
    return out
