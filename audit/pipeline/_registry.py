"""The analyzer registry: capabilities as data, so the pipeline and dashboard choose without isinstance.

Each entry names an analyzer's public function `fn(model, data, *, seed, **settings)` and its
result class (with `from_dict`, `metrics()` and `findings`). Settings in a config are checked
against the function's keyword-only parameters, so the function signature is the one schema.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
from typing import Any, Callable

from audit.errors import AuditInputError


@dataclasses.dataclass(frozen=True)
class AnalyzerSpec:
    name: str
    title: str
    function: str | Callable[..., Any]  # "module:attribute" (imported on first use) or the function
    result: str | type  # "module:Class" or the class
    needs_gradients: bool = False
    stochastic: bool = True
    kinds: tuple[str, ...] = ("tabular", "image")
    needs_sensitive: bool = False
    retrains: bool = False

    def load_function(self) -> Callable[..., Any]:
        return _resolve(self.function)

    def load_result(self) -> type:
        return _resolve(self.result)

    def applies_to(self, model, data) -> str | None:
        """None if the analyzer can run on this model and data, else why not."""
        if data.kind not in self.kinds:
            return f"{self.title} applies to {' and '.join(self.kinds)} data, not {data.kind}"
        if self.needs_gradients and not model.differentiable:
            return f"{self.title} needs gradients and the model is marked non-differentiable"
        if self.needs_sensitive and not data.sensitive:
            return f"{self.title} needs sensitive attributes and the data has none"
        return None


def _resolve(path: str | Any) -> Any:
    if not isinstance(path, str):
        return path
    module, attribute = path.split(":")
    return getattr(importlib.import_module(module), attribute)


ANALYZERS: dict[str, AnalyzerSpec] = {spec.name: spec for spec in (
    AnalyzerSpec("explain", "Explanations", "audit.explain:analyze", "audit.explain:ExplanationReport"),
    AnalyzerSpec("robustness", "Adversarial robustness", "audit.robustness:evaluate",
                 "audit.robustness:RobustnessReport", needs_gradients=True),
    AnalyzerSpec("certify", "Certified robustness (IBP, randomized smoothing)", "audit.robustness:certify",
                 "audit.robustness:CertificationReport", needs_gradients=True),
    AnalyzerSpec("explanation_stability", "Explanation stability under attack",
                 "audit.robustness:explanation_stability", "audit.robustness:ExplanationStabilityReport",
                 needs_gradients=True),
    AnalyzerSpec("fairness", "Fairness", "audit.fairness:evaluate", "audit.fairness:FairnessReport",
                 needs_sensitive=True),
    AnalyzerSpec("imbalance", "Class balance, thresholds and calibration", "audit.imbalance:evaluate",
                 "audit.imbalance:ImbalanceReport"),
    AnalyzerSpec("fairness_mitigation", "Fairness mitigations (retrained)", "audit.fairness:mitigate",
                 "audit.fairness:FairnessMitigation", needs_sensitive=True, retrains=True),
    AnalyzerSpec("imbalance_mitigation", "Imbalance mitigations (retrained)", "audit.imbalance:compare_mitigations",
                 "audit.imbalance:MitigationComparison", retrains=True),
    AnalyzerSpec("ood", "Out-of-distribution detection and abstention", "audit.ood:evaluate",
                 "audit.ood:OodReport"),
    AnalyzerSpec("drift", "Data drift", "audit.ood:drift", "audit.ood:DriftReport"),
    AnalyzerSpec("adversarial_detection", "Adversarial-input detection (with adaptive attacks)",
                 "audit.ood:detect_adversarial", "audit.ood:AdversarialDetectionReport", needs_gradients=True),
    AnalyzerSpec("adversarial_training", "Adversarial training (retrained)", "audit.robustness:adversarial_training",
                 "audit.robustness:AdversarialTrainingReport", needs_gradients=True, retrains=True),
)}


def _settings_parameters(name: str) -> dict[str, inspect.Parameter]:
    fn = ANALYZERS[name].load_function()
    return {p.name: p for p in inspect.signature(fn).parameters.values()
            if p.kind is inspect.Parameter.KEYWORD_ONLY and p.name not in ("seed", "progress")}


def _split_union(annotation: str) -> list[str]:
    """'Sequence[str | Sequence[str]] | None' -> ['Sequence[str | Sequence[str]]', 'None']."""
    parts, depth, start = [], 0, 0
    for k, ch in enumerate(annotation):
        depth += ch == "["
        depth -= ch == "]"
        if ch == "|" and depth == 0:
            parts.append(annotation[start:k].strip())
            start = k + 1
    return parts + [annotation[start:].strip()]


def _matches(value: Any, annotation: str) -> bool | None:
    """Whether `value` fits one annotation option; None when the option is not understood."""
    scalar = {"int": lambda v: isinstance(v, int) and not isinstance(v, bool),
              "float": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
              "bool": lambda v: isinstance(v, bool), "str": lambda v: isinstance(v, str),
              "None": lambda v: v is None}
    if annotation in scalar:
        return scalar[annotation](value)
    for container in ("Sequence[", "tuple[", "list["):
        if annotation.startswith(container) and annotation.endswith("]"):
            if not isinstance(value, (list, tuple)):
                return False
            inner = [o for o in _split_union(annotation[len(container):-1].replace(", ...", "")) if o]
            results = [[_matches(item, o) for o in inner] for item in value]
            if any(None in r for r in results):
                return None
            return all(any(r) for r in results)
    if annotation.startswith(("Mapping[", "dict")):
        return isinstance(value, dict)
    return None


def _type_ok(value: Any, parameter: inspect.Parameter) -> bool:
    """Check a config value against the parameter's annotation (or, without one, its default)."""
    annotation = parameter.annotation
    if annotation is inspect.Parameter.empty:
        default = parameter.default
        return default is None or default is inspect.Parameter.empty or _matches(value, type(default).__name__) is not False
    options = _split_union(annotation if isinstance(annotation, str) else getattr(annotation, "__name__", ""))
    verdicts = [_matches(value, option) for option in options]
    return any(v is not False for v in verdicts) if None in verdicts else any(verdicts)


def check_settings(name: str, settings: dict[str, Any], where: Callable[[str], str]) -> None:
    """Unknown keys and values of the wrong type are errors naming the key."""
    parameters = _settings_parameters(name)
    missing = [p for p, spec in parameters.items() if spec.default is inspect.Parameter.empty and p not in settings]
    if missing:
        raise AuditInputError(f"analyzer {name!r} needs the setting(s) {missing} "
                              f"(under analyzers.{name} in the config).")
    for key, value in settings.items():
        if key not in parameters:
            raise AuditInputError(f"unknown setting {where(key)} for analyzer {name!r}; "
                                  f"allowed: {sorted(parameters)}.")
        parameter = parameters[key]
        if not _type_ok(value, parameter):
            expected = parameter.annotation if parameter.annotation is not inspect.Parameter.empty \
                else type(parameter.default).__name__
            raise AuditInputError(f"setting {where(key)} must be of type {expected} "
                                  f"(default {parameter.default!r}), got {value!r}.")


def run_analyzer(name: str, model, data, *, settings: dict[str, Any], seed: int, progress: bool) -> Any:
    fn = ANALYZERS[name].load_function()
    extra = {}
    parameters = inspect.signature(fn).parameters
    if "progress" in parameters:
        extra["progress"] = progress
    if "seed" in parameters:
        extra["seed"] = seed
    return fn(model, data, **extra, **settings)
