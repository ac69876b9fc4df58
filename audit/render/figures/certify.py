"""Figures for Robustness II: certified vs empirical accuracy, smoothing radii, adversarial training
before/after, explanation stability; and the per-eps table (an HTML table, not a picture).
Pure: result -> Figure (or table rows)."""

from __future__ import annotations

from typing import Any

import numpy as np
from matplotlib.figure import Figure

_EMPIRICAL_STYLE = {"worst_case": dict(color="black", lw=2.2)}
_CERTIFIED_STYLE = {"ibp": dict(color="tab:red", ls="--", marker="s", lw=2),
                    "smoothing": dict(color="tab:purple", ls="--", marker="D", lw=2)}


def certified_accuracy_curves(report) -> Figure:
    """Accuracy against eps: attacks (solid; black = worst case) and certificates (dashed)."""
    fig = Figure(figsize=(6.4, 4.0))
    ax = fig.add_subplot()
    for name, acc in report.accuracy.items():
        if name == "clean":
            ax.axhline(acc[0], color="grey", ls=":", lw=1, label="clean")
            continue
        style = _CERTIFIED_STYLE.get(name) or _EMPIRICAL_STYLE.get(name) or dict(lw=1.2, marker="o", ms=3)
        label = f"{name} (certified)" if name in _CERTIFIED_STYLE else name.replace("_", " ")
        ax.plot(report.eps, acc, label=label, **style)
    ax.set(xlabel=f"eps ({report.norm})", ylabel="accuracy", ylim=(-0.02, 1.02),
           title="Empirical robust accuracy (upper bounds) vs certified (lower bounds)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower left")
    fig.tight_layout()
    return fig


def certification_tables(report) -> list[dict[str, Any]]:
    """The per-eps numbers as an HTML table: one row per eps, one column per attack and certificate;
    a certificate above the attacks' worst case (impossible for a sound bound) is marked."""
    columns = [c for c in report.columns if c != "clean"]
    worst = report.accuracy.get("worst_case")
    rows = []
    for j, row in enumerate(report.table()):
        cells = []
        for c in columns:
            broken = c in _CERTIFIED_STYLE and worst is not None and row[c] > float(worst[j]) + 1e-9
            cells.append((f"{row[c]:.3f}", bool(broken)))
        rows.append((f"eps {row['eps']:g}", cells))
    violated = [f for f in report.findings if f.id.startswith("certified_le_empirical") and f.status == "fail"]
    clean = f"clean accuracy {float(report.accuracy['clean'][0]):.3f}; " if "clean" in report.accuracy else ""
    return [{"caption": (f"Accuracy per eps ({report.norm}): {clean}attacks give upper bounds, certificates "
                         "(certified) lower bounds. Certified <= empirical "
                         + ("is BROKEN in the marked cells." if violated else "holds.")),
             "columns": [f"{c} (certified)" if c in _CERTIFIED_STYLE else c.replace("_", " ") for c in columns],
             "rows": rows}]


def smoothing_radius_histogram(report) -> Figure:
    """Certified L2 radius of the smoothed classifier per example (0: wrong or abstained)."""
    fig = Figure(figsize=(5.6, 3.4))
    ax = fig.add_subplot()
    ok = report.smoothing_prediction == report.labels
    r = np.where(ok, report.smoothing_radius, 0.0)
    ax.hist(r, bins=30, color="tab:purple", alpha=0.8)
    for e in report.eps[report.eps > 0]:
        ax.axvline(e * report.radius_scale, color="grey", ls=":", lw=1)
    ax.set(xlabel="certified L2 radius (dotted: the radius each eps needs)", ylabel="examples",
           title=f"Randomized smoothing, sigma={report.smoothing['sigma']:g}")
    fig.tight_layout()
    return fig


def before_after(report) -> Figure:
    """Worst-case robust accuracy against eps before and after adversarial training, and per group."""
    groups = [c for c in report.after.curves_of("group")]
    fig = Figure(figsize=(10.0 if groups else 6.0, 3.8))
    ax = fig.add_subplot(1, 2 if groups else 1, 1)
    for name, rep, color in (("before", report.before, "tab:grey"), ("after", report.after, "tab:blue")):
        c = rep.curve("ensemble")
        ax.plot(rep.eps, c.accuracy, marker="o", color=color, label=f"{name} (clean {rep.clean_accuracy:.2f})")
        ax.fill_between(rep.eps, c.low, c.high, color=color, alpha=0.15)
    ax.set(xlabel=f"eps ({report.after.norm})", ylabel="worst-case robust accuracy", ylim=(-0.02, 1.02),
           title=f"{report.recipe['method'].upper()} adversarial training, eps={report.recipe['eps']:g}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    if groups:
        j = int(np.argmin(np.abs(report.after.eps - report.recipe["eps"])))
        bx = fig.add_subplot(1, 2, 2)
        labels = [f"{g.attribute}={g.name}" for g in groups]
        before = {(g.attribute, g.name): g.accuracy[j] for g in report.before.curves_of("group")}
        pos = np.arange(len(groups))
        bx.barh(pos + 0.2, [before.get((g.attribute, g.name), np.nan) for g in groups], 0.4, color="tab:grey",
                label="before")
        bx.barh(pos - 0.2, [g.accuracy[j] for g in groups], 0.4, color="tab:blue", label="after")
        bx.set_yticks(pos, labels, fontsize=7)
        bx.set(xlabel=f"robust accuracy at eps={report.after.eps[j]:g}", xlim=(0, 1), title="per group")
        bx.legend(fontsize=7)
    fig.tight_layout()
    return fig


def explanation_stability_bars(report) -> Figure:
    """Top-k overlap per method and eps: label-preserving PGD vs the explanation attack."""
    fig = Figure(figsize=(6.4, 3.8))
    ax = fig.add_subplot()
    eps = [e for e in report.eps if e > 0] or list(report.eps)
    width = 0.8 / max(1, 2 * len(eps))
    pos = np.arange(len(report.methods))
    for i, e in enumerate(eps):
        j = int(np.flatnonzero(report.eps == e)[0])
        ax.bar(pos + (2 * i) * width, [report.top_k[m][j] for m in report.methods], width,
               label=f"PGD, eps={e:g}", color="tab:blue", alpha=0.4 + 0.6 * (i + 1) / len(eps))
        ax.bar(pos + (2 * i + 1) * width, [report.attack_top_k[m][j] for m in report.methods], width,
               label=f"explanation attack, eps={e:g}", color="tab:red", alpha=0.4 + 0.6 * (i + 1) / len(eps))
    ax.set_xticks(pos + width * (2 * len(eps) - 1) / 2, report.methods, fontsize=8)
    ax.set(ylabel=f"top-{report.k} overlap with the clean attribution", ylim=(0, 1.05),
           title="Explanation stability when the prediction does not change")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def certify_figures(report) -> list[tuple[str, Figure]]:
    figures = [("Empirical robust accuracy under each attack (an upper bound on true robustness) and "
                "certified accuracy (a lower bound); certified must stay below empirical.",
                certified_accuracy_curves(report))]
    if report.smoothing_radius.size:
        figures.append(("Certified L2 radius of the smoothed classifier per example.",
                        smoothing_radius_histogram(report)))
    return figures


def adversarial_training_figures(report) -> list[tuple[str, Figure]]:
    return [("Before / after adversarial training: worst-case robust accuracy (with bootstrap band) and per "
             "sensitive group.", before_after(report))]


def explanation_stability_figures(report) -> list[tuple[str, Figure]]:
    return [("How much of the top-k attribution survives a perturbation that keeps the prediction.",
             explanation_stability_bars(report))]
