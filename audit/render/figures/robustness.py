"""Robustness figures from a `RobustnessReport`: robust-accuracy curves (per attack, per class,
per sensitive group), the minimal-perturbation distribution (PGD bisection beside C&W L2),
adversarial examples, and tables of AutoAttack's per-stage shares and the per-class distances.

Pure functions drawn with matplotlib's Figure API (no pyplot state, no show()); they read the
report only and never call the model.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from matplotlib.figure import Figure

_STYLE = {"ensemble": dict(color="black", lw=2.4), "gaussian_noise": dict(color="0.55", ls=":"),
          "uniform_noise": dict(color="0.35", ls="--")}


def robust_accuracy_curves(report, *, by: str = "attack", attribute: str | None = None,
                           intervals: bool = True) -> Figure:
    """Robust accuracy against eps.

    `by="attack"`: one line per attack, the ensemble (worst case) in bold, noise baselines
    dotted. `by="class"`: the ensemble per true class. `by="group"`: the ensemble per group of
    the sensitive `attribute` (default: the first one). Shaded bands are bootstrap intervals.
    """
    if by == "attack":
        curves = report.curves_of("attack") + report.curves_of("baseline")
        title = "Robust accuracy per attack"
    elif by == "class":
        curves, title = report.curves_of("class"), "Robust accuracy (ensemble) per class"
    elif by == "group":
        attrs = report.attributes
        if not attrs:
            raise ValueError("this report has no sensitive attributes; use by='attack' or 'class'.")
        attribute = attribute or attrs[0]
        if attribute not in attrs:
            raise ValueError(f"no groups for attribute {attribute!r}; have {list(attrs)}.")
        curves = report.curves_of("group", attribute=attribute)
        title = f"Robust accuracy (ensemble) per {attribute}"
    else:
        raise ValueError(f"by={by!r} must be 'attack', 'class' or 'group'.")
    fig = Figure(figsize=(6.5, 4.2))
    ax = fig.subplots()
    eps = np.asarray(report.eps)
    for c in curves:
        style = _STYLE.get(c.name, {})
        label = c.name if by == "attack" else f"{c.name} (n={c.n})"
        (line,) = ax.plot(eps, c.accuracy, marker="o", ms=3, label=label, **style)
        if intervals and np.isfinite(c.low).all():
            ax.fill_between(eps, c.low, c.high, color=line.get_color(), alpha=0.12, lw=0)
    ax.axhline(1.0 / len(report.class_names), color="0.7", lw=0.8, ls="-.")
    ax.set_xlabel(f"eps ({report.norm})")
    ax.set_ylabel("robust accuracy")
    ax.set_ylim(-0.02, 1.02)
    ax.set_title(title)
    ax.legend(fontsize=8, frameon=False, loc="upper right")
    ax.spines[["top", "right"]].set_visible(False)
    fig.tight_layout()
    return fig


def _finite(d) -> np.ndarray:
    d = np.asarray(d, np.float64)
    return d[np.isfinite(d)]


def min_perturbation_histogram(report, *, bins: int = 20) -> Figure:
    """Distribution of per-example minimal perturbations (PGD bisection); censored examples
    (no adversarial within the search range) are drawn separately at the range's end. When C&W
    ran, its L2 distances (over every sampled row) are drawn beside them as an outline."""
    fig = Figure(figsize=(6.0, 3.6))
    ax = fig.subplots()
    d, found = np.asarray(report.min_distance), np.asarray(report.min_found, bool)
    cw = _finite(report.cw_distance)
    top = max([report.min_eps_max if d.size else 0.0, float(cw.max()) if cw.size else 0.0]) or 1.0
    if d.size:
        ax.hist(d[found], bins=bins, range=(0, report.min_eps_max), color="#008bfb", label="PGD bisection")
        if (~found).any():
            ax.bar([report.min_eps_max], [(~found).sum()], width=report.min_eps_max / bins, color="0.6",
                   label=f"> {report.min_eps_max:g} (not found)")
        ax.axvline(report.median_min_perturbation, color="black", ls="--",
                   label=f"median {report.median_min_perturbation:.3g}")
    if cw.size:
        ax.hist(cw, bins=bins, range=(0, top), histtype="step", color="#ff0051", lw=1.6,
                label=f"C&W L2 (n={report.cw_distance.size}, {report.cw_distance.size - cw.size} not found)")
        ax.axvline(report.median_cw_distance, color="#ff0051", ls=":",
                   label=f"C&W median {report.median_cw_distance:.3g}")
    if d.size or cw.size:
        ax.legend(fontsize=8, frameon=False)
    ax.set_xlabel(f"minimal adversarial perturbation ({'l2' if cw.size and not d.size else report.norm})")
    ax.set_ylabel("examples")
    ax.spines[["top", "right"]].set_visible(False)
    fig.tight_layout()
    return fig


def _quartiles(d: np.ndarray) -> str:
    """'median (q1 to q3)' of distances, not-found (NaN) rows counted as infinitely far."""
    if d.size == 0:
        return "n/a"
    q1, q2, q3 = np.quantile(np.nan_to_num(np.asarray(d, np.float64), nan=np.inf), [0.25, 0.5, 0.75],
                             method="inverted_cdf")
    return f"{q2:.3g} ({q1:.3g} to {q3:.3g})"


def autoattack_table(report) -> list[dict[str, Any]]:
    """AutoAttack's per-stage shares per eps: which stage broke the rows (a table, plain text)."""
    if not report.autoattack_share:
        return []
    cols = [j for j, e in enumerate(report.eps) if e > 0]
    rows = [(stage, [(f"{share[j]:.1%}", False) for j in cols]) for stage, share in report.autoattack_share.items()]
    total = [sum(float(share[j]) for share in report.autoattack_share.values()) for j in cols]
    rows.append(("all stages", [(f"{t:.1%}", True) for t in total]))
    return [{"caption": ("AutoAttack, stage by stage: the share of the correctly classified rows each stage broke "
                         "first (stages run in order on the rows still robust; the total is AutoAttack's attack "
                         "success rate). A large Square share after the gradient stages hints at gradient masking."),
             "columns": [f"eps {report.eps[j]:g}" for j in cols], "rows": rows}]


def distance_table(report) -> list[dict[str, Any]]:
    """Minimal perturbation per true class: median and quartiles of PGD bisection's distances
    and, when C&W ran, of C&W's L2 distances (a table, plain text)."""
    d, cw, labels = np.asarray(report.min_distance), np.asarray(report.cw_distance), np.asarray(report.labels)
    if (d.size == 0 and cw.size == 0) or labels.size == 0:
        return []
    columns, rows = [], []
    if d.size:
        columns += ["PGD rows", f"PGD bisection ({report.norm})"]
    if cw.size:
        columns += ["C&W rows", "C&W L2"]
    for ci, name in [(None, "all classes"), *enumerate(report.class_names)]:
        cells = []
        if d.size:
            sel = np.ones(d.size, bool) if ci is None else labels[:d.size] == ci
            cells += [(str(int(sel.sum())), False), (_quartiles(d[sel]), False)]
        if cw.size:
            sel = np.ones(cw.size, bool) if ci is None else labels[:cw.size] == ci
            cells += [(str(int(sel.sum())), False), (_quartiles(cw[sel]), False)]
        rows.append((name, cells))
    return [{"caption": ("Distance to the nearest adversarial example per true class: median (quartiles). PGD "
                         "bisection is censored at the largest budget; C&W rows with none found count as infinitely "
                         "far; rows already misclassified are at 0."),
             "columns": columns, "rows": rows}]


def report_tables(report) -> list[dict[str, Any]]:
    """The robustness section's tables: AutoAttack's stages, then distances per class."""
    return autoattack_table(report) + distance_table(report)


def adversarial_examples(report, *, max_examples: int = 6, max_features: int = 8) -> Figure:
    """Images: rows of original / perturbation / adversarial with predictions and confidences.
    Tabular: per example, a bar chart of the inputs the attack changed (largest changes)."""
    examples = list(report.examples)[:max_examples]
    if not examples:
        fig = Figure(figsize=(5, 1.2))
        fig.text(0.5, 0.5, "no successful adversarial examples", ha="center", va="center")
        return fig
    names = report.class_names
    if report.kind == "image":
        fig = Figure(figsize=(6.0, 2.0 * len(examples)))
        axes = fig.subplots(len(examples), 3, squeeze=False)
        for row, ex in zip(axes, examples):
            delta = ex.perturbation
            span = float(np.abs(delta).max()) or 1.0
            panels = ((ex.original, f"{names[ex.clean_prediction]} ({ex.clean_confidence:.0%})", "gray", 0, 1),
                      (delta, f"{ex.attack}, eps={ex.eps:g}", "RdBu_r", -span, span),
                      (ex.adversarial, f"{names[ex.adversarial_prediction]} ({ex.adversarial_confidence:.0%})",
                       "gray", 0, 1))
            for ax, (img, title, cmap, lo, hi) in zip(row, panels):
                img = img[..., 0] if img.ndim == 3 and img.shape[-1] == 1 else img
                ax.imshow(np.clip(img, lo, hi) if cmap == "gray" else img, cmap=cmap, vmin=lo, vmax=hi)
                ax.set_title(title, fontsize=8)
                ax.set_xticks([]), ax.set_yticks([])
        fig.tight_layout()
        return fig
    fig = Figure(figsize=(6.5, 1.0 + 0.32 * max_features * len(examples)))
    axes = fig.subplots(len(examples), 1, squeeze=False)[:, 0]
    for ax, ex in zip(axes, examples):
        delta = ex.perturbation.ravel()
        order = [j for j in np.argsort(-np.abs(delta), kind="stable")[:max_features] if delta[j] != 0]
        labels = [report.feature_names[j] if j < len(report.feature_names) else f"input {j}" for j in order]
        values = delta[order]
        ax.barh(np.arange(len(order)), values, color=["#ff0051" if v > 0 else "#008bfb" for v in values])
        ax.set_yticks(np.arange(len(order)), [f"{n} = {ex.original.ravel()[j]:.2f}" for n, j in zip(labels, order)],
                      fontsize=8)
        ax.invert_yaxis()
        ax.axvline(0, color="0.4", lw=0.8)
        ax.set_title(f"{ex.attack}, eps={ex.eps:g}: {names[ex.label]} -> {names[ex.adversarial_prediction]} "
                     f"({ex.adversarial_confidence:.0%}); was {names[ex.clean_prediction]} "
                     f"({ex.clean_confidence:.0%})", fontsize=8)
        ax.spines[["top", "right"]].set_visible(False)
    axes[-1].set_xlabel("change (model input units)")
    fig.tight_layout()
    return fig
