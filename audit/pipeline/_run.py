"""`run()`: every configured analyzer on one model and data set, then the policy, as an AuditReport."""

from __future__ import annotations

import os
import platform
import sys
import time
from typing import Any

from audit._versions import library_versions
from audit.errors import AuditInputError
from audit.pipeline._config import AuditConfig
from audit.pipeline._registry import ANALYZERS, run_analyzer
from audit.pipeline._report import AuditReport, Section
from audit.results import Finding, to_jsonable

_LIBRARIES = ("flax-audit", "jax", "jaxlib", "flax", "optax", "numpy", "scikit-learn", "shap", "lime",
              "fairlearn", "imbalanced-learn")


def _log(message: str, progress: bool) -> None:
    if progress:
        print(message, file=sys.stderr, flush=True)


def _advisory(section: str, finding: Finding) -> Finding:
    """An analyzer's own finding, namespaced by section. Analyzers advise and the policy decides:
    an analyzer's "fail" becomes "warn", so only policy rules can fail an audit."""
    status = "warn" if finding.status == "fail" else finding.status
    return Finding(**{**finding.to_dict(), "id": f"{section}:{finding.id}", "status": status})


def run(model, data, config: AuditConfig | None = None, *, progress: bool = True) -> AuditReport:
    """Audit `model` on `data` with the analyzers and policy of `config`.

    Analyzers run in the order of `config.analyzers` (when the config names none: every
    analyzer that does not retrain the model);
    one that does not apply (e.g. fairness without sensitive attributes) is recorded as
    skipped with the reason. Policy rules decide pass / fail; the analyzers' own checks are
    reported as pass / warn. The same seed gives the same numbers.
    """
    config = config or AuditConfig()
    model.check_data(data)
    names = list(config.analyzers) or [n for n, spec in ANALYZERS.items() if not spec.retrains]
    sections: dict[str, Section] = {}
    findings: list[Finding] = []
    start = time.perf_counter()
    for i, name in enumerate(names, 1):
        spec = ANALYZERS[name]
        reason = spec.applies_to(model, data)
        if reason:
            _log(f"[{i}/{len(names)}] {spec.title}: skipped ({reason})", progress)
            sections[name] = Section(name=name, title=spec.title, skipped=reason)
            continue
        _log(f"[{i}/{len(names)}] {spec.title} ...", progress)
        t0 = time.perf_counter()
        result = run_analyzer(name, model, data, settings=dict(config.analyzers.get(name, {})),
                              seed=config.seed, progress=progress)
        seconds = time.perf_counter() - t0
        _log(f"[{i}/{len(names)}] {spec.title} done in {seconds:.1f} s", progress)
        sections[name] = Section(name=name, title=spec.title, result=result, seconds=seconds)
        findings.extend(_advisory(name, f) for f in result.findings)
    report = AuditReport(name=config.name, sections=sections, findings=(), metadata={})
    metrics = report.metrics()
    policy = [rule.evaluate(metrics) for rule in config.policy]
    metadata = {
        "config": config.to_dict(), "seed": config.seed, "libraries": library_versions(_LIBRARIES),
        "platform": f"{platform.system()} {platform.machine()}",
        "data": {**data.summary(), "fingerprint": data.fingerprint()},
        "model": {**model.summary(), "training": (model.metadata or {}).get("training")},
        "durations": {**{n: s.seconds for n, s in sections.items()}, "total": time.perf_counter() - start},
    }
    return AuditReport(name=config.name, sections=sections, findings=tuple(policy + findings),
                       metadata=to_jsonable(metadata))


def load_data(config: AuditConfig):
    """The Dataset a config names (bundled or CSV)."""
    from audit import data as data_module

    d = dict(config.data)
    if not d:
        raise AuditInputError("the config has no 'data' section; name a bundled dataset "
                              "(data: {dataset: credit}) or a CSV file.")
    if "dataset" in d:
        return data_module.load(d["dataset"], seed=config.seed, **dict(d.get("options") or {}))
    options = {k: v for k, v in d.items() if k != "csv"}
    return data_module.from_csv(d["csv"], seed=config.seed, **options)


def load_model(config: AuditConfig, data, *, progress: bool = True):
    """The Model a config names: loaded from `model.path` if a checkpoint is there, else trained
    from `model.train` (and saved to `model.path` when given)."""
    from audit.models import Model, train

    m = dict(config.model)
    if "factory" in m:  # the user's own architecture (importing it is the config author's choice)
        from audit.models._factory import from_config

        _log(f"building the model from the factory {m['factory']} ...", progress)
        settings = {k: v for k, v in dict(m.get("train") or {}).items() if k != "arch"}
        return from_config(m, data, seed=config.seed, train_settings=settings, progress=progress)
    path = m.get("path")
    if path and os.path.isfile(os.path.join(path, "manifest.json")):
        _log(f"loading model from {path}", progress)
        return Model.load(path)
    if "train" not in m:
        where = f"no checkpoint at {path!r} and " if path else ""
        raise AuditInputError(f"{where}the config's 'model' section has no 'train' settings; give "
                              "model.path to a checkpoint or model.train (e.g. {arch: mlp}).")
    settings = dict(m["train"] or {})
    arch = settings.pop("arch", "cnn" if data.kind == "image" else "mlp")
    _log(f"training a {arch} on {data.name} ...", progress)
    model = train(arch, data, seed=config.seed, progress=progress, **settings)
    if path:
        model.save(path)
        _log(f"model saved to {path}", progress)
    return model


def run_config(config: AuditConfig, *, progress: bool = True) -> tuple[AuditReport, Any, Any]:
    """Load data and model as the config says, then `run`. Returns (report, model, data)."""
    data = load_data(config)
    model = load_model(config, data, progress=progress)
    return run(model, data, config, progress=progress), model, data
