"""Start: open a saved AuditReport (path, file chooser over reports/out/, upload), or pick a
bundled dataset and a model checkpoint and run an audit here with a progress bar."""

from __future__ import annotations

import os

import streamlit as st

from dashboards import _run, _state

st.title("flax-audit dashboard")
st.caption("Open an audit report to explore it, or run a new audit.")

loaded = _state.current()
if loaded is not None and loaded.error:
    st.error(loaded.error)
elif loaded is not None:
    st.success(f"Open: **{loaded.report.name}** ({loaded.path})")
    st.page_link("views/overview.py", label="Go to the overview")


def _open(path: str) -> None:
    result = _state.load_report(path)
    if result.error:
        st.error(result.error)
        return
    _state.choose(path)
    st.switch_page("views/overview.py")


tab_path, tab_upload, tab_run = st.tabs(["Open a saved report", "Upload", "Run an audit"])
with tab_path:
    found = _state.saved_reports()
    if found:
        pick = st.selectbox(f"Reports under {_state.REPORTS_DIR}/", found, key="start_found")
        if st.button("Open this report", key="start_open_found"):
            _open(pick)
    else:
        st.caption(f"No reports under {_state.REPORTS_DIR}/ yet (run `audit demo` or `audit run <config>`).")
    typed = st.text_input("Or a path to a report.json", key="start_path")
    if st.button("Open path", key="start_open_path") and typed:
        _open(typed)

with tab_upload:
    files = st.file_uploader(f"report.json, and its .arrays.npz if it has one (at most {_state.MAX_UPLOAD_MB} MiB)",
                             type=["json", "npz"], accept_multiple_files=True, max_upload_size=_state.MAX_UPLOAD_MB,
                             key="start_upload")
    if files and st.button("Open upload", key="start_open_upload"):
        try:
            path = _state.save_upload([(f.name, f.getvalue()) for f in files])
        except Exception as exc:  # noqa: BLE001 - shown as one line
            st.error(_state.describe_error(exc, "reading the upload"))
        else:
            _open(path)

with tab_run:
    from audit.data import NAMES
    from audit.pipeline import ANALYZERS, AuditConfig

    source = st.radio("What to audit", ["Bundled data and a zoo model", "A config file (YAML)"],
                      horizontal=True, key="run_source")
    if source == "A config file (YAML)":
        st.caption("A config on this machine may name your own model (model.factory: importing it runs that "
                   "code, as `audit run` does). Uploaded configs may not name code.")
        config_path = st.text_input("Path to a config file", key="run_config_path")
        upload = st.file_uploader("Or upload one", type=["yaml", "yml"], key="run_config_upload")
        if st.button("Run this config", type="primary", key="run_config_go", disabled=not (config_path or upload)):
            try:
                config = (_run.config_from_file(config_path) if config_path
                          else _run.config_from_upload(upload.name, upload.getvalue()))
                bar = st.progress(0.0, text="starting")
                report, path = _run.run_audit(config, on_step=lambda i, n, what: bar.progress(i / n, text=what))
            except Exception as exc:  # noqa: BLE001 - shown as one line
                st.error(_state.describe_error(exc, "the audit"))
            else:
                st.success(f"{report.name}: {report.verdict.upper()}; saved to {path}")
                _open(path)
        st.stop()
    c1, c2 = st.columns(2)
    dataset = c1.selectbox("Dataset", list(NAMES), key="run_dataset")
    found = dict(_run.checkpoints(dataset))  # only checkpoints trained on this dataset
    fresh = f"train a new zoo model (saved to models/{dataset}-dashboard)"
    checkpoint = c2.selectbox("Model checkpoint", [*found, fresh], key="run_checkpoint")
    kind = "image" if dataset in ("digits", "mnist") else "tabular"
    available = [n for n, s in ANALYZERS.items() if kind in s.kinds and not s.retrains
                 and not (s.needs_sensitive and kind == "image")]
    chosen = st.multiselect("Analyzers", available, default=[n for n in available if n != "explain"], key="run_analyzers")
    quick = st.toggle("Quick settings (small samples; seconds to a minute)", value=True, key="run_quick")
    name = st.text_input("Report name", value=f"{dataset}-dashboard", key="run_name")
    if st.button("Run audit", type="primary", key="run_go", disabled=not chosen):
        if checkpoint in found:  # the data loaded the way this checkpoint was trained on it
            data, model = found[checkpoint], {"path": checkpoint}
        else:
            data, model = {"dataset": dataset}, {"path": os.path.join("models", f"{dataset}-dashboard"),
                                                 "train": {"epochs": 10}}
        bar = st.progress(0.0, text="starting")
        try:
            config = AuditConfig(name=name, seed=0, data=data, model=model,
                                 analyzers={a: (_run.quick_settings(a, kind) if quick else {}) for a in chosen})
            report, path = _run.run_audit(config, on_step=lambda i, n, what: bar.progress(i / n, text=what))
        except Exception as exc:  # noqa: BLE001 - shown as one line
            bar.empty()  # no progress bar left running over the error
            st.error(_state.describe_error(exc, "the audit"))
        else:
            bar.empty()
            st.success(f"{report.name}: {report.verdict.upper()}; saved to {path}")
            _open(path)
