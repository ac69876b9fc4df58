"""Run an audit from the dashboard, one analyzer at a time so a progress bar can follow.

Each analyzer goes through the public `audit.run` with a one-analyzer config; the sections
and findings are then put together under the full config (whose policy is then evaluated
with the public `Rule.evaluate`), so the saved report is what `audit run` would write.
"""

from __future__ import annotations

import json
import os
from typing import Callable

from audit.pipeline import AuditConfig, AuditReport, load_data, load_model, run
from audit.pipeline._schema import check_against_data
from audit.render.html import FigureRenderer


def quick_settings(name: str, kind: str) -> dict:
    """Small settings that finish in seconds to a minute on two CPU cores."""
    return {"robustness": {"n": 100, "steps": 10, "min_perturbation_n": 20, "bootstrap": 200},
            "fairness": {"n_bootstrap": 200},
            "corruptions": {"n": 200, "severities": [1, 3, 5]},
            "explain": {"n_examples": 4, "stability_samples": 1, "permutation_repeats": 3},
            "imbalance_mitigation": {"train_options": {"epochs": 5}},
            "fairness_mitigation": {"train_options": {"epochs": 5}}}.get(name, {})


def checkpoints(dataset: str, folder: str = "models") -> list[tuple[str, dict]]:
    """Checkpoints under `folder` trained on `dataset`, each with the data section to load that
    data the same way (as its manifest recorded it, e.g. credit with the sensitive inputs), the
    ones with a recorded data section first. Checkpoints of other datasets are left out."""
    found = []
    for name in sorted(os.listdir(folder)) if os.path.isdir(folder) else []:
        path = os.path.join(folder, name)
        try:
            with open(os.path.join(path, "manifest.json")) as f:
                trained = (json.load(f).get("metadata") or {}).get("data") or {}
        except (OSError, ValueError, AttributeError):
            continue
        if trained.get("name", dataset) != dataset:
            continue
        section = trained.get("config") if isinstance(trained.get("config"), dict) else None
        if section is not None and section.get("dataset") != dataset:
            continue
        found.append((path, section or {"dataset": dataset}, section is not None))
    found.sort(key=lambda item: not item[2])
    return [(path, section) for path, section, _ in found]


def config_from_file(path: str) -> AuditConfig:
    """A config file on the server's disk: validated, paths relative to its folder. It may name a
    factory (the file's author chose to run that code)."""
    return AuditConfig.from_yaml(path)


def config_from_upload(name: str, payload: bytes) -> AuditConfig:
    """An uploaded config: validated; relative paths are relative to the working directory. An
    upload may not name a factory or a retrain function: that would run code chosen by whoever
    uploads; put such a config on disk and open it by path."""
    import yaml

    from audit.errors import AuditInputError
    from audit.models._factory import resolve_config_paths

    try:
        document = yaml.safe_load(payload.decode("utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise AuditInputError(f"{name!r} is not a valid YAML config ({exc}).") from None
    if not isinstance(document, dict):
        raise AuditInputError(f"{name!r} is not an audit config (a YAML mapping with data, model, analyzers).")
    model = document.get("model") or {}
    if isinstance(model, dict) and ("factory" in model or "retrain" in model):
        raise AuditInputError(f"{name!r} names Python code (model.factory / model.retrain); an uploaded config "
                              "may not run code. Save it on the server and open it by path.")
    config = AuditConfig.from_dict(document, source=name)
    return AuditConfig(name=config.name, seed=config.seed, data=config.data,
                       model=resolve_config_paths(config.model, os.getcwd()), analyzers=config.analyzers,
                       policy=config.policy)


def run_audit(config: AuditConfig, *, on_step: Callable[[int, int, str], None] | None = None,
              out_dir: str | None = None) -> tuple[AuditReport, str]:
    """Load the data and model `config` names, run its analyzers with progress callbacks
    `on_step(done, total, what)`, write report.json (and HTML) under `out_dir`; returns the
    report and the JSON path."""
    step = on_step or (lambda i, n, what: None)
    names = list(config.analyzers)
    total = len(names) + 2
    step(0, total, "loading the data")
    data = load_data(config)
    check_against_data(config, data)
    step(1, total, "loading the model")
    model = load_model(config, data, progress=False)
    sections, findings, metadata, durations = {}, [], {}, {}
    with FigureRenderer() as renderer:  # each section's figures drawn while the next one runs
        for i, name in enumerate(names):
            step(2 + i, total, f"running {name}")
            part = run(model, data, AuditConfig(name=config.name, seed=config.seed, data=config.data,
                                                model=config.model, analyzers={name: config.analyzers[name]}),
                       progress=False, on_section=renderer.submit)
            sections.update(part.sections)
            findings.extend(part.findings)
            metadata = dict(part.metadata)
            durations.update({k: v for k, v in (part.metadata.get("durations") or {}).items() if k != "total"})
        draft = AuditReport(name=config.name, sections=sections, findings=(), metadata={})
        metrics = draft.metrics()
        policy = [rule.evaluate(metrics) for rule in config.policy]
        metadata.update(config=config.to_dict(), durations={**durations, "total": sum(durations.values())})
        report = AuditReport(name=config.name, sections=sections, findings=tuple(policy + findings),
                             metadata=metadata)
        out_dir = out_dir or os.path.join("reports", "out", config.name)
        os.makedirs(out_dir, exist_ok=True)
        path = report.to_json(os.path.join(out_dir, "report.json"))
        report.to_html(os.path.join(out_dir, "report.html"), renderer=renderer)
    step(total, total, "done")
    return report, path
