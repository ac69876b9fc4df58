"""Figures from a `TransferReport`: target accuracy under transferred attacks against white-box
PGD. Pure: result -> matplotlib Figure, no pyplot state, no model calls."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure


def transfer_curves(report) -> Figure:
    """Target accuracy against eps: one line per transferred attack, white-box PGD in black."""
    fig = Figure(figsize=(6.4, 4.0))
    ax = fig.add_subplot()
    eps = np.concatenate([[0.0], report.eps])
    for a in report.attacks:
        ax.plot(eps, np.concatenate([[report.clean_accuracy], report.accuracy[a]]), marker="o", ms=3,
                label=f"{a} from the {report.surrogate} surrogate")
    if np.isfinite(report.white_box_accuracy).any():
        ax.plot(eps, np.concatenate([[report.clean_accuracy], report.white_box_accuracy]), color="black", lw=2.2,
                ls="--", label="white-box PGD on the target")
    ax.set(xlabel=f"eps ({report.norm})", ylabel="target accuracy", ylim=(-0.02, 1.02),
           title=f"Transfer attacks (surrogate trained on {'true' if report.labels == 'data' else 'target'} "
                 f"labels; agreement {report.agreement:.0%})")
    ax.legend(fontsize=8, frameon=False)
    ax.spines[["top", "right"]].set_visible(False)
    fig.tight_layout()
    return fig


def transfer_figures(report) -> list[tuple[str, Figure]]:
    return [("Target accuracy on adversarials crafted on a surrogate (black-box attacker) against white-box "
             "PGD on the target: transfer below white-box means masked gradients.", transfer_curves(report))]
