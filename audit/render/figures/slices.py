"""Error-analysis figure and table from a `SliceReport`: the top cohorts' error with Wilson intervals
against the rest's error, and the cohorts as a table.

Pure functions: they read the result only (no model calls, no pyplot state).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from matplotlib.figure import Figure


def cohort_chart(report, *, top: int = 8) -> Figure:
    """The `top` ranked cohorts' error (dot) with its 95% Wilson interval (bar), red when significantly
    worse than the rest, and each cohort's rest-of-split error (tick); the split's error as a line."""
    cohorts = report.cohorts[:top]
    labels = [c.name if len(c.name) <= 34 else " and\n".join(c.conditions) for c in cohorts]
    rows = max(len(cohorts), 1)
    fig = Figure(figsize=(7.5, 0.9 + 0.55 * rows + 0.12 * sum(label.count("\n") for label in labels)))
    ax = fig.subplots()
    y = np.arange(len(cohorts))[::-1]
    for yy, c in zip(y, cohorts):
        color = "#c0392b" if c.significant else "0.55"
        ax.plot([c.error_low, c.error_high], [yy, yy], color=color, lw=2.5, alpha=0.6)
        ax.plot([c.error], [yy], "o", color=color)
        ax.plot([c.rest_error], [yy], "|", color="#2c3e50", ms=12, mew=2)
    ax.axvline(report.error, color="0.3", ls=":", lw=1)
    ax.set_yticks(y, labels, fontsize=8)
    ax.set_ylim(-0.7, rows - 0.3)
    ax.set_xlim(0, min(1.0, max([c.error_high for c in cohorts] + [report.error]) * 1.1 + 0.02))
    ax.set_xlabel("error rate (dot: cohort; bar: 95% Wilson interval;\n"
                  "tick: rest of the split; dotted line: whole split)", fontsize=8)
    correction = {"holm": "Holm", "bh": "Benjamini-Hochberg"}.get(report.correction, report.correction)
    ax.set_title(f"{len(report.significant)} of {report.n_tried} cohorts tried significantly worse\n"
                 f"(red; {correction} correction, alpha {report.alpha:g})", fontsize=9)
    ax.spines[["top", "right"]].set_visible(False)
    fig.tight_layout()
    return fig


def report_figures(report) -> list[tuple[str, Figure]]:
    if not report.cohorts:
        return []
    return [("Cohorts with the highest error, ranked by how surely they are worse than the rest "
             "(one-sided Fisher exact test, corrected for every cohort tried)", cohort_chart(report))]


def cohort_tables(report, *, top: int = 15) -> list[dict[str, Any]]:
    """The ranked cohorts as a table; significant ones are marked. Plain text (the template escapes it)."""
    if not report.cohorts:
        return []
    rows = []
    for k, c in enumerate(report.cohorts[:top], start=1):
        mark = c.significant
        rows.append((str(k), [(c.name, mark), (str(c.size), False), (f"{c.error:.3f}", mark),
                              (f"{c.error_low:.3f} to {c.error_high:.3f}", False), (f"{c.rest_error:.3f}", False),
                              (f"{c.error_ratio:.2f}", mark), (f"{c.p_adjusted:.2g}", mark)]))
    return [{"caption": (f"Top {len(rows)} of {report.n_tried} cohorts tried on the {report.split} split "
                         f"({report.n_rows} rows, error {report.error:.3f}); marked: significantly worse."),
             "columns": ["cohort", "rows", "error", "95% interval", "rest's error", "ratio", "corrected p"],
             "rows": rows}]
