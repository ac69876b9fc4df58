"""End to end: `audit dashboard REPORT` serves the app on a free localhost port; headless
Chromium loads it and the Overview renders (screenshot kept under test-artifacts/)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from audit.cli import main
from dashboards._browser import capture, find_chromium

CHROMIUM = find_chromium()
ARTIFACTS = os.path.join(os.path.dirname(__file__), "..", "..", "test-artifacts")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_dashboard_command_rejects_a_missing_report(capsys, tmp_path):
    assert main(["dashboard", str(tmp_path / "missing.json"), "--headless"]) == 2
    assert "does not exist" in capsys.readouterr().err


@pytest.mark.skipif(CHROMIUM is None, reason="no headless Chromium on this machine (.ci/run installs Debian's "
                                             "chromium package; apt-get install chromium to run this test)")
def test_dashboard_serves_the_overview_in_headless_chromium(credit_report):
    pytest.importorskip("websockets", reason="the DevTools client needs the websockets package (a Streamlit dependency)")
    port = _free_port()
    server = subprocess.Popen([sys.executable, "-m", "audit.cli", "dashboard", credit_report, "--port", str(port),
                               "--headless"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 120
        while True:
            assert server.poll() is None, server.stdout.read()
            try:
                with urllib.request.urlopen(f"http://localhost:{port}/_stcore/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            assert time.monotonic() < deadline, "the dashboard server did not come up"
            time.sleep(0.5)
        png = os.path.join(ARTIFACTS, "dashboard-overview.png")
        text = capture(f"http://localhost:{port}/", "Verdict", png=png, timeout=180)
        assert "Audit: credit-small" in text and "Model card" in text and "Data card" in text
        assert os.path.getsize(png) > 10_000
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
    assert server.returncode is not None
