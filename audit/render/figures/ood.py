"""OOD figures from an `OodReport`: AUROC per detector and shift, score histograms in vs out,
risk-coverage curves. Pure functions on the result (matplotlib Figure API, no pyplot state)."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure


def auroc_heatmap(report) -> Figure:
    """AUROC of every detector (rows) on every shift (columns); 0.5 is chance, 1 is perfect."""
    grid = np.array([[report.separation(d, s).auroc for s in report.shifts] for d in report.detectors])
    fig = Figure(figsize=(max(5.0, 1.0 + 0.9 * len(report.shifts)), 1.4 + 0.45 * len(report.detectors)))
    ax = fig.subplots()
    image = ax.imshow(grid, cmap="RdYlGn", vmin=0.5, vmax=1.0, aspect="auto")
    for (i, j), v in np.ndenumerate(grid):
        ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=8)
    ax.set_xticks(range(len(report.shifts)), report.shifts, rotation=30, ha="right", fontsize=8)
    ax.set_yticks(range(len(report.detectors)), report.detectors, fontsize=8)
    ax.set_title("AUROC: can each detector tell shifted inputs from test inputs?")
    fig.colorbar(image, ax=ax, shrink=0.8, label="AUROC")
    fig.tight_layout()
    return fig


def score_histograms(report, *, shift: str | None = None) -> Figure:
    """Test vs shifted scores of each detector on one shift (default: the hardest one)."""
    if shift is None:
        shift = min(report.shifts, key=lambda s: report.best(s).auroc)
    k = len(report.detectors)
    cols = min(3, k)
    rows = (k + cols - 1) // cols
    fig = Figure(figsize=(3.4 * cols, 2.4 * rows))
    axes = np.atleast_1d(fig.subplots(rows, cols)).ravel()
    for ax, d in zip(axes, report.detectors):
        a, b = report.inlier_scores[d], report.outlier_scores[shift][d]
        both = np.concatenate([a, b])
        bins = np.linspace(np.quantile(both, 0.01), np.quantile(both, 0.99) + 1e-12, 30)
        ax.hist(a, bins=bins, alpha=0.6, label="test", color="#2c7fb8")
        ax.hist(b, bins=bins, alpha=0.6, label=shift, color="#d95f0e")
        ax.set_title(f"{d} (AUROC {report.separation(d, shift).auroc:.2f})", fontsize=9)
        ax.tick_params(labelsize=7)
        ax.spines[["top", "right"]].set_visible(False)
    for ax in axes[k:]:
        ax.set_visible(False)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncols=2, frameon=False, fontsize=8)
    fig.suptitle(f"Scores on the test rows and on '{shift}' (higher = more unusual)", fontsize=10)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    return fig


def risk_coverage_curves(report) -> Figure:
    """Error rate of the kept rows as the model abstains on more of them, one line per detector."""
    fig = Figure(figsize=(5.5, 3.4))
    ax = fig.subplots()
    for a in report.abstention:
        ax.plot(a.coverage_grid, a.risk, marker=".", label=f"{a.detector} (AURC {a.aurc:.3f})")
    ax.set_xlabel("coverage (share of test rows the model answers)")
    ax.set_ylabel("error rate of answered rows")
    ax.set_title("Selective prediction: risk against coverage")
    ax.legend(frameon=False, fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.spines[["top", "right"]].set_visible(False)
    fig.tight_layout()
    return fig


def report_figures(report) -> list[tuple[str, Figure]]:
    """The OOD section's figures, in reading order."""
    if not report.shifts:
        return [("Selective prediction: error of the answered rows against coverage.", risk_coverage_curves(report))]
    hardest = min(report.shifts, key=lambda s: report.best(s).auroc)
    return [("AUROC of each detector on each shift (green: separated; 0.5 is chance).", auroc_heatmap(report)),
            (f"Score distributions on the hardest shift, '{hardest}'.", score_histograms(report, shift=hardest)),
            ("Selective prediction: error of the answered rows as the model abstains on its most unusual inputs.",
             risk_coverage_curves(report))]


def drift_psi(report) -> Figure:
    """PSI per raw column, drifted columns (Holm-adjusted p < alpha) in red, the 0.1 / 0.25 rules of thumb dashed."""
    cols = sorted(report.columns, key=lambda c: c.psi)
    fig = Figure(figsize=(6.0, 0.9 + 0.3 * len(cols)))
    ax = fig.subplots()
    colours = ["#c0392b" if c.p_adjusted < report.alpha else "#7f8c8d" for c in cols]
    ax.barh([c.column for c in cols], [c.psi for c in cols], color=colours)
    for x in (0.1, 0.25):
        ax.axvline(x, ls="--", lw=0.8, color="#555")
    ax.set_xlabel("population stability index (red: drifted)")
    ax.set_title(f"Drift of each column: training rows vs {report.current}")
    ax.tick_params(labelsize=8)
    ax.spines[["top", "right"]].set_visible(False)
    fig.tight_layout()
    return fig


def drift_figures(report) -> list[tuple[str, Figure]]:
    if not report.columns:
        return []
    return [("Which columns moved: population stability index per raw column (red: significant after Holm's "
             "correction; dashed: 0.1 and 0.25, the usual 'some' and 'major' shift marks).", drift_psi(report))]


def detection_bars(report) -> Figure:
    """Detection rate of each detector on PGD examples and on the adaptive attack, side by side."""
    names = [d.detector for d in report.detections]
    x = np.arange(len(names))
    fig = Figure(figsize=(max(4.5, 1.3 * len(names) + 1.5), 3.2))
    ax = fig.subplots()
    ax.bar(x - 0.2, [d.pgd_detected for d in report.detections], 0.4, label="PGD", color="#7f8c8d")
    ax.bar(x + 0.2, [d.adaptive_detected for d in report.detections], 0.4, label="adaptive attack", color="#c0392b")
    ax.axhline(report.fpr, ls="--", lw=0.8, color="#555")
    ax.set_xticks(x, names, fontsize=8)
    ax.set_ylim(0, 1)
    ax.set_ylabel(f"detected (at {report.fpr:.0%} false alarms)")
    ax.set_title(f"Adversarial-input detection, eps {report.eps:g}")
    ax.legend(frameon=False, fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.spines[["top", "right"]].set_visible(False)
    fig.tight_layout()
    return fig


def detection_figures(report) -> list[tuple[str, Figure]]:
    return [("Share of successful adversarial examples each detector flags: plain PGD (grey) and an attack that "
             "also lowers the detector's score (red); dashed: the false-alarm rate on clean rows.",
             detection_bars(report))]
