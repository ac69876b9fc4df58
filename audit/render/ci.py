"""CI outputs of an audit: JUnit XML (one test case per policy rule) and a short Markdown verdict.

Pure functions of an `AuditReport`: `junit_xml(report)` for CI test-report viewers (GitLab, Jenkins,
GitHub test-report actions), `summary_markdown(report)` for a pull-request comment. Both are written
with the standard library (xml.etree escapes every value; Markdown text is HTML-escaped, "|" escaped in tables).
"""

from __future__ import annotations

import html
import re
import xml.etree.ElementTree as ET

from audit.results import Finding


_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _x(text) -> str:
    """Text safe inside XML 1.0 (ElementTree escapes <, & and quotes; characters XML cannot hold are dropped)."""
    return _NOT_XML.sub("", str(text))


def _policy(report) -> list[Finding]:
    return [f for f in report.findings if f.id.startswith("policy:")]


def _measured(f: Finding) -> str:
    value = "not measured" if f.value is None else f"{f.value:.4g}"
    return f"measured {value}; {f.title}"


def junit_xml(report) -> bytes:
    """The policy as a JUnit test suite: a rule that fails is a <failure> with the measured value and the
    threshold; a broken rule of severity warn passes with the warning in <system-out>; an analyzer that
    stopped with an error is an <error> test case, so an incomplete audit never reads as green."""
    cases = []
    for f in _policy(report):
        case = ET.Element("testcase", classname=_x(f"flax-audit.{report.name}.policy"), name=_x(f.metric or f.id))
        if f.status == "fail":
            failure = ET.SubElement(case, "failure", type="policy", message=_x(_measured(f)))
            failure.text = _x(f"{f.message}\nmeasured: {'not measured' if f.value is None else repr(f.value)}\n"
                              f"threshold: {f.threshold!r}")
        elif f.status == "warn":
            ET.SubElement(case, "system-out").text = _x(f"warning: {_measured(f)}. {f.message}")
        cases.append(case)
    for name, section in report.sections.items():
        if section.failed:
            case = ET.Element("testcase", classname=_x(f"flax-audit.{report.name}.analyzers"), name=_x(name))
            ET.SubElement(case, "error", type="analyzer", message=_x(f"section {name!r} failed")).text = \
                _x(section.failed)
            cases.append(case)
    failures = sum(c.find("failure") is not None for c in cases)
    errors = sum(c.find("error") is not None for c in cases)
    root = ET.Element("testsuites", name="flax-audit", tests=str(len(cases)), failures=str(failures),
                      errors=str(errors))
    suite = ET.SubElement(root, "testsuite", name=_x(f"flax-audit: {report.name}"), tests=str(len(cases)),
                          failures=str(failures), errors=str(errors), skipped="0")
    suite.extend(cases)
    ET.indent(root)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)


def _cell(text: str) -> str:
    """Text for Markdown: HTML escaped (a PR comment renders inline HTML), "|" escaped, one line."""
    return html.escape(str(text), quote=False).replace("|", "\\|").replace("\n", " ")


def summary_markdown(report, *, max_warnings: int = 5) -> str:
    """A short verdict for a pull-request comment: pass / warn / fail, the failed rules with their
    measured values, the first `max_warnings` warnings, and analyzers that stopped with an error."""
    icon = {"pass": "PASSED", "warn": "PASSED with warnings", "fail": "FAILED"}[report.verdict]
    policy = _policy(report)
    failed = [f for f in report.findings if f.status == "fail"]
    warnings = [f for f in report.findings if f.status == "warn"]
    lines = [f"## flax-audit: {_cell(report.name)}: **{icon}**", "",
             f"{sum(f.status == 'pass' for f in policy)} of {len(policy)} policy rules passed; "
             f"{len(failed)} failed, {len(warnings)} warnings."]
    broken = [s for s in report.sections.values() if s.failed]
    if broken:
        lines += ["", "**Incomplete:** " + "; ".join(f"`{s.name}` failed ({_cell(s.failed)})" for s in broken)]
    if failed:
        lines += ["", "### Failed", "", "| rule | measured | threshold |", "|---|---|---|"]
        lines += [f"| {_cell(f.title)} | {'not measured' if f.value is None else f'{f.value:.4g}'} | "
                  f"{'' if f.threshold is None else f'{f.threshold:g}'} |" for f in failed]
    if warnings:
        lines += ["", f"### Top warnings ({min(len(warnings), max_warnings)} of {len(warnings)})", ""]
        lines += [f"- **{_cell(f.title)}**: {_cell(f.message)}" for f in warnings[:max_warnings]]
    return "\n".join(lines) + "\n"
