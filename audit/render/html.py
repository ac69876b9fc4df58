"""The self-contained HTML audit report: one file, opens offline, prints well, escapes everything."""

from __future__ import annotations

import importlib
from typing import Any, Callable

import jinja2
import yaml
from matplotlib.figure import Figure

from audit.pipeline._meaning import spec_of
from audit.render._png import figure_to_data_uri
from audit.render.figures import audit as audit_figures

# Section name -> "module:function" returning [(caption, Figure), ...] for that section's result.
SECTION_FIGURES: dict[str, str] = {
    "explain": "audit.render.sections:explain_figures",
    "imbalance": "audit.render.figures.imbalance:report_figures",
    "fairness": "audit.render.figures.fairness:report_figures",
    "robustness": "audit.render.sections:robustness_figures",
    "imbalance_mitigation": "audit.render.figures.imbalance:mitigation_figures",
    "fairness_mitigation": "audit.render.figures.fairness:mitigation_figures",
    "certify": "audit.render.figures.certify:certify_figures",
    "corruptions": "audit.render.figures.corruptions:corruption_figures",
    "transfer": "audit.render.figures.transfer:transfer_figures",
    "adversarial_training": "audit.render.figures.certify:adversarial_training_figures",
    "explanation_stability": "audit.render.figures.certify:explanation_stability_figures",
    "recourse": "audit.render.figures.recourse:report_figures",
    "missing": "audit.render.figures.missing:report_figures",
    "ood": "audit.render.figures.ood:report_figures",
    "drift": "audit.render.figures.ood:drift_figures",
    "adversarial_detection": "audit.render.figures.ood:detection_figures",
    "slices": "audit.render.figures.slices:report_figures",
}

# Section name -> "module:function" returning tables [{caption, columns, rows: [(label, [(text, marked)])]}];
# cells are plain text (escaped by the template), `marked` cells are highlighted.
SECTION_TABLES: dict[str, str] = {
    "recourse": "audit.render.figures.recourse:example_tables",
    "slices": "audit.render.figures.slices:cohort_tables",
    "robustness": "audit.render.figures.robustness:report_tables",
}


def _section_figures(name: str, result: Any) -> list[tuple[str, str]]:
    spec = SECTION_FIGURES.get(name)
    if spec is None or result is None:
        return []
    module, attribute = spec.split(":")
    make: Callable[[Any], list[tuple[str, Figure]]] = getattr(importlib.import_module(module), attribute)
    return [(caption, figure_to_data_uri(fig)) for caption, fig in make(result)]


def _declared(metric: str) -> tuple[str, str, str]:
    """(which way is better, title, meaning) as the metric's analyzer declares it."""
    spec = spec_of(metric)
    if spec is None:
        return "", "", "undeclared"
    better = {"higher": "higher", "lower": "lower", "info": "neither"}[spec.direction]
    return better, spec.title_for(metric.split(".", 1)[1]), spec.meaning


def _section_tables(name: str, result: Any) -> list[dict[str, Any]]:
    spec = SECTION_TABLES.get(name)
    if spec is None or result is None:
        return []
    module, attribute = spec.split(":")
    return getattr(importlib.import_module(module), attribute)(result)


def _fmt(value: Any) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


_ENV = jinja2.Environment(loader=jinja2.PackageLoader("audit.render", "templates"),
                          autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True,
                          lstrip_blocks=True)
_ENV.filters["fmt"] = _fmt


def render_report(report) -> str:
    """The report as one HTML string; figures are inline PNGs, no scripts, no external URLs."""
    order = {"fail": 0, "warn": 1, "pass": 2}
    findings = sorted(report.findings, key=lambda f: order[f.status])
    sections = []
    for name, section in report.sections.items():
        own = [f for f in findings if f.id.startswith(f"{name}:") or
               (f.metric or "").startswith(f"{name}.")]
        sections.append({"name": name, "title": section.title, "skipped": section.skipped,
                         "failed": getattr(section, "failed", None),
                         "seconds": section.seconds, "findings": own,
                         "metrics": [(k, v, *_declared(f"{name}.{k}")) for k, v in sorted(section.metrics().items())],
                         "figures": _section_figures(name, section.result),
                         "tables": _section_tables(name, section.result)})
    counts = {s: sum(f.status == s for f in report.findings) for s in ("pass", "warn", "fail")}
    meta = report.metadata
    template = _ENV.get_template("report.html.j2")
    return template.render(
        report=report, verdict=report.verdict, counts=counts, findings=findings,
        attention=[f for f in findings if f.status != "pass"], sections=sections,
        scorecard=figure_to_data_uri(audit_figures.scorecard(report)) if report.findings else None,
        durations=figure_to_data_uri(audit_figures.durations(report)) if report.sections else None,
        data=meta.get("data", {}), model=meta.get("model", {}), libraries=meta.get("libraries", {}),
        config_yaml=yaml.safe_dump(meta.get("config", {}), sort_keys=False),
        durations_table=sorted((meta.get("durations") or {}).items()),
        seed=meta.get("seed"))
