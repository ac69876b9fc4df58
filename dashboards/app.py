"""flax-audit dashboard: explore an audit report and the model behind it.

Run `audit dashboard [reports/out/<name>/report.json]` or
`streamlit run dashboards/app.py -- [report.json]`. This file is the router: it reads the
report path once per session, draws the sidebar and runs the chosen page.
"""

from __future__ import annotations

import os
import sys

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

import streamlit as st  # noqa: E402

from dashboards import _state  # noqa: E402

ENV_REPORT = "AUDIT_DASHBOARD_REPORT"


def _initial_report() -> str | None:
    """The report named on the command line (`streamlit run app.py -- PATH`) or in the
    AUDIT_DASHBOARD_REPORT environment variable."""
    if len(sys.argv) > 1 and os.path.basename(sys.argv[0]) == os.path.basename(__file__):
        return sys.argv[1]
    return os.environ.get(ENV_REPORT) or None


st.set_page_config(page_title="flax-audit dashboard", page_icon=":material/fact_check:", layout="wide")

first_run = "initialised" not in st.session_state
if first_run:
    st.session_state["initialised"] = True
    first = _initial_report()
    if first and _state.REPORT_KEY not in st.session_state:
        _state.choose(first)

loaded = _state.current()
have_report = loaded is not None and loaded.error is None
# Start is always the default page: Streamlit serves the default page at "/" only, so a page
# that is sometimes the default would answer "Page not found" at its own URL (/overview).
PAGES = {
    "start": st.Page("views/start.py", title="Start", icon=":material/folder_open:", default=True),
    "overview": st.Page("views/overview.py", title="Overview", icon=":material/fact_check:", url_path="overview"),
    "explanations": st.Page("views/explanations.py", title="Explanations", icon=":material/lightbulb:",
                            url_path="explanations"),
    "robustness": st.Page("views/robustness.py", title="Robustness", icon=":material/shield:", url_path="robustness"),
    "certification": st.Page("views/certification.py", title="Certification", icon=":material/verified:",
                             url_path="certification"),
    "stability": st.Page("views/stability.py", title="Explanation stability", icon=":material/blur_on:",
                         url_path="stability"),
    "adversarial_training": st.Page("views/adversarial_training.py", title="Adversarial training",
                                    icon=":material/fitness_center:", url_path="adversarial-training"),
    "fairness": st.Page("views/fairness.py", title="Fairness", icon=":material/balance:", url_path="fairness"),
    "imbalance": st.Page("views/imbalance.py", title="Imbalance", icon=":material/bar_chart:", url_path="imbalance"),
    "ood": st.Page("views/ood.py", title="Out of distribution", icon=":material/travel_explore:", url_path="ood"),
    "slices": st.Page("views/slices.py", title="Error analysis", icon=":material/troubleshoot:", url_path="slices"),
    "missing": st.Page("views/missing.py", title="Missing data", icon=":material/grid_off:", url_path="missing"),
}
page = st.navigation(list(PAGES.values()))
if first_run and have_report and page is PAGES["start"]:
    st.switch_page(PAGES["overview"])  # a report was given: land on its overview

with st.sidebar:
    if loaded is None:
        st.caption("No report open.")
    elif loaded.error:
        st.caption("The chosen report could not be read.")
    else:
        report = loaded.report
        st.markdown(f"**{report.name}**: {report.verdict.upper()}")
        st.caption(loaded.path)

page.run()
