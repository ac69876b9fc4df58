"""Retraining for mitigations: the same architecture, training settings and seed as a given model."""

from __future__ import annotations

from typing import Any, Callable, Mapping

from audit.errors import AuditInputError

_TRAIN_KEYS = ("epochs", "batch_size", "learning_rate", "weight_decay", "patience")


def retrainer(model, *, architecture: Any = None, train_options: Mapping[str, Any] | None = None,
              seed: int = 0) -> tuple[Callable[..., Any], dict[str, Any]]:
    """(fit(data, **weights) -> Model, the options used).

    The architecture is `architecture` (a zoo name such as "mlp", or an untrained NNX module)
    or else the zoo architecture recorded in `model.architecture`; every fit starts from the same
    seeded initialisation. Training settings default to those recorded in the model's training
    history, overridden by `train_options` (keyword arguments of `audit.models.train`).
    """
    from audit.models import train, zoo

    options: dict[str, Any] = {}
    history = (getattr(model, "metadata", None) or {}).get("training") or {}
    options.update({k: v for k, v in (history.get("settings") or {}).items() if k in _TRAIN_KEYS})
    options.update(dict(train_options or {}))
    for bad in ("seed", "class_weight", "sample_weight", "progress"):
        if bad in options:
            raise AuditInputError(f"train_options may not set {bad!r}; the mitigation sets it.")
    arch = architecture
    if arch is None:
        recorded = getattr(model, "architecture", None)
        if not recorded:
            raise AuditInputError("cannot retrain this model: it has no recorded zoo architecture; pass "
                                  "architecture='mlp' (or an untrained NNX module) to the mitigation.")
        name, config = recorded["name"], dict(recorded["config"])
        config.pop("name", None)

        def build():
            return zoo.build(name, config, seed=seed)
    else:  # a zoo name or an untrained module: `train` builds / copies it
        def build():
            return arch

    def fit(data, **weights):
        return train(build(), data, seed=seed, progress=False, **options, **weights)

    return fit, options
