"""Issue #13: a built wheel ships the dashboard app and the demo configs, so `audit dashboard` and
`audit demo` work outside the checkout. Builds the wheel (pip fetches the build backend: slow)."""

from __future__ import annotations

import glob
import os
import subprocess
import sys
import zipfile

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    out = tmp_path_factory.mktemp("wheel")
    result = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(out), ROOT],
                            capture_output=True, text=True, timeout=600)
    if result.returncode != 0:
        pytest.skip(f"cannot build a wheel here (no network for the build backend?): {result.stderr[-300:]}")
    return glob.glob(str(out / "*.whl"))[0]


@pytest.mark.slow
def test_wheel_ships_dashboards_and_demo_configs(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {"audit/demos/credit.yaml", "audit/demos/mnist.yaml", "dashboards/app.py", "dashboards/views/overview.py",
            "dashboards/views/start.py", "audit/render/templates/report.html.j2"} <= names
    with zipfile.ZipFile(wheel) as z:  # the configs are real files in the wheel, not links
        assert z.read("audit/demos/credit.yaml") == open(os.path.join(ROOT, "reports", "credit.yaml"), "rb").read()


@pytest.mark.slow
def test_installed_wheel_finds_its_app_and_configs_outside_the_checkout(wheel, tmp_path):
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target), wheel],
                   check=True, capture_output=True, timeout=600)
    work = tmp_path / "elsewhere"
    work.mkdir()
    code = ("import audit, audit.cli as c\n"
            "from audit.pipeline import AuditConfig\n"
            f"assert audit.__file__.startswith({str(target)!r}), audit.__file__\n"
            f"assert c._dashboard_app().startswith({str(target)!r})\n"
            "for name in ('credit', 'mnist'):\n"
            f"    path = c._config_path(name); assert path.startswith({str(target)!r}), path\n"
            "    AuditConfig.from_yaml(path)\n")
    result = subprocess.run([sys.executable, "-c", code], cwd=work, capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": str(target)}, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
