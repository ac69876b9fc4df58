"""Value checks for analyzer settings and policy metric names, run when a config is loaded.

The analyzers' signatures stay the one schema for names and types (`_registry.check_settings`);
this module adds what a type cannot say: ranges (`n >= 1`, eps finite and >= 0), choices taken
from the analyzers' own tables (attack names, norms, methods), and constraints across settings
(an attack that does not support the norm). Checks that need the data (a favourable class the
data does not have, an attribute it lacks) run in `check_against_data`, after the data loads and
before any model is trained or analyzer runs. Every message names the key and, for YAML, the line.
"""

from __future__ import annotations

import difflib
import math
from typing import Any, Callable, Iterable, Mapping

from audit.errors import AuditInputError

Where = Callable[..., str]  # where(key, index?) -> "'analyzers.robustness.eps.1' (file, line 7)"
SPLITS = ("train", "val", "test")


def _int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _at_least(low: int) -> tuple[Callable[[Any], bool], str]:
    return (lambda v: _int(v) and v >= low), f"an integer >= {low}"


def _interval(low: float, high: float, *, open_low=False, open_high=False) -> tuple[Callable[[Any], bool], str]:
    def ok(v):
        return _num(v) and (v > low if open_low else v >= low) and (v < high if open_high else v <= high)
    text = f"a number in {'(' if open_low else '['}{low:g}, {high:g}{')' if open_high else ']'}"
    return ok, text


_POSITIVE = ((lambda v: _num(v) and v > 0), "a positive number")
_NON_NEGATIVE = ((lambda v: _num(v) and v >= 0), "a finite number >= 0")
_PROBABILITY = _interval(0, 1)

# Scalar rules by setting name (the same name means the same thing in every analyzer);
# (analyzer, name) entries override. None values pass (they mean "the default").
SCALARS: dict[Any, tuple[Callable[[Any], bool], str]] = {
    **{k: _at_least(1) for k in (
        "n", "steps", "restarts", "apgd_steps", "square_queries", "search_steps", "lime_samples",
        "background_size", "permutation_repeats", "n_bins", "calibration_bins", "max_points", "n0",
        "n_samples", "smoothing_attack_samples", "pgd_steps", "attack_steps",
        "attack_samples", "batch_size", "eval_steps", "epochs", "k", "min_group_size", "min_count")},
    **{k: _at_least(0) for k in ("min_perturbation_n", "bootstrap", "n_bootstrap", "examples_per_eps",
                                  "stability_samples", "smoothing_attack_steps")},  # 0: skip that attack
    ("explain", "n_examples"): _at_least(2),
    "confidence": _interval(0, 1, open_low=True, open_high=True),
    "alpha": _interval(0, 0.5, open_low=True, open_high=True),
    "sigma": _POSITIVE, "fp_cost": _POSITIVE, "fn_cost": _POSITIVE,
    "noise": _NON_NEGATIVE, "beta": _NON_NEGATIVE,
    "min_recall": _PROBABILITY, "max_recall_gap": _PROBABILITY, "max_ece": _PROBABILITY,
    "max_difference": _PROBABILITY, "clean_weight": _PROBABILITY,
    "warmup": _interval(0, 1, open_high=True),
    ("adversarial_training", "eps"): _POSITIVE,
    ("missing", "draws"): _at_least(2), "importance_rows": _at_least(1),
    ("missing_strategies", "rate"): _interval(0, 1, open_high=True),
}
# Settings that hold a list of numbers: the rule for each element (and whether it may be empty).
LISTS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "eps": _NON_NEGATIVE, "eval_eps": _NON_NEGATIVE, "impute_k": _at_least(1),
}

MAY_BE_EMPTY = {"impute_k"}  # an empty list turns that part off


def _choices() -> dict[Any, tuple[str, ...]]:
    """Allowed words per setting, read from the analyzers' own tables (one source of truth)."""
    from audit.explain._analyze import METHODS as EXPLAIN_METHODS
    from audit.fairness._mitigate import CONSTRAINTS, METHODS as FAIRNESS_MITIGATIONS
    from audit.imbalance._compare import METHODS as IMBALANCE_MITIGATIONS
    from audit.missing._evaluate import SCENARIOS as MISSING_SCENARIOS, STRATEGIES as MISSING_STRATEGIES
    from audit.missing._strategies import FILLS as MISSING_FILLS
    from audit.robustness._adversarial_training import RECIPES
    from audit.robustness._certify import METHODS as CERTIFY_METHODS
    from audit.robustness._domain import NORMS
    from audit.robustness._explanation_stability import METHODS as STABILITY_METHODS
    from audit.robustness._registry import ATTACKS

    return {"norm": NORMS, "attacks": tuple(ATTACKS), "split": SPLITS, "fit_split": SPLITS,
            "threshold_split": SPLITS, "constraint": CONSTRAINTS, "attribution": ("permutation", "shap"),
            "method": RECIPES, ("explain", "methods"): EXPLAIN_METHODS,
            ("certify", "methods"): CERTIFY_METHODS, ("explanation_stability", "methods"): STABILITY_METHODS,
            ("fairness_mitigation", "methods"): FAIRNESS_MITIGATIONS,
            ("imbalance_mitigation", "methods"): IMBALANCE_MITIGATIONS,
            ("missing", "strategies"): MISSING_STRATEGIES, ("missing", "scenarios"): MISSING_SCENARIOS,
            ("missing_strategies", "strategies"): MISSING_FILLS}


def _hint(value: Any, allowed: Iterable[str]) -> str:
    close = difflib.get_close_matches(str(value), list(allowed), n=1)
    return f" Did you mean {close[0]!r}?" if close else ""


def check_values(analyzer: str, settings: Mapping[str, Any], where: Where, parameters: Mapping[str, Any]) -> None:
    """Ranges, choices and cross-setting constraints of one analyzer's settings (types are
    already checked). Raises AuditInputError naming the first bad key."""
    choices = _choices()
    for key, value in settings.items():
        if value is None:
            continue
        rule = SCALARS.get((analyzer, key)) or SCALARS.get(key)
        if rule and not isinstance(value, (list, tuple)) and not rule[0](value):
            raise AuditInputError(f"setting {where(key)} must be {rule[1]}, got {value!r}.")
        if key in LISTS and isinstance(value, (list, tuple)):
            ok, text = (SCALARS[(analyzer, key)] if (analyzer, key) in SCALARS else LISTS[key])
            if not value and key not in MAY_BE_EMPTY:
                raise AuditInputError(f"setting {where(key)} is empty; give at least one value.")
            for i, item in enumerate(value):
                if not ok(item):
                    raise AuditInputError(f"setting {where(key, i)} must be {text}, got {item!r}.")
        allowed = choices.get((analyzer, key)) or choices.get(key)
        if allowed:
            items = value if isinstance(value, (list, tuple)) else [value]
            if isinstance(value, (list, tuple)) and not value:
                raise AuditInputError(f"setting {where(key)} is empty; choose from {list(allowed)}.")
            for i, item in enumerate(items):
                if item not in allowed:
                    at = where(key, i) if isinstance(value, (list, tuple)) else where(key)
                    raise AuditInputError(f"setting {at} is {item!r}, not one of {list(allowed)}."
                                          + _hint(item, allowed))
        annotation = getattr(parameters.get(key), "annotation", "")
        if isinstance(annotation, str) and annotation.split(" |")[0] in ("Domain",):
            raise AuditInputError(f"setting {where(key)} takes a Python object ({annotation}), which a config "
                                  f"cannot give; leave it out (the default) or call the analyzer from Python.")
    _cross(analyzer, settings, where, parameters)


def _cross(analyzer: str, settings: Mapping[str, Any], where: Where, parameters: Mapping[str, Any]) -> None:
    """Constraints between settings of one analyzer."""
    from audit.robustness._registry import ATTACKS

    def setting(key):
        value = settings.get(key)
        if value is None and key in parameters:
            value = getattr(parameters[key], "default", None)
        return value

    norm = setting("norm")
    if isinstance(norm, str) and isinstance(settings.get("attacks"), (list, tuple)):
        for i, name in enumerate(settings["attacks"]):
            spec = ATTACKS.get(name)
            if spec is not None and norm not in spec.norms:
                raise AuditInputError(f"setting {where('attacks', i)}: attack {name!r} supports norms "
                                      f"{list(spec.norms)}, not norm {norm!r}; drop it or change the norm.")
    if analyzer == "certify" and norm == "l2" and "ibp" in (settings.get("methods") or ()):
        raise AuditInputError(f"setting {where('methods')}: IBP bounds an L-inf box; use norm linf or "
                              "methods [smoothing].")
    if analyzer == "fairness_mitigation" and "attribute" in settings:
        attribute = settings["attribute"]
        if not (isinstance(attribute, str) or (isinstance(attribute, (list, tuple)) and attribute
                                                and all(isinstance(a, str) for a in attribute))):
            raise AuditInputError(f"setting {where('attribute')} must name a sensitive attribute or a list "
                                  f"of them, got {attribute!r}.")


def check_against_data(config, data) -> None:
    """Settings that name parts of the data (classes, sensitive attributes, raw columns) must
    exist in it. Run after the data loads and before any training or analysis."""
    where = config.where
    sensitive = sorted(data.sensitive)
    raw = list(getattr(data, "raw_feature_names", ()) or ())
    for name, settings in config.analyzers.items():
        def at(key, *index, _n=name):
            return where("analyzers", _n, key, *index)

        favorable = settings.get("favorable_class")
        if favorable is not None:
            ok = favorable in data.class_names if isinstance(favorable, str) else (
                _int(favorable) and 0 <= favorable < len(data.class_names))
            if not ok:
                raise AuditInputError(f"setting {at('favorable_class')} is {favorable!r}, but the data "
                                      f"{data.name!r} has classes {list(data.class_names)}; name one of them "
                                      "(or its index)." + _hint(favorable, data.class_names))
        for i, c in enumerate(settings.get("classes") or ()):
            if not (c in data.class_names or (_int(c) and 0 <= c < len(data.class_names))):
                raise AuditInputError(f"setting {at('classes', i)} is {c!r}, not a class of {data.name!r} "
                                      f"({list(data.class_names)}).")
        attributes = settings.get("attributes") or ()
        named = settings.get("attribute")
        names = [a for group in (*attributes, *([named] if named else []))
                 for a in ([group] if isinstance(group, str) else group)]
        for a in names:
            if a not in data.sensitive:
                key = "attribute" if named and (a == named or a in named) else "attributes"
                raise AuditInputError(f"setting {at(key)} names {a!r}, which is not a sensitive attribute "
                                      f"of {data.name!r} (it has {sensitive})." + _hint(a, sensitive))
        for key in ("immutable", "importance"):
            for i, col in enumerate(settings.get(key) or ()):
                if data.kind == "tabular" and col not in raw and col not in data.feature_names:
                    raise AuditInputError(f"setting {at(key, i)} names {col!r}, not a column of {data.name!r} "
                                          f"(columns: {raw})." + _hint(col, raw))


def check_policy(config) -> None:
    """Every policy metric must be one that a configured analyzer can produce. Sections whose
    result class declares `METRICS` are checked name by name (placeholders match anything);
    a near miss gets a "did you mean"."""
    from audit.pipeline._registry import ANALYZERS

    registry = ANALYZERS if config.registry is None else config.registry
    names = list(config.analyzers) or [n for n, s in registry.items() if not s.retrains]
    for i, rule in enumerate(config.policy):
        section, _, metric = rule.metric.partition(".")
        where = config.where("policy", i, "metric")
        if section not in names:
            known = [f"{n}." for n in names]
            raise AuditInputError(f"policy {where} asks for {rule.metric!r}, but no configured analyzer is "
                                  f"called {section!r} (configured: {names}); add it under analyzers, or fix "
                                  f"the name." + _hint(section + ".", known))
        specs = getattr(registry[section].result, "METRICS", None)
        if not specs:
            continue  # this result does not declare its metrics yet: checked after the run
        if not any(spec.matches(metric) for spec in specs):
            patterns = [f"{section}.{s.pattern}" for s in specs]
            close = difflib.get_close_matches(rule.metric, patterns, n=3, cutoff=0.5)
            hint = f" Did you mean {', '.join(close)}?" if close else f" It produces: {', '.join(patterns[:12])}."
            raise AuditInputError(f"policy {where} asks for {rule.metric!r}, which the {section!r} analyzer "
                                  f"does not produce.{hint}")
