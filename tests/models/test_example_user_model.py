"""examples/user_model end to end, small: the user's own Optax training writes Orbax checkpoints,
then `audit run` audits both models from their YAML configs (exit 0 or 1, HTML written)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest
import yaml

from audit.cli import main

EXAMPLE = os.path.join(os.path.dirname(__file__), "..", "..", "examples", "user_model")


@pytest.mark.slow
def test_example_trains_saves_with_orbax_and_audits_from_yaml(tmp_path):
    folder = tmp_path / "user_model"
    shutil.copytree(EXAMPLE, folder, ignore=shutil.ignore_patterns("checkpoints", "__pycache__"))
    subprocess.run([sys.executable, str(folder / "train.py"), "--epochs", "1"], check=True, cwd=tmp_path)
    assert (folder / "checkpoints" / "digits_cnn" / "1").is_dir() and (folder / "checkpoints" / "credit_mlp").is_dir()
    for name in ("digits_cnn", "credit_mlp"):
        config = yaml.safe_load((folder / f"{name}.yaml").read_text())
        for settings in config["analyzers"].values():  # the same analyzers, on fewer rows
            settings.update({k: 40 for k in ("n",) if k in settings})
        config["analyzers"].get("certify", {}).update(n0=8, n_samples=32, smoothing_attack_steps=0)
        config["analyzers"].get("fairness", {}).update(n_bootstrap=20)
        config["analyzers"].get("fairness_mitigation", {}).update(train_options={"epochs": 1}, n_bootstrap=20)
        (folder / f"{name}.yaml").write_text(yaml.safe_dump(config))
        out = tmp_path / "out" / name
        code = main(["run", str(folder / f"{name}.yaml"), "--out", str(out), "--quiet"])
        assert code in (0, 1)
        html = (out / "report.html").read_text()
        assert "factory" in html or config["name"] in html
        report = yaml.safe_load((out / "report.json").read_text())
        arch = report["metadata"]["model"]["architecture"]
        assert arch["factory"] == config["model"]["factory"] and arch["checkpoint"].startswith(str(folder))
        assert "certify" in report["sections"] and not report["sections"]["certify"].get("skipped")
