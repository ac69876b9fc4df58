"""audit.parallel: rows split over N devices give the results of one device.

Each comparison runs tests/parallel_worker.py in two subprocesses, one on a single CPU device and
one on four (`XLA_FLAGS=--xla_force_host_platform_device_count=4`), and compares every number.
Per-row analyzers (attacks, IG, SHAP, LIME, IBP, OOD scores, the bootstrap) must agree to float
rounding (1e-6; they are bitwise equal today). Data-parallel training sums the batch's gradients
in a different order on four devices, so its weights agree to 1e-6 after a few steps, not bitwise.
"""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

from audit import parallel

WORKER = pathlib.Path(__file__).with_name("parallel_worker.py")


def _run_both(tmp_path, part: str) -> tuple[dict, dict]:
    """The worker on 1 and on 4 devices (concurrently), as dicts of arrays."""
    procs = {}
    for n in (1, 4):
        flags = [f for f in os.environ.get("XLA_FLAGS", "").split() if "device_count" not in f]
        env = {**os.environ, "XLA_FLAGS": " ".join([*flags, f"--xla_force_host_platform_device_count={n}"]),
               "JAX_PLATFORMS": "cpu", "AUDIT_COMPILE_CACHE": "off"}
        out = tmp_path / f"{part}{n}.npz"
        procs[n] = (out, subprocess.Popen([sys.executable, str(WORKER), str(out), part], env=env,
                                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
    results = []
    for n, (out, proc) in procs.items():
        log, _ = proc.communicate(timeout=900)
        assert proc.returncode == 0, log[-3000:]
        with np.load(out) as f:
            results.append({k: f[k] for k in f.files})
    return results[0], results[1]


def _assert_equal(one: dict, four: dict) -> None:
    assert sorted(one) == sorted(four)
    for k in sorted(one):
        if k in ("devices", "spans", "spans_of_10"):
            continue
        np.testing.assert_allclose(four[k], one[k], rtol=0, atol=1e-6, err_msg=k)


def test_four_devices_give_the_results_of_one(tmp_path):
    one, four = _run_both(tmp_path, "fast")
    assert int(one["devices"]) == 1 and int(four["devices"]) == 4
    assert (one["spans"] == 1).all() and (four["spans"] == 4).all()  # every chunk of 8 split over 4 devices
    assert (four["spans_of_10"] == 2).all()  # chunks of 10 rows over the 2 devices that split them evenly
    assert four["train/0"].std() > 0  # trained weights, not zeros
    _assert_equal(one, four)


@pytest.mark.slow
def test_whole_analyzers_on_four_devices_give_the_results_of_one(tmp_path):
    one, four = _run_both(tmp_path, "slow")
    assert len(one) > 100  # robustness, OOD and fairness metrics all came back
    _assert_equal(one, four)


def test_chunks_pad_to_the_device_count_and_cover_every_row():
    x = np.arange(23, dtype=np.float32).reshape(23, 1)
    got = list(parallel.chunks([x, x[:, 0]], 5))
    assert [(k, start, m) for k, start, m, _ in got] == [(0, 0, 5), (1, 5, 5), (2, 10, 5), (3, 15, 5), (4, 20, 3)]
    size = parallel.round_up(5)
    assert size % parallel.count() == 0 and 5 <= size < 5 + parallel.count()
    assert parallel.devices_for(size) == parallel.count() and 5 % parallel.devices_for(5) == 0
    for _, start, m, (a, b) in got:
        a = np.asarray(a)
        assert a.shape == (5, 1) and np.array_equal(a[:m, 0], x[start:start + m, 0])  # the size one device sees
        assert (a[m:] == x[start + m - 1]).all() and np.array_equal(np.asarray(b), a[:, 0])
    with pytest.raises(ValueError):
        next(parallel.chunks([x], 0))


def test_one_device_leaves_arrays_alone():
    if parallel.count() != 1:
        pytest.skip("this process has several devices")
    a = np.ones((3, 2))
    assert parallel.shard_rows(a) is a and parallel.replicate(a) is a and parallel.local(a) is a
    assert parallel.mesh().shape == {"rows": 1}
    np.testing.assert_array_equal(parallel.gather({"a": a})["a"], a)


def test_map_chunks_returns_every_chunk_in_order():
    x = np.arange(11, dtype=np.float32)
    outs = parallel.map_chunks(lambda a: {"twice": 2 * a}, [x], 4)
    assert len(outs) == 3 and all(isinstance(o["twice"], np.ndarray) for o in outs)
    np.testing.assert_array_equal(np.concatenate([o["twice"][:4] for o in outs])[:11], 2 * x)
