"""Issue #13 in the dashboard: page URLs, landing on the overview, and the "Run an audit" tab
working on its own preselected defaults (no shape clash, no progress bar left running)."""

from __future__ import annotations

import os

from streamlit.testing.v1 import AppTest

from audit import datasets, train

APP = os.path.join(os.path.dirname(__file__), "..", "..", "dashboards", "app.py")


def test_start_is_the_only_default_page_so_every_page_has_its_url():
    # Streamlit serves the default page at "/" only; /overview must never be the default.
    source = open(APP).read()
    assert source.count("default=True") == 1 and 'views/start.py", title="Start", icon=":material/folder_open:", default=True' in source
    assert "default=have_report" not in source


def test_a_report_given_at_start_lands_on_its_overview(credit_report):
    at = AppTest.from_file(APP, default_timeout=180)
    at.session_state["report_path"] = credit_report
    at.run()
    assert not at.exception
    assert at.title[0].value == "Audit: credit-small"


def test_run_tab_defaults_fit_and_finish(tmp_path, monkeypatch, digits_cnn):
    data = datasets.load("credit", n=1500, seed=0, include_sensitive=True)
    model = train("mlp", data, epochs=2, widths=(8,), progress=False, seed=0)
    recorded = {**model.metadata["data"], "config": {"dataset": "credit", "options": {"n": 1500, "include_sensitive": True}}}
    model.replace(metadata={**model.metadata, "data": recorded}).save(tmp_path / "models" / "credit")
    digits_cnn.save(tmp_path / "models" / "aaa-digits")  # another dataset's checkpoint: not offered for credit
    monkeypatch.chdir(tmp_path)
    at = AppTest.from_file(os.path.abspath(APP), default_timeout=300)
    at.switch_page("views/start.py").run()
    assert at.selectbox(key="run_dataset").value == "credit"
    options = at.selectbox(key="run_checkpoint").options
    assert options[0] == os.path.join("models", "credit") and not any("digits" in o for o in options)
    at.multiselect(key="run_analyzers").set_value(["imbalance"])
    at.button(key="run_go").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    assert at.title[0].value == "Audit: credit-dashboard"  # opened the fresh report
    assert os.path.isfile(tmp_path / "reports" / "out" / "credit-dashboard" / "report.json")


def test_dashboard_command_forwards_sigterm_and_waits_for_streamlit(tmp_path):
    """SIGTERM to `audit dashboard` stops its Streamlit child too (no leaked server)."""
    import signal
    import subprocess
    import sys
    import time
    import urllib.request

    server = subprocess.Popen([sys.executable, "-m", "audit.cli", "dashboard", "--port", "0", "--headless"],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=tmp_path)
    try:
        port = int(server.stdout.readline().split("localhost:")[1].split()[0])
        deadline = time.monotonic() + 120
        while True:
            assert server.poll() is None
            try:
                with urllib.request.urlopen(f"http://localhost:{port}/_stcore/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            assert time.monotonic() < deadline, "the dashboard server did not come up"
            time.sleep(0.5)
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=60) == 0
        try:
            urllib.request.urlopen(f"http://localhost:{port}/_stcore/health", timeout=2)
        except OSError:
            pass  # the server is gone with its parent
        else:
            raise AssertionError("the Streamlit server outlived `audit dashboard`")
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()


def test_single_file_export_loads_without_the_sidecar(credit_report, tmp_path, monkeypatch):
    import json
    import shutil

    from audit import AuditReport
    from audit.cli import main
    from audit.pipeline import _report

    monkeypatch.setattr(_report, "_SIDECAR_MIN", 16)  # small arrays go to the sidecar too
    credit_report = AuditReport.load(credit_report).to_json(tmp_path / "orig" / "report.json")
    assert os.path.isfile(tmp_path / "orig" / "report.arrays.npz")
    shared = tmp_path / "elsewhere" / "shared.json"
    assert main(["report", credit_report, "--single-file", str(shared)]) == 0
    assert sorted(os.listdir(shared.parent)) == ["shared.json"] and "sidecar" not in json.loads(shared.read_text())
    from audit.results import to_jsonable

    def canonical(report):
        return json.dumps(to_jsonable(report.to_dict()), sort_keys=True)
    assert canonical(AuditReport.load(shared)) == canonical(AuditReport.load(credit_report))
    # the usual export needs its sidecar, with a clear message when it is missing
    copy = tmp_path / "copy"
    copy.mkdir()
    shutil.copy(credit_report, copy / "report.json")
    try:
        AuditReport.load(copy / "report.json")
    except Exception as exc:  # noqa: BLE001
        assert "array file" in str(exc)
    else:
        raise AssertionError("loaded without its sidecar")


def test_a_failed_section_shows_as_failed_in_the_dashboard(credit_report, tmp_path):
    import dataclasses

    from audit import AuditReport
    from audit.pipeline import Section

    report = AuditReport.load(credit_report)
    sections = {**report.sections, "robustness": Section(name="robustness", title="Adversarial robustness",
                                                          failed="FloatingPointError: NaN loss")}
    path = dataclasses.replace(report, sections=sections).to_json(tmp_path / "half" / "report.json")
    for page, where in (("overview", "markdown"), ("robustness", "error")):
        at = AppTest.from_file(APP, default_timeout=180)
        at.session_state["report_path"] = str(path)
        at.run()
        at.switch_page(f"views/{page}.py").run()
        assert not at.exception, [e.value for e in at.exception]
        shown = " ".join(e.value for e in getattr(at, where))
        assert "FloatingPointError: NaN loss" in shown and ("incomplete" in shown)
