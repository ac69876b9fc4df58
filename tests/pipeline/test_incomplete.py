"""Issue #13: an analyzer failing mid-audit keeps the finished sections; the report is written
marked incomplete, names the failed section and why, and `audit run` exits 2."""

import json
import textwrap

import pytest

from audit import AuditReport, cli
from audit.pipeline import ANALYZERS, AnalyzerSpec

from tests.pipeline.conftest import AccuracyResult, accuracy_analyzer


def broken_analyzer(model, data, *, seed: int = 0) -> AccuracyResult:
    raise FloatingPointError("the loss went NaN at step 3")


@pytest.fixture
def broken(monkeypatch):
    """The CLI reads the default registry: the test analyzers join it for this test only."""
    monkeypatch.setitem(ANALYZERS, "broken", AnalyzerSpec("broken", "A broken analyzer", broken_analyzer,
                                                          AccuracyResult))
    monkeypatch.setitem(ANALYZERS, "accuracy", AnalyzerSpec("accuracy", "Accuracy", accuracy_analyzer,
                                                            AccuracyResult))


def test_failed_section_gives_an_incomplete_report_and_exit_2(tmp_path, capsys, broken):
    config = tmp_path / "config.yaml"
    config.write_text(textwrap.dedent(f"""\
        name: half
        data: {{dataset: credit, options: {{n: 600}}}}
        model: {{path: {tmp_path / 'model'}, train: {{arch: mlp, epochs: 2, widths: [8]}}}}
        analyzers: {{accuracy: {{}}, broken: {{}}}}
        policy: [{{metric: accuracy.accuracy, min: 0.0}}]
        """))
    out = tmp_path / "out"
    assert cli.main(["run", str(config), "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "section 'broken' failed: FloatingPointError: the loss went NaN at step 3" in err
    report = AuditReport.load(out / "report.json")
    assert report.incomplete and not report.passed and report.verdict == "fail"
    assert report.sections["accuracy"].result is not None  # the finished section is kept
    assert report.sections["broken"].failed == "FloatingPointError: the loss went NaN at step 3"
    assert any(f.id == "broken:failed" and f.status == "fail" for f in report.findings)
    assert json.loads((out / "report.json").read_text())["incomplete"] is True
    html = (out / "report.html").read_text()
    assert "the report is incomplete: FloatingPointError: the loss went NaN at step 3" in html
