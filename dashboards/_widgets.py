"""Shared page pieces: the example picker, finding lists and cached figures."""

from __future__ import annotations

import io
import os
from typing import Callable

import numpy as np
import streamlit as st

STATUS_ICON = {"pass": ":material/check_circle:", "warn": ":material/warning:", "fail": ":material/cancel:"}


def findings_list(findings, *, empty: str = "No findings.") -> None:
    """Each finding as one line with its status; warnings and failures first."""
    order = {"fail": 0, "warn": 1, "pass": 2}
    if not findings:
        st.caption(empty)
    for f in sorted(findings, key=lambda f: order[f.status]):
        st.markdown(f"{STATUS_ICON[f.status]} **{f.title}**: {f.message}")


def section_findings(report, section: str) -> list:
    """The report's findings about `section`: its policy rules (`policy:<section>.<metric>`) and the
    analyzer's own findings (`<section>:...`), with the statuses the report gave them."""
    return [f for f in report.findings if f.id.startswith((f"{section}:", f"policy:{section}."))]


def finding_attribute(finding) -> str | None:
    """The sensitive attribute a fairness finding is about: the part after the metric name
    ("fairness.demographic_parity_difference:sex" -> "sex"; "tpr:sex=female" -> "sex")."""
    text = finding.metric or finding.id.split(":", 1)[-1]
    if text.startswith("policy:"):
        text = text.removeprefix("policy:")
    parts = text.split(":")
    return parts[1].split("=")[0] if len(parts) > 1 else None


def failing_attribute(report, attributes: list[str], section: str = "fairness") -> str:
    """The attribute to open a page on: the first one a failed finding names, else one a warning
    names, else the first attribute."""
    for status in ("fail", "warn"):
        for f in section_findings(report, section):
            if f.status == status and finding_attribute(f) in attributes:
                return finding_attribute(f)
    return attributes[0]


def section_result(report, name: str):
    """The section's result, or None after telling the reader why it is missing."""
    section = report.sections.get(name)
    if section is None:
        st.info(f"This audit did not run the {name!r} analyzer; add it under `analyzers:` in the config.")
        return None
    if section.result is None:
        if getattr(section, "failed", None):
            st.error(f"{section.title} failed, so this report is incomplete: {section.failed}")
        else:
            st.info(f"{section.title} was skipped: {section.skipped}.")
        return None
    return section.result


def pick_example(model, data, proba: np.ndarray, *, key: str, restrict: np.ndarray | None = None) -> int | None:
    """Choose a test row by filter (all, misclassified, correct, a class, a sensitive group)
    and position; returns the row index into the test split (None when the filter is empty)."""
    from dashboards._live import split_of

    test = split_of(data)
    pred = proba.argmax(axis=1)
    filters = ["all", "misclassified", "correctly classified"]
    filters += [f"true class = {c}" for c in data.class_names]
    for attr in sorted(test.sensitive):
        values = np.asarray(test.sensitive[attr])
        if len(np.unique(values)) <= 8:
            filters += [f"{attr} = {v}" for v in np.unique(values)]
    c1, c2 = st.columns([2, 1])
    choice = c1.selectbox("Examples", filters, key=f"{key}_filter")
    mask = np.ones(len(test.y), bool) if restrict is None else np.isin(np.arange(len(test.y)), restrict)
    if choice == "misclassified":
        mask &= pred != test.y
    elif choice == "correctly classified":
        mask &= pred == test.y
    elif choice.startswith("true class = "):
        mask &= test.y == list(data.class_names).index(choice.removeprefix("true class = "))
    elif choice != "all":
        attr, value = choice.split(" = ", 1)
        mask &= np.asarray(test.sensitive[attr]).astype(str) == value
    rows = np.flatnonzero(mask)
    if rows.size == 0:
        st.info("No test example matches this filter.")
        return None
    position = c2.number_input(f"Example (1 to {rows.size})", min_value=1, max_value=int(rows.size), value=1,
                               step=1, key=f"{key}_position")
    row = int(rows[int(position) - 1])
    names = data.class_names
    st.caption(f"Test row {row}: true class **{names[test.y[row]]}**, predicted **{names[pred[row]]}** "
               f"({proba[row, pred[row]]:.0%}).")
    return row


@st.cache_data(max_entries=512, show_spinner=False)
def _png(key: str, _make: Callable) -> bytes:
    fig = _make()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=200, bbox_inches="tight")  # st.pyplot's settings
    return buffer.getvalue()


def figure(name: str, make: Callable, *params, width="stretch") -> None:
    """Show the matplotlib figure `make()` draws, drawn once per (open report, `name`, `params`)
    and kept as PNG. Pages rerun on every widget change; redrawing the report's unchanged
    figures each time was most of a what-if's latency."""
    path = st.session_state.get("report_path") or ""
    stamp = os.path.getmtime(path) if path and os.path.isfile(path) else 0.0
    st.image(_png(f"{path}:{stamp}|{name}|{params!r}", make), width=width)
