import os
import re
import shutil
import subprocess

import numpy as np
import pytest

from audit import AuditConfig, run
from audit.data import Dataset, stratified_split
from audit.models import Model

EVIL = "<script>alert('x')</script>"


@pytest.fixture(scope="module")
def evil_report(tmp_path_factory, registry):
    import jax.numpy as jnp
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 3)).astype(np.float32)
    y = (X[:, 0] + 0.5 * rng.normal(size=300) > 0).astype(int)  # ~85% accuracy: the policy fails
    data = Dataset(X=X, y=y, feature_names=(EVIL, "b", "c"), class_names=(EVIL, "ok"),
                   sensitive={"group": np.where(X[:, 1] > 0, EVIL, "g")}, splits=stratified_split(y), name=EVIL)
    model = Model.from_function(lambda p, x: jnp.stack([-x[:, 0] * p, x[:, 0] * p], -1), jnp.float32(2.0),
                                input_shape=(3,), class_names=(EVIL, "ok"))
    config = AuditConfig(name=EVIL, analyzers={"accuracy": {}}, registry=registry,
                         policy=[{"metric": "accuracy.accuracy", "min": 0.99}])
    report = run(model, data, config, progress=False)
    path = tmp_path_factory.mktemp("html") / "report.html"
    report.to_html(path)
    return report, path


def test_html_is_self_contained_and_escaped(evil_report):
    report, path = evil_report
    html = path.read_text()
    assert EVIL not in html and "&lt;script&gt;" in html
    assert "<script" not in html.lower()
    assert not re.search(r"(src|href)\s*=\s*\"(?!data:|#)", html)  # only inline images and anchors
    assert "http://" not in html and "https://" not in html
    for anchor in ("summary", "scorecard", "section-accuracy", "appendix"):
        assert f'id="{anchor}"' in html
    assert "FAIL" in html and report.metadata["data"]["fingerprint"] in html
    assert html.count("data:image/png;base64,") >= 2


def test_failed_render_leaves_no_file(tmp_path, evil_report, monkeypatch):
    import audit.render.html as html_module
    report, _ = evil_report

    def broken(_):
        raise RuntimeError("boom")

    monkeypatch.setattr(html_module, "render_report", broken)
    with pytest.raises(RuntimeError):
        report.to_html(tmp_path / "out.html")
    assert os.listdir(tmp_path) == []


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


@pytest.mark.skipif(CHROMIUM is None, reason="no headless Chromium on this machine (.ci/run installs Debian's "
                                             "chromium package; apt-get install chromium to run this test)")
def test_report_renders_in_headless_chromium(evil_report, tmp_path):
    _, path = evil_report
    shot = os.path.abspath(os.path.join("test-artifacts", "report.png"))
    os.makedirs(os.path.dirname(shot), exist_ok=True)
    if os.path.exists(shot):
        os.remove(shot)
    result = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={tmp_path / 'profile'}", "--enable-logging=stderr", "--v=0",
         "--window-size=1200,2400", f"--screenshot={shot}", f"file://{path}"],
        capture_output=True, text=True, timeout=120)
    assert os.path.exists(shot) and os.path.getsize(shot) > 20_000, result.stderr[-2000:]
    console_errors = [line for line in result.stderr.splitlines()
                      if "CONSOLE" in line and ("Uncaught" in line or "Error" in line)]
    assert console_errors == []
