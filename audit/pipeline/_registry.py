"""The analyzer registry: capabilities as data, so the pipeline and dashboard choose without isinstance.

Each entry holds an analyzer's public function `fn(model, data, *, seed, **settings)` and its
result class (with `from_dict`, `metrics()` and `findings`), imported directly so that the
pipeline's arrows are visible to readers and tools. Settings in a config are checked against the
function's keyword-only parameters, so the function signature is the one schema. `ANALYZERS` is
the default registry; `run`, `AuditConfig` and `AuditReport.load` take another one (a mapping of
name -> AnalyzerSpec) to add or replace analyzers without changing the global.
"""

from __future__ import annotations

import dataclasses
import inspect
from typing import Any, Callable, Mapping

from audit import explain, fairness, imbalance, missing, ood, recourse, robustness, slices
from audit.errors import AuditInputError
from audit.models._xla import for_model


@dataclasses.dataclass(frozen=True)
class AnalyzerSpec:
    name: str
    title: str
    function: Callable[..., Any]  # the analyzer: fn(model, data, *, seed, **settings) -> result
    result: type  # its result class (from_dict, metrics(), findings)
    needs_gradients: bool = False
    stochastic: bool = True
    kinds: tuple[str, ...] = ("tabular", "image")
    needs_sensitive: bool = False
    retrains: bool = False
    needs_architecture: bool = False  # retrains from the model's recorded architecture (zoo or factory)
    # counts over a file larger than memory: sink(model, stream, *, seed, **settings) with
    # update(chunk, proba) and result(sample_proba) (audit.data.open_stream); None: runs on the sample
    stream_sink: Callable[..., Any] | None = None

    def applies_to(self, model, data) -> str | None:
        """None if the analyzer can run on this model and data, else why not."""
        if data.kind not in self.kinds:
            return f"{self.title} applies to {' and '.join(self.kinds)} data, not {data.kind}"
        if self.needs_gradients and not model.differentiable:
            return f"{self.title} needs gradients and the model is marked non-differentiable"
        if self.needs_sensitive and not data.sensitive:
            return f"{self.title} needs sensitive attributes and the data has none"
        if self.needs_architecture:
            from audit.models import retrain_unavailable

            return retrain_unavailable(model)
        return None


Registry = Mapping[str, AnalyzerSpec]

ANALYZERS: dict[str, AnalyzerSpec] = {spec.name: spec for spec in (
    AnalyzerSpec("explain", "Explanations", explain.analyze, explain.ExplanationReport),
    AnalyzerSpec("robustness", "Adversarial robustness", robustness.evaluate,
                 robustness.RobustnessReport, needs_gradients=True),
    AnalyzerSpec("corruptions", "Common corruptions", robustness.corruptions, robustness.CorruptionReport),
    AnalyzerSpec("certify", "Certified robustness (IBP, randomized smoothing)", robustness.certify,
                 robustness.CertificationReport, needs_gradients=True),
    AnalyzerSpec("explanation_stability", "Explanation stability under attack",
                 robustness.explanation_stability, robustness.ExplanationStabilityReport,
                 needs_gradients=True),
    AnalyzerSpec("fairness", "Fairness", fairness.evaluate, fairness.FairnessReport,
                 needs_sensitive=True, stream_sink=fairness.FairnessSink),
    AnalyzerSpec("imbalance", "Class balance, thresholds and calibration", imbalance.evaluate,
                 imbalance.ImbalanceReport, stream_sink=imbalance.ImbalanceSink),
    AnalyzerSpec("recourse", "Recourse: what it takes to change a decision, per group", recourse.evaluate,
                 recourse.RecourseReport, needs_sensitive=True, kinds=("tabular",)),
    AnalyzerSpec("slices", "Error analysis: cohorts worse than the rest", slices.evaluate, slices.SliceReport,
                 stochastic=False, kinds=("tabular",)),
    AnalyzerSpec("ood", "Out-of-distribution detection and abstention", ood.evaluate, ood.OodReport),
    AnalyzerSpec("missing", "Missing data: who is missing, and what missing values cost", missing.evaluate,
                 missing.MissingReport, kinds=("tabular",)),
    AnalyzerSpec("missing_strategies", "Missing data: the safest imputation strategy (retrained)",
                 missing.compare_strategies, missing.StrategyComparison, kinds=("tabular",), retrains=True,
                 needs_architecture=True),
    AnalyzerSpec("drift", "Data drift", ood.drift, ood.DriftReport),
    AnalyzerSpec("adversarial_detection", "Adversarial-input detection (with adaptive attacks)",
                 ood.detect_adversarial, ood.AdversarialDetectionReport, needs_gradients=True),
    AnalyzerSpec("fairness_mitigation", "Fairness mitigations (retrained)", fairness.mitigate,
                 fairness.FairnessMitigation, needs_sensitive=True, retrains=True,
                 needs_architecture=True),
    AnalyzerSpec("imbalance_mitigation", "Imbalance mitigations (retrained)", imbalance.compare_mitigations,
                 imbalance.MitigationComparison, retrains=True, needs_architecture=True),
    AnalyzerSpec("transfer", "Transfer attacks from a surrogate (retrained)", robustness.transfer,
                 robustness.TransferReport, retrains=True),
    AnalyzerSpec("adversarial_training", "Adversarial training (retrained)", robustness.adversarial_training,
                 robustness.AdversarialTrainingReport, needs_gradients=True, retrains=True),
)}


def _settings_parameters(spec: AnalyzerSpec) -> dict[str, inspect.Parameter]:
    fn = spec.function
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


def spec_for(name: str, registry: Registry | None = None, *, where: str | None = None) -> AnalyzerSpec:
    """The registry's entry for `name`; an unknown name is an AuditInputError listing the known ones."""
    registry = ANALYZERS if registry is None else registry
    if name not in registry:
        raise AuditInputError(f"unknown analyzer {where or repr(name)}; available: {sorted(registry)}.")
    return registry[name]


def check_settings(name: str, settings: dict[str, Any], where: Callable[[str], str],
                   registry: Registry | None = None) -> None:
    """Unknown keys and values of the wrong type are errors naming the key."""
    parameters = _settings_parameters(spec_for(name, registry))
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


def run_analyzer(spec: AnalyzerSpec, model, data, *, settings: dict[str, Any], seed: int, progress: bool) -> Any:
    fn = spec.function
    extra = {}
    parameters = inspect.signature(fn).parameters
    if "progress" in parameters:
        extra["progress"] = progress
    if "seed" in parameters:
        extra["seed"] = seed
    with for_model(model):  # compile options chosen for this model (audit/models/_xla.py)
        return fn(model, data, **extra, **settings)
