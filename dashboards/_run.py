"""Run an audit from the dashboard, one analyzer at a time so a progress bar can follow.

Each analyzer goes through the public `audit.run` with a one-analyzer config; the sections
and findings are then put together under the full config (whose policy is then evaluated
with the public `Rule.evaluate`), so the saved report is what `audit run` would write.
"""

from __future__ import annotations

import os
from typing import Callable

from audit.pipeline import AuditConfig, AuditReport, load_data, load_model, run


def quick_settings(name: str, kind: str) -> dict:
    """Small settings that finish in seconds to a minute on two CPU cores."""
    return {"robustness": {"n": 100, "steps": 10, "min_perturbation_n": 20, "bootstrap": 200},
            "fairness": {"n_bootstrap": 200},
            "corruptions": {"n": 200, "severities": [1, 3, 5]},
            "explain": {"n_examples": 4, "stability_samples": 1, "permutation_repeats": 3},
            "imbalance_mitigation": {"train_options": {"epochs": 5}},
            "fairness_mitigation": {"train_options": {"epochs": 5}}}.get(name, {})


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
    step(1, total, "loading the model")
    model = load_model(config, data, progress=False)
    sections, findings, metadata, durations = {}, [], {}, {}
    for i, name in enumerate(names):
        step(2 + i, total, f"running {name}")
        part = run(model, data, AuditConfig(name=config.name, seed=config.seed, data=config.data,
                                            model=config.model, analyzers={name: config.analyzers[name]}),
                   progress=False)
        sections.update(part.sections)
        findings.extend(part.findings)
        metadata = dict(part.metadata)
        durations.update({k: v for k, v in (part.metadata.get("durations") or {}).items() if k != "total"})
    draft = AuditReport(name=config.name, sections=sections, findings=(), metadata={})
    metrics = draft.metrics()
    policy = [rule.evaluate(metrics) for rule in config.policy]
    metadata.update(config=config.to_dict(), durations={**durations, "total": sum(durations.values())})
    report = AuditReport(name=config.name, sections=sections, findings=tuple(policy + findings), metadata=metadata)
    out_dir = out_dir or os.path.join("reports", "out", config.name)
    os.makedirs(out_dir, exist_ok=True)
    path = report.to_json(os.path.join(out_dir, "report.json"))
    report.to_html(os.path.join(out_dir, "report.html"))
    step(total, total, "done")
    return report, path
