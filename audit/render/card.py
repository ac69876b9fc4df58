"""The model card of an audit (Model Cards for Model Reporting, Mitchell et al., 2019).

Its authors' text comes from the config's `card:` section (audit/pipeline/_card.py); the audit adds
what it knows: the model and how it was trained (curves from the recorded training history), the
data (rows per split, classes, sensitive groups), and its findings as the quantitative analyses.
`card_content(report)` gathers this for the HTML report's "Model card" section; `card_markdown(report)`
writes the same card as Markdown (`audit card REPORT.json -o card.md`, `audit run ... --card-md`).
Pure functions of a saved `AuditReport`.
"""

from __future__ import annotations

import html
from typing import Any

from audit.pipeline._card import FIELDS, HEADINGS, card_fields
from audit.render._findings import Shown, fmt, rule_text, shown_findings

# Headings only the card's authors can fill: the card says so when the config leaves them out.
AUTHORED = {heading for heading, _, _ in FIELDS.values()} - {"Model details", "Training data", "Evaluation data"}


def _missing(heading: str) -> str:
    keys = [k for k, (h, _, _) in FIELDS.items() if h == heading]
    return "Not provided: add " + " / ".join(f"card.{k}" for k in keys) + " to the audit config."


def card_content(report) -> dict[str, Any]:
    """Everything the model card shows, as plain values (text is unescaped: renderers escape it)."""
    meta = report.metadata
    model, data = dict(meta.get("model") or {}), dict(meta.get("data") or {})
    arch = model.get("architecture") or {}
    facts = [("architecture", (arch.get("name") or arch.get("factory") or "custom") if isinstance(arch, dict) else str(arch)),
             ("parameters", fmt(model.get("parameters"))),
             ("input shape", " x ".join(str(d) for d in model.get("input_shape") or []) or "n/a"),
             ("classes", ", ".join(str(c) for c in model.get("classes") or []) or "n/a")]
    training = model.get("training") or None
    if training:
        epochs = list(training.get("epochs") or [])
        settings = dict(training.get("settings") or {})
        training = {"epochs_run": len(epochs), "best_epoch": training.get("best_epoch"),
                    "stopped_early": bool(training.get("stopped_early")), "seconds": training.get("seconds"),
                    "settings": settings, "epochs": epochs,
                    "columns": [k for k in (epochs[0] if epochs else {}) if k != "epoch"], "history": training}
    shown = shown_findings(report)
    policy = [(s, rule_text(report, s.finding.metric or "")) for s in shown if s.policy]
    return {"fields": card_fields((meta.get("config") or {}).get("card")), "headings": HEADINGS,
            "authored": AUTHORED, "missing": {h: _missing(h) for h in AUTHORED}, "facts": facts,
            "training": training, "data": data, "groups": data.get("groups") or {},
            "policy": policy, "others": [s for s in shown if not s.policy]}


# ---- Markdown -------------------------------------------------------------------------------------
def _md(text: Any) -> str:
    """User or audit text for Markdown: HTML escaped (viewers render inline HTML), on one line."""
    return " ".join(html.escape(str(text), quote=False).split())


def _cell(text: Any) -> str:
    return _md(text).replace("|", "\\|")


def _table(columns: list[str], rows: list[list[Any]]) -> list[str]:
    return ["| " + " | ".join(_cell(c) for c in columns) + " |", "|" + "---|" * len(columns),
            *("| " + " | ".join(_cell(v) for v in row) + " |" for row in rows), ""]


def _fields(entries) -> list[str]:
    lines = []
    for _, label, texts, is_list in entries:
        if is_list:
            lines += ([f"**{_md(label)}:**", ""] if label else []) + [f"- {_md(t)}" for t in texts] + [""]
        else:
            lines += [(f"**{_md(label)}:** " if label else "") + _md(texts[0]), ""]
    return lines


def _provenance(report) -> str:
    p = dict(report.metadata.get("provenance") or {})
    text = f"Generated {p.get('date', 'at an unrecorded date')} by flax-audit {p.get('flax_audit', '(version unrecorded)')}"
    code = p.get("code")
    if code:
        dirty = {True: ", with uncommitted changes", False: "", None: ""}[code.get("dirty")]
        text += f" from the audited code at git commit {code['commit'][:12]}{dirty} ({code.get('of')})"
    return text + f"; audit {report.name!r}, verdict {report.verdict.upper()}."


def _finding_line(report, s: Shown) -> str:
    where = f" ({_md(report.sections[s.section].title)})" if s.section else ""
    return f"- **F{s.number} [{s.finding.status}] {_md(s.title)}**{where}: {_md(s.finding.message)}"


def card_markdown(report) -> str:
    """The model card as a Markdown document: the authors' text, the model, training, data, and the
    audit's findings (policy rules with measured values, then every analyzer finding)."""
    c = card_content(report)
    data, training = c["data"], c["training"]
    lines = [f"# Model card: {_md(report.name)}", "", f"*{_md(_provenance(report))}*", ""]
    for heading in c["headings"]:
        lines += [f"## {heading}", ""]
        entries = c["fields"].get(heading, [])
        if heading == "Model details":
            lines += _fields(entries) + _table(["", ""], [[k, v] for k, v in c["facts"]])
        elif heading == "Training data":
            lines += _fields(entries)
            if training:
                stop = "stopped early" if training["stopped_early"] else "ran every epoch"
                lines += [f"Trained {training['epochs_run']} epochs ({stop}); the weights of epoch "
                          f"{training['best_epoch']} were kept. Settings: "
                          + _md(", ".join(f"{k}={v}" for k, v in training["settings"].items())) + ".", ""]
                lines += _table(["epoch", *[k.replace("_", " ") for k in training["columns"]]],
                                [[e.get("epoch", i + 1), *(fmt(e.get(k)) for k in training["columns"])]
                                 for i, e in enumerate(training["epochs"])])
            else:
                lines += ["Training history: not recorded (the model was not trained by `audit train` or a "
                          "config's `model.train`).", ""]
        elif heading == "Evaluation data":
            lines += _fields(entries)
            splits = ", ".join(f"{k} {v}" for k, v in (data.get("splits") or {}).items())
            classes = ", ".join(f"{k} {v}" for k, v in (data.get("classes") or {}).items())
            lines += [f"Data set {_md(data.get('name'))} ({_md(data.get('kind'))}, {data.get('rows')} rows); "
                      f"rows per split: {_md(splits) or 'n/a'}; rows per class: {_md(classes) or 'n/a'}.", ""]
            for attribute, groups in c["groups"].items():
                lines += [f"Groups of the sensitive attribute {_md(attribute)}:", ""]
                lines += _table(["group", "rows", "test rows"], [[g, n, fmt(t)] for g, n, t in groups])
        elif heading == "Quantitative analyses":
            if c["policy"]:
                lines += ["The audit's policy:", ""]
                lines += _table(["finding", "metric", "measured", "required", "status"],
                                [[f"F{s.number}", f"{s.metric_title or s.metric} ({s.metric})", fmt(s.finding.value),
                                  rule, s.finding.status] for s, rule in c["policy"]])
            else:
                lines += ["The audit had no policy rules.", ""]
            broken = [s for s, _ in c["policy"] if s.finding.status != "pass"]
            if broken:
                lines += ["Policy rules not met:", ""] + [_finding_line(report, s) for s in broken] + [""]
            if c["others"]:
                lines += ["The analyzers' findings:", ""] + [_finding_line(report, s) for s in c["others"]] + [""]
        else:
            lines += _fields(entries) if entries else [c["missing"][heading], ""]
    return "\n".join(lines).rstrip() + "\n"
