"""Many processes: `audit run --distributed` and the `distributed:` config section.

The slow test starts two local CPU processes (jax.distributed over gloo) on a small audit
(imbalance, fairness with its bootstrap, robustness with FGSM/PGD and minimal perturbations) and
checks that process 0's report equals the single-process report, number for number, while
process 1 writes nothing.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest

from audit.cli import build_parser
from audit.errors import AuditInputError
from audit.pipeline import AuditConfig

SMALL = """\
name: small
seed: 0
data:
  dataset: credit
  options: {n: 600, include_sensitive: true}
model:
  path: model
  train: {arch: mlp, epochs: 2, widths: [8], batch_size: 32}
analyzers:
  imbalance: {}
  fairness: {n_bootstrap: 50, proxies: false}
  robustness: {n: 24, eps: [0.1, 0.3], attacks: [fgsm, pgd], steps: 3, bootstrap: 30, min_perturbation_n: 4,
               search_steps: 2, batch_size: 8}
"""


def test_distributed_section_is_checked_and_kept():
    config = AuditConfig.from_dict({"name": "x", "distributed": {"coordinator_address": "node001:1234",
                                                                 "num_processes": 4}})
    assert config.distributed == {"coordinator_address": "node001:1234", "num_processes": 4}
    assert AuditConfig.from_dict(config.to_dict()).distributed == config.distributed
    assert "distributed" not in AuditConfig.from_dict({"name": "x"}).to_dict()  # absent stays absent
    for bad, words in (({"coordinator": "a:1"}, "unknown key"), ({"coordinator_address": "node001"}, "host:port"),
                       ({"num_processes": 0}, "positive"), ({"process_id": -1}, ">= 0")):
        with pytest.raises(AuditInputError, match=words):
            AuditConfig.from_dict({"distributed": bad})
    assert build_parser().parse_args(["run", "c.yaml", "--distributed"]).distributed


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def _comparable(path) -> dict:
    """The report without what differs between any two runs (seconds taken, durations, the date)."""
    def strip(node):
        if isinstance(node, dict):
            return {k: strip(v) for k, v in node.items() if k not in ("seconds", "durations", "date")}
        if isinstance(node, list):
            return [strip(v) for v in node]
        return node

    with open(path) as f:
        return strip(json.load(f))


def _assert_same(a, b, where="report"):
    if isinstance(a, dict):
        assert sorted(a) == sorted(b), where
        for k in a:
            _assert_same(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, list):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            _assert_same(x, y, f"{where}[{i}]")
    elif isinstance(a, float) and isinstance(b, float):
        np.testing.assert_allclose(b, a, rtol=0, atol=1e-9, err_msg=where)
    else:
        assert a == b, where


@pytest.mark.slow
def test_two_processes_write_the_report_of_one(tmp_path):
    (tmp_path / "small.yaml").write_text(SMALL)
    env = {**os.environ, "AUDIT_COMPILE_CACHE": "off", "JAX_PLATFORMS": "cpu"}
    env.pop("XLA_FLAGS", None)
    audit = [sys.executable, "-m", "audit.cli"]
    one = subprocess.run([*audit, "run", "small.yaml", "--out", "one", "--quiet"], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=900)
    assert one.returncode in (0, 1), one.stderr[-3000:]  # trains the model once and saves it
    port = _free_port()
    procs = [subprocess.Popen([*audit, "run", "small.yaml", "--out", f"two{i}", "--quiet", "--distributed"],
                              cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              env={**env, "JAX_COORDINATOR_ADDRESS": f"localhost:{port}",
                                   "JAX_NUM_PROCESSES": "2", "JAX_PROCESS_ID": str(i)})
             for i in range(2)]
    logs = [p.communicate(timeout=900)[0] for p in procs]
    assert [p.returncode for p in procs] == [one.returncode] * 2, logs[0][-3000:] + logs[1][-3000:]
    assert not (tmp_path / "two1").exists()  # only process 0 writes
    _assert_same(_comparable(tmp_path / "one" / "report.json"), _comparable(tmp_path / "two0" / "report.json"))
