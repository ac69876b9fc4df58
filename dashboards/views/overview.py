"""Overview: verdict, scorecard of findings, model and data cards, links to each page."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from audit.render.figures import audit as audit_figures
from dashboards import _state

SECTION_PAGES = {"explain": "views/explanations.py", "robustness": "views/robustness.py",
                 "corruptions": "views/robustness.py", "transfer": "views/robustness.py",
                 "certify": "views/certification.py", "explanation_stability": "views/stability.py",
                 "adversarial_training": "views/adversarial_training.py",
                 "fairness": "views/fairness.py", "fairness_mitigation": "views/fairness.py",
                 "imbalance": "views/imbalance.py", "imbalance_mitigation": "views/imbalance.py",
                 "slices": "views/slices.py", "ood": "views/ood.py", "drift": "views/ood.py",
                 "adversarial_detection": "views/ood.py", "missing": "views/missing.py"}
BANNER = {"pass": st.success, "warn": st.warning, "fail": st.error}

report = _state.require_report()
counts = {s: sum(f.status == s for f in report.findings) for s in ("pass", "warn", "fail")}
st.title(f"Audit: {report.name}")
BANNER[report.verdict](f"**Verdict: {report.verdict.upper()}**: {counts['fail']} failed, {counts['warn']} "
                       f"warnings, {counts['pass']} passed. " +
                       ("A policy rule failed: this model does not pass the release gate." if report.verdict == "fail"
                        else "No policy rule failed."))
cols = st.columns(4)
cols[0].metric("Failed", counts["fail"])
cols[1].metric("Warnings", counts["warn"])
cols[2].metric("Passed", counts["pass"])
cols[3].metric("Sections run", f"{sum(s.result is not None for s in report.sections.values())} / {len(report.sections)}")

st.subheader("Findings")
left, right = st.columns([3, 2])
with left:
    shown = st.multiselect("Show findings with status", ["fail", "warn", "pass"], default=["fail", "warn"],
                           key="overview_status")
    order = {"fail": 0, "warn": 1, "pass": 2}
    rows = [{"status": f.status, "section": f.id.split(":", 1)[0], "title": f.title, "message": f.message,
             "metric": f.metric, "value": f.value, "threshold": f.threshold}
            for f in sorted(report.findings, key=lambda f: order[f.status]) if f.status in shown]
    if rows:
        st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")
    else:
        st.caption("No findings with the chosen status.")
with right:
    if report.findings:
        st.pyplot(audit_figures.scorecard(report))

st.subheader("Sections")
for name, section in report.sections.items():
    c1, c2 = st.columns([3, 1])
    if getattr(section, "failed", None):
        c1.markdown(f"**{section.title}**: :red[failed, the report is incomplete] ({section.failed})")
    elif section.result is None:
        c1.markdown(f"**{section.title}**: skipped ({section.skipped})")
    else:
        n = sum(f.id.startswith(f"{name}:") for f in report.findings)
        c1.markdown(f"**{section.title}**: {len(section.metrics())} metrics, {n} findings, {section.seconds:.1f} s")
    if name in SECTION_PAGES:
        c2.page_link(SECTION_PAGES[name], label=f"{SECTION_PAGES[name][6:-3].replace('_', ' ').capitalize()} page",
                     icon=":material/arrow_forward:")

meta = report.metadata or {}
model, data = meta.get("model") or {}, meta.get("data") or {}
st.subheader("Model and data")
mcol, dcol = st.columns(2)
with mcol:
    st.markdown("**Model card**")
    arch = model.get("architecture") or {}
    training = model.get("training") or {}
    card = {"architecture": arch.get("name") or arch.get("arch") or ", ".join(f"{k}={v}" for k, v in arch.items()) or "n/a",
            "input shape": str(model.get("input_shape")), "classes": ", ".join(map(str, model.get("classes") or [])),
            "parameters": f"{model.get('parameters', 'n/a'):,}" if isinstance(model.get("parameters"), int) else "n/a",
            "fingerprint": str(model.get("fingerprint", "n/a"))[:16]}
    if training:
        card["best epoch"] = str(training.get("best_epoch"))
        card["training seconds"] = f"{training.get('seconds', float('nan')):.1f}"
    checkpoint = (meta.get("config") or {}).get("model", {}).get("path")
    card["checkpoint"] = checkpoint or "not recorded"
    st.dataframe(pd.DataFrame({"": list(card), "value": list(card.values())}), hide_index=True, width="stretch")
with dcol:
    st.markdown("**Data card**")
    classes = data.get("classes") or {}
    card = {"name": str(data.get("name")), "kind": str(data.get("kind")), "rows": str(data.get("rows")),
            "splits": ", ".join(f"{k} {v}" for k, v in (data.get("splits") or {}).items()),
            "classes": ", ".join(f"{k} ({v})" for k, v in classes.items()),
            "sensitive attributes": ", ".join(data.get("sensitive") or []) or "none",
            "fingerprint": str(data.get("fingerprint", "n/a"))[:16]}
    if data.get("raw_features"):
        card["raw features"] = ", ".join(data["raw_features"])
    st.dataframe(pd.DataFrame({"": list(card), "value": list(card.values())}), hide_index=True, width="stretch")

if report.sections:
    with st.expander("Where the time went"):
        st.pyplot(audit_figures.durations(report))
with st.expander("Configuration and library versions"):
    st.json({"config": meta.get("config"), "seed": meta.get("seed"), "libraries": meta.get("libraries"),
             "platform": meta.get("platform")}, expanded=False)
