"""Which report the dashboard shows, loaded safely and cached; the model and data behind it.

The report comes from a path (command line, file chooser) or an upload. Loading never raises
into the page: bad files become one readable message. Reports are cached with
`st.cache_data` (keyed by path, size and modification time); the model and data an audit used
are re-created once per config with `st.cache_resource`.
"""

from __future__ import annotations

import dataclasses
import json
import os
import tempfile
from typing import Any

import streamlit as st

from audit.errors import AuditInputError

REPORT_KEY = "report_path"
MAX_UPLOAD_MB = 50
REPORTS_DIR = os.path.join("reports", "out")


@dataclasses.dataclass(frozen=True)
class Loaded:
    """A report, or the one-line reason it could not be read."""

    report: Any = None
    path: str | None = None
    error: str | None = None


@dataclasses.dataclass(frozen=True)
class Context:
    """The model and data an audit used (None when they cannot be re-created, with `error`)."""

    model: Any = None
    data: Any = None
    error: str | None = None
    warnings: tuple[str, ...] = ()

    @property
    def live(self) -> bool:
        return self.model is not None and self.data is not None


def describe_error(exc: BaseException, what: str) -> str:
    """One line for people: our own input errors as they are, anything else with its type."""
    if isinstance(exc, AuditInputError):
        return str(exc)
    return f"{what} failed: {type(exc).__name__}: {exc}"


@st.cache_data(max_entries=8, show_spinner="Reading the report ...")
def _load_cached(path: str, size: int, mtime: float):
    from audit.pipeline import AuditReport

    return AuditReport.load(path)


def load_report(path: str) -> Loaded:
    """Read a saved AuditReport; any problem becomes `Loaded.error`."""
    path = os.path.abspath(os.fspath(path))
    if not os.path.isfile(path):
        return Loaded(path=path, error=f"report {path!r} does not exist.")
    try:
        stat = os.stat(path)
        return Loaded(report=_load_cached(path, stat.st_size, stat.st_mtime), path=path)
    except RecursionError:
        return Loaded(path=path, error=f"report {path!r} is nested too deeply to be a flax-audit report.")
    except Exception as exc:  # noqa: BLE001 - the page shows one line, never a traceback
        return Loaded(path=path, error=describe_error(exc, f"reading {path!r}"))


def current() -> Loaded | None:
    """The report chosen in this session (None when none has been chosen yet)."""
    path = st.session_state.get(REPORT_KEY)
    return load_report(path) if path else None


def choose(path: str) -> None:
    st.session_state[REPORT_KEY] = os.path.abspath(path)


def require_report():
    """The current report, or stop the page with a pointer to the Start page."""
    loaded = current()
    if loaded is None:
        st.info("No audit report is open yet. Open one on the **Start** page, or run "
                "`audit dashboard reports/out/<name>/report.json`.")
        st.page_link("views/start.py", label="Go to Start")
        st.stop()
    if loaded.error:
        st.error(loaded.error)
        st.page_link("views/start.py", label="Open another report")
        st.stop()
    return loaded.report


def saved_reports(root: str = REPORTS_DIR) -> list[str]:
    """report.json files under `root` (newest first)."""
    found = []
    if os.path.isdir(root):
        for folder, _, files in os.walk(root):
            found += [os.path.join(folder, f) for f in files if f.endswith(".json")]
    return sorted(found, key=lambda p: -os.path.getmtime(p))


# ---- uploads -----------------------------------------------------------------------------
def save_upload(files: list[tuple[str, bytes]], *, max_bytes: int = MAX_UPLOAD_MB * 2 ** 20,
                folder: str | None = None) -> str:
    """Write an uploaded report (JSON, plus its `.arrays.npz` sidecar if it has one) to a fresh
    folder and return the JSON's path. Nothing is unpickled: JSON is parsed as JSON and the
    sidecar is read later with `allow_pickle=False`. Raises AuditInputError on bad uploads."""
    if not files:
        raise AuditInputError("no file uploaded; choose a report.json (and its .arrays.npz, if any).")
    total = sum(len(b) for _, b in files)
    if total > max_bytes:
        raise AuditInputError(f"the upload is {total / 2 ** 20:.1f} MiB; the limit is "
                              f"{max_bytes / 2 ** 20:.0f} MiB. Open large reports by path instead.")
    documents = [(n, b) for n, b in files if n.lower().endswith(".json")]
    sidecars = [(n, b) for n, b in files if n.lower().endswith(".npz")]
    others = [n for n, _ in files if not n.lower().endswith((".json", ".npz"))]
    if others or len(documents) != 1 or len(sidecars) > 1:
        raise AuditInputError("upload exactly one report .json and at most one .arrays.npz sidecar "
                              f"(got {[n for n, _ in files]}).")
    payload = documents[0][1]
    try:
        document = json.loads(payload)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise AuditInputError(f"{documents[0][0]!r} is not valid JSON ({exc}).") from None
    if not isinstance(document, dict) or document.get("kind") != "flax-audit-report":
        raise AuditInputError(f"{documents[0][0]!r} is not a flax-audit report (no 'kind': 'flax-audit-report').")
    folder = folder or tempfile.mkdtemp(prefix="audit-upload-")
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, "report.json")
    with open(path, "wb") as f:
        f.write(payload)
    wanted = document.get("sidecar")
    if wanted:
        if not sidecars:
            raise AuditInputError(f"this report keeps its arrays in {os.path.basename(str(wanted))!r}; "
                                  "upload that file together with the JSON.")
        with open(os.path.join(folder, os.path.basename(str(wanted))), "wb") as f:
            f.write(sidecars[0][1])
    return path


# ---- model and data ----------------------------------------------------------------------
def _checkpoint(path: str | None, report_path: str | None) -> str | None:
    """The model checkpoint folder: as written (relative to the working directory), else
    relative to the report's folder and its parents."""
    if not path:
        return None
    candidates = [path]
    if report_path and not os.path.isabs(path):
        folder = os.path.dirname(report_path)
        for _ in range(4):
            candidates.append(os.path.join(folder, path))
            folder = os.path.dirname(folder)
    for c in candidates:
        if os.path.isfile(os.path.join(c, "manifest.json")):
            return c
    return None


@st.cache_resource(max_entries=4, show_spinner="Loading the model and data the audit used ...")
def _context(config_json: str, report_path: str | None, data_fp: str | None, model_fp: str | None) -> Context:
    from audit.models import Model
    from audit.pipeline import AuditConfig, load_data

    try:
        config = AuditConfig.from_dict(json.loads(config_json))
    except Exception as exc:  # noqa: BLE001
        return Context(error=describe_error(exc, "reading the report's config"))
    if not config.data:
        return Context(error="the report does not say which data it audited (it was run from Python "
                             "without a 'data' section), so live what-ifs are off.")
    if "factory" in config.model:
        return _factory_context(config, data_fp, model_fp)
    path = _checkpoint(config.model.get("path"), report_path)
    if path is None:
        where = config.model.get("path")
        return Context(error=("no model checkpoint at " + repr(where) if where else
                              "the report names no model checkpoint") + ", so live what-ifs are off. "
                             "Run `audit run <config>` (it saves the checkpoint) and reopen.")
    try:
        data = load_data(config)
    except Exception as exc:  # noqa: BLE001
        return Context(error=describe_error(exc, "loading the audited data"))
    try:
        model = Model.load(path)
    except Exception as exc:  # noqa: BLE001
        return Context(error=describe_error(exc, f"loading the checkpoint {path!r}"))
    warnings = []
    if data_fp and data.fingerprint() != data_fp:
        warnings.append("the data re-created from the config differs from the audited data (fingerprint "
                        "mismatch); live results may not match the report.")
    if model_fp and model.fingerprint() != model_fp:
        warnings.append(f"the checkpoint at {path!r} is not the audited model (fingerprint mismatch); "
                        "live results describe the checkpoint, not the report.")
    if tuple(model.input_shape) != tuple(data.input_shape):
        return Context(error=f"the checkpoint takes inputs {model.input_shape} but the data has {data.input_shape}.")
    return Context(model=model, data=data, warnings=tuple(warnings))


def _factory_context(config, data_fp: str | None, model_fp: str | None) -> Context:
    """A user's model, rebuilt from the factory and checkpoint its config names (importing that
    code, as the audit itself did)."""
    from audit.models._retrain import from_config
    from audit.pipeline import load_data

    if not config.model.get("checkpoint"):
        return Context(error=f"the model came from the factory {config.model['factory']!r} and was trained during "
                             "the audit without a checkpoint, so live what-ifs are off. Give model.checkpoint.")
    try:
        data = load_data(config)
    except Exception as exc:  # noqa: BLE001
        return Context(error=describe_error(exc, "loading the audited data"))
    try:
        model = from_config(config.model, data, seed=config.seed)
    except Exception as exc:  # noqa: BLE001
        return Context(error=describe_error(exc, f"rebuilding the model from {config.model['factory']!r}"))
    warnings = []
    if data_fp and data.fingerprint() != data_fp:
        warnings.append("the data re-created from the config differs from the audited data (fingerprint "
                        "mismatch); live results may not match the report.")
    if model_fp and model.fingerprint() != model_fp:
        warnings.append(f"the checkpoint at {config.model['checkpoint']!r} is not the audited model (fingerprint "
                        "mismatch); live results describe the checkpoint, not the report.")
    return Context(model=model, data=data, warnings=tuple(warnings))


def context(report, report_path: str | None = None) -> Context:
    """The model and data behind `report` (cached); problems become `Context.error`."""
    meta = report.metadata or {}
    config = meta.get("config") or {}
    try:
        return _context(json.dumps(config, sort_keys=True), report_path, (meta.get("data") or {}).get("fingerprint"),
                        (meta.get("model") or {}).get("fingerprint"))
    except Exception as exc:  # noqa: BLE001
        return Context(error=describe_error(exc, "re-creating the model and data"))


def live_context(report) -> Context:
    """`context` for the current report, with its warnings shown on the page."""
    loaded = current()
    ctx = context(report, loaded.path if loaded else None)
    if ctx.error:
        st.info(f"Live what-ifs are off: {ctx.error}")
    for w in ctx.warnings:
        st.warning(w)
    return ctx
