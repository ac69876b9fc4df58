"""The model card's figure: training curves from the training history a trained model records.

Pure: a history mapping (`audit.models.train`'s `History.to_dict()`, kept in the model's metadata
and the report's) -> Figure. Legends sit below the axes, never over the curves.
"""

from __future__ import annotations

from typing import Any, Mapping

from matplotlib.figure import Figure

_LABELS = {"train_loss": "training loss", "val_loss": "validation loss", "val_accuracy": "validation accuracy",
           "val_robust_loss": "validation loss under attack",
           "val_robust_accuracy": "validation accuracy under attack"}


def _series(epochs, suffix: str) -> dict[str, list[float]]:
    keys = [k for k in epochs[0] if k.endswith(suffix)] if epochs else []
    return {k: [float(e.get(k, float("nan"))) for e in epochs] for k in keys}


def training_curves(history: Mapping[str, Any]) -> Figure:
    """Loss (left) and accuracy (right) per epoch; a dotted line marks the epoch whose weights were kept."""
    epochs = list(history.get("epochs") or [])
    x = [int(e.get("epoch", i + 1)) for i, e in enumerate(epochs)]
    panels = [(name, s) for name, s in (("loss", _series(epochs, "loss")), ("accuracy", _series(epochs, "accuracy")))
              if s]
    fig = Figure(figsize=(4.2 * max(1, len(panels)), 3.4))
    for k, (name, series) in enumerate(panels):
        ax = fig.add_subplot(1, len(panels), k + 1)
        for key, values in series.items():
            ax.plot(x, values, marker="o" if len(x) <= 30 else None, ms=3, label=_LABELS.get(key, key.replace("_", " ")))
        best = history.get("best_epoch")
        if best:
            ax.axvline(best, color="0.4", ls=":", lw=1.2, label=f"kept: epoch {best}")
        ax.set(xlabel="epoch", ylabel=name)
        if name == "accuracy":
            ax.set_ylim(min(0.0, ax.get_ylim()[0]), 1.02)
        ax.grid(alpha=0.3)
        ax.spines[["top", "right"]].set_visible(False)
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.22), ncols=2, frameon=False, fontsize=9)
    fig.tight_layout()
    return fig
