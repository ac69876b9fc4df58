import json
import textwrap

from audit import cli

CONFIG = """\
name: cli-unit
seed: 0
data:
  dataset: credit
  options: {{n: 800}}
model:
  path: {model}
  train: {{arch: mlp, epochs: 25, batch_size: 32, widths: [16]}}
analyzers:
  imbalance: {{}}
policy:
  - {{metric: imbalance.accuracy, min: {threshold}}}
"""


def write(tmp_path, threshold, name="config.yaml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(CONFIG.format(model=tmp_path / "model", threshold=threshold)))
    return str(path)


def test_run_exit_codes_and_outputs(tmp_path, capsys):
    out = tmp_path / "out"
    assert cli.main(["run", write(tmp_path, 0.5), "--out", str(out), "--quiet"]) == 0
    assert (tmp_path / "model" / "manifest.json").exists()  # trained and saved on first run
    assert {p.name for p in out.iterdir()} >= {"report.json", "report.html"}
    printed = capsys.readouterr().out
    # the policy passes; the imbalance analyzer's own advisories may make the verdict WARN, never FAIL
    assert ("cli-unit: PASS" in printed or "cli-unit: WARN" in printed) and "report written to" in printed
    # second run loads the checkpoint instead of retraining, and a strict policy fails with exit 1
    assert cli.main(["run", write(tmp_path, 0.999), "--out", str(tmp_path / "strict"), "--quiet"]) == 1
    assert "cli-unit: FAIL" in capsys.readouterr().out
    # regenerate HTML from JSON, and diff the two runs
    assert cli.main(["report", str(out / "report.json"), "--html", str(tmp_path / "again.html")]) == 0
    assert (tmp_path / "again.html").read_text().startswith("<!DOCTYPE html>")
    assert cli.main(["diff", str(out / "report.json"), str(out / "report.json")]) == 0
    assert cli.main(["diff", str(out / "report.json"), str(tmp_path / "strict" / "report.json")]) == 1
    assert "finding   worse: policy:imbalance.accuracy: pass -> fail" in capsys.readouterr().out


def test_bad_config_exits_2_without_output(tmp_path, capsys):
    path = tmp_path / "bad.yaml"
    path.write_text("name: x\nanalyzers:\n  imbalance: {splt: test}\n")
    out = tmp_path / "out"
    assert cli.main(["run", str(path), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "unknown setting 'analyzers.imbalance.splt'" in err[0] and "line 3" in err[0]
    assert not out.exists()


def test_report_of_a_non_report_exits_2(tmp_path, capsys):
    path = tmp_path / "x.json"
    path.write_text(json.dumps({"hello": 1}))
    assert cli.main(["report", str(path), "--html", str(tmp_path / "x.html")]) == 2
    assert "not a flax-audit report" in capsys.readouterr().err
    assert not (tmp_path / "x.html").exists()
