"""The one retraining rule every retraining analyzer uses (fairness and imbalance mitigations,
adversarial training): the same architecture, training settings and seed as a given model.

The architecture comes from the model's record: a zoo architecture, or a factory (the user's
own NNX / Linen model, rebuilt and trained with `audit.models.train`), or a user training
function named in the config (`retrain: "package.module:train"`), called as
`fn(data, *, seed, sample_weight=..., class_weight=..., adversarial=..., **train_options)` with
only the arguments it accepts; it returns an `audit.Model` or the parameters of the factory's
architecture (NNX state or Linen variables).
"""

from __future__ import annotations

import inspect
from typing import Any, Callable, Mapping

from audit.errors import AuditInputError

_TRAIN_KEYS = ("epochs", "batch_size", "learning_rate", "weight_decay", "patience")
_NOT_ARCHITECTURE = ("checkpoint", "format", "step")  # where the original weights came from


def retrain_unavailable(model) -> str | None:
    """None when `model` can be retrained, else why not (for a skipped section)."""
    if getattr(model, "architecture", None):
        return None
    return ("the model has no recorded architecture to retrain (it is neither a zoo model nor built by a "
            "factory); name its factory in the config (model: {factory: 'package.module:function'}) or pass "
            "architecture= to the mitigation")


def _accepts(fn, names) -> bool:
    try:
        parameters = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        return True
    return all(n in parameters for n in names)


def _user_fit(model, fn, data, *, seed, weights, options):
    from audit.models._factory import build
    from audit.models._model import Model
    from audit.models._orbax import fill

    arch = {k: v for k, v in model.architecture.items() if k not in _NOT_ARCHITECTURE}
    out = fn(data, seed=seed, **weights, **options)
    if isinstance(out, Model):
        return out if out.architecture else out.replace(architecture=arch)
    template = build(arch, input_shape=data.input_shape, class_names=data.class_names, seed=seed)
    return template.replace(params=fill(template.params, out, source=f"retrain function {arch['retrain']!r}"))


def retrainer(model, *, architecture: Any = None, train_options: Mapping[str, Any] | None = None,
              seed: int = 0, from_weights: bool = False) -> tuple[Callable[..., Any], dict[str, Any]]:
    """(fit(data, *, progress=False, **weights_and_overrides) -> Model, the options used).

    The architecture is `architecture` (a zoo name such as "mlp", or an untrained NNX / Linen
    module) or else the one recorded in `model.architecture` (zoo or factory); every fit starts
    from the same seeded initialisation. With neither, `from_weights=True` fine-tunes the
    model's own weights, otherwise it is an AuditInputError (see `retrain_unavailable`).
    Training settings default to those recorded in the model's training history, overridden by
    `train_options` (keyword arguments of `audit.models.train`). `fit` takes `sample_weight`,
    `class_weight` or `adversarial` (what the analyzer needs) and setting overrides.
    """
    from audit.models._factory import import_object, module_of
    from audit.models._train import train

    options: dict[str, Any] = {}
    history = (getattr(model, "metadata", None) or {}).get("training") or {}
    options.update({k: v for k, v in (history.get("settings") or {}).items() if k in _TRAIN_KEYS})
    options.update(dict(train_options or {}))
    for bad in ("seed", "class_weight", "sample_weight", "progress", "adversarial"):
        if bad in options:
            raise AuditInputError(f"train_options may not set {bad!r}; the analyzer sets it.")
    recorded = dict(getattr(model, "architecture", None) or {})
    if architecture is None and not recorded and not from_weights:
        raise AuditInputError(f"cannot retrain this model: {retrain_unavailable(model)}.")
    user_fn = None
    if architecture is None and recorded.get("retrain"):
        user_fn = import_object(recorded["retrain"], python_path=recorded.get("python_path") or (),
                                what="retrain function")
    output = recorded.get("output", "logits") if architecture is None else "logits"

    def start():
        if architecture is not None:
            return architecture  # a zoo name or an untrained module: `train` builds / copies it
        return module_of(model, seed=seed) if recorded else model

    def fit(data, *, progress: bool = False, **given):
        weights = {k: v for k, v in given.items() if k in ("sample_weight", "class_weight", "adversarial")
                   and v is not None}
        settings = {**options, **{k: v for k, v in given.items() if k not in weights and v is not None
                                  and k not in ("sample_weight", "class_weight", "adversarial")}}
        if user_fn is not None and _accepts(user_fn, weights):
            return _user_fit(model, user_fn, data, seed=seed, weights=weights,
                             options={k: v for k, v in settings.items() if _accepts(user_fn, (k,))})
        trained = train(start(), data, seed=seed, progress=progress, output=output, **settings, **weights)
        if recorded and "factory" in recorded:
            arch = {k: v for k, v in recorded.items() if k not in _NOT_ARCHITECTURE}
            trained = trained.replace(architecture=arch)
        return trained

    return fit, options


def from_config(section: Mapping[str, Any], data, *, seed: int = 0, train_settings=None,
                progress: bool = False) -> Model:
    """The Model a config's `model: {factory: ...}` section names, for `data` (its input shape and
    classes); trained with `audit.models.train` when the section has `train:` and no checkpoint."""
    python_path = section.get("python_path") or []
    python_path = [python_path] if isinstance(python_path, str) else list(python_path)
    common = dict(options=section.get("options") or {}, python_path=python_path,
                  output=section.get("output", "logits"), retrain=section.get("retrain"),
                  features=section.get("features"), seed=seed)
    from audit.models._factory import from_factory

    if section.get("checkpoint"):
        return from_factory(section["factory"], input_shape=data.input_shape, class_names=data.class_names,
                            checkpoint=section["checkpoint"], format=section.get("format", "auto"),
                            step=section.get("step"), **common)
    untrained = from_factory(section["factory"], input_shape=data.input_shape, class_names=data.class_names,
                             **common)
    settings = dict(train_settings or {})
    class_weight = settings.pop("class_weight", None)
    fit, _ = retrainer(untrained, train_options=settings, seed=seed)
    return fit(data, progress=progress, class_weight=class_weight)
