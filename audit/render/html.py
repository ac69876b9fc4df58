"""The self-contained HTML audit report: one file, opens offline, prints well, escapes everything.

A sticky table of contents, one findings table (each finding once, numbered F1..Fn, sortable and
filterable by a small inline script; without script it is a plain sorted table) whose rows link to
the sections that discuss them, collapsible sections (open when they hold a failure), metric
titles from the metric declarations, the model card, and a provenance line (date, flax-audit
version, git commit of the audited code).
"""

from __future__ import annotations

import concurrent.futures
import importlib
from typing import Any, Callable

import jinja2
import yaml
from matplotlib.figure import Figure

from audit.pipeline._meaning import spec_in
from audit.render._findings import fmt, shown_findings
from audit.render._png import figure_to_data_uri
from audit.render.card import card_content
from audit.render.figures import audit as audit_figures
from audit.render.figures import card as card_figures

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
    "missing_strategies": "audit.render.figures.missing:comparison_figures",
    "ood": "audit.render.figures.ood:report_figures",
    "drift": "audit.render.figures.ood:drift_figures",
    "adversarial_detection": "audit.render.figures.ood:detection_figures",
    "slices": "audit.render.figures.slices:report_figures",
}

# Section name -> "module:function" returning tables [{caption, columns, rows: [(label, [(text, marked)])]}];
# cells are plain text (escaped by the template), `marked` cells are highlighted.
SECTION_TABLES: dict[str, str] = {
    "certify": "audit.render.figures.certify:certification_tables",
    "fairness": "audit.render.figures.fairness:group_tables",
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


class FigureRenderer:
    """Draws each section's figures on one background thread as soon as its analyzer finishes, so
    the PNGs of a finished section are made while the next analyzer computes: drawing a demo's ~40
    figures is ~12 s of one core, which a tabular audit (mostly Python dispatch of small compiled
    programs) leaves idle; an image audit's convolutions keep every core busy, so there it is even.
    `submit(name, result)` is the audit's `on_section` hook; `figures(name, result)` gives what
    `_section_figures` gives, the drawn one when it was drawn for this very result. Figures are
    built with matplotlib's Figure API (no pyplot state), each on one thread only, so the images
    are the same as drawn in the foreground. A figure that fails to draw raises where it is asked
    for, as it would in the foreground."""

    def __init__(self) -> None:
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="audit-figures")
        self._drawn: dict[str, tuple[Any, concurrent.futures.Future]] = {}

    def submit(self, name: str, result: Any) -> None:
        if SECTION_FIGURES.get(name) is not None and result is not None:
            self._drawn[name] = (result, self._pool.submit(_section_figures, name, result))

    def figures(self, name: str, result: Any) -> list[tuple[str, str]]:
        drawn = self._drawn.get(name)
        if drawn is not None and drawn[0] is result:
            return drawn[1].result()
        return _section_figures(name, result)

    def close(self) -> None:
        for _, future in self._drawn.values():
            future.cancel()
        self._pool.shutdown(wait=True)

    def __enter__(self) -> "FigureRenderer":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _declared(report, metric: str) -> tuple[str, str, str]:
    """(which way is better, title, meaning) as the metric's analyzer declares it."""
    spec = spec_in(report, metric)
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


_ENV = jinja2.Environment(loader=jinja2.PackageLoader("audit.render", "templates"),
                          autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True,
                          lstrip_blocks=True)
_ENV.filters["fmt"] = fmt


def render_report(report, *, renderer: FigureRenderer | None = None) -> str:
    """The report as one HTML string: figures are inline PNGs, one inline script (sorting and
    filtering the findings; the page reads the same without it), no external URLs. `renderer`:
    the `FigureRenderer` that drew the sections' figures while the audit ran."""
    section_figures = renderer.figures if renderer is not None else _section_figures
    shown = shown_findings(report)
    sections = []
    for name, section in report.sections.items():
        own = [s for s in shown if s.section == name]
        counts = {status: sum(s.finding.status == status for s in own) for status in ("fail", "warn", "pass")}
        sections.append({"name": name, "title": section.title, "skipped": section.skipped,
                         "failed": getattr(section, "failed", None), "seconds": section.seconds,
                         "findings": own, "counts": counts, "open": bool(counts["fail"] or section.failed),
                         "metrics": [(k, v, *_declared(report, f"{name}.{k}"))
                                     for k, v in sorted(section.metrics().items())],
                         "figures": section_figures(name, section.result),
                         "tables": _section_tables(name, section.result)})
    counts = {s: sum(f.status == s for f in report.findings) for s in ("pass", "warn", "fail")}
    meta = report.metadata
    card = card_content(report)
    curves = (figure_to_data_uri(card_figures.training_curves(card["training"]["history"]))
              if card["training"] and card["training"]["epochs"] else None)
    template = _ENV.get_template("report.html.j2")
    return template.render(
        report=report, verdict=report.verdict, counts=counts, findings=shown, sections=sections,
        section_titles={s["name"]: s["title"] for s in sections}, card=card, training_curves=curves,
        scorecard=figure_to_data_uri(audit_figures.scorecard(report)) if report.findings else None,
        durations=figure_to_data_uri(audit_figures.durations(report)) if report.sections else None,
        data=meta.get("data", {}), model=meta.get("model", {}), libraries=meta.get("libraries", {}),
        provenance=meta.get("provenance") or {},
        config_yaml=yaml.safe_dump(meta.get("config", {}), sort_keys=False),
        durations_table=sorted((meta.get("durations") or {}).items()),
        seed=meta.get("seed"))
