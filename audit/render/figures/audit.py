"""Figures about the audit as a whole: the findings scorecard and where the time went."""

from __future__ import annotations

from matplotlib.figure import Figure

STATUS_COLORS = {"pass": "#2e7d32", "warn": "#ef6c00", "fail": "#c62828"}


def scorecard(report) -> Figure:
    """Stacked bar per section: how many findings passed, warned, failed."""
    groups: dict[str, dict[str, int]] = {}
    for finding in report.findings:
        section = finding.id.split(":", 1)[0]
        if section == "policy":
            section = finding.metric.split(".", 1)[0] if finding.metric else "policy"
        counts = groups.setdefault(section, {"pass": 0, "warn": 0, "fail": 0})
        counts[finding.status] += 1
    fig = Figure(figsize=(6.5, 0.5 + 0.45 * max(1, len(groups))))
    ax = fig.subplots()
    names = list(groups)
    left = [0] * len(names)
    for status, color in STATUS_COLORS.items():
        values = [groups[n][status] for n in names]
        ax.barh(names, values, left=left, color=color, label=status)
        left = [a + b for a, b in zip(left, values)]
    ax.set_xlabel("findings")
    ax.invert_yaxis()
    ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncols=3, frameon=False)
    ax.spines[["top", "right"]].set_visible(False)
    return fig


def durations(report) -> Figure:
    """Seconds per section."""
    items = [(s.title, s.seconds) for s in report.sections.values() if s.result is not None]
    fig = Figure(figsize=(6.5, 0.5 + 0.4 * max(1, len(items))))
    ax = fig.subplots()
    ax.barh([t for t, _ in items], [s for _, s in items], color="#546e7a")
    ax.set_xlabel("seconds")
    ax.invert_yaxis()
    ax.spines[["top", "right"]].set_visible(False)
    return fig
