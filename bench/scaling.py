"""Scaling over devices: rows per second for PGD, Integrated Gradients and the fairness bootstrap
on 1, 2 and 4 devices (`audit.parallel` splits every chunk's rows over them).

Each device count runs in its own process: on CPU JAX is shown N host devices
(`--xla_force_host_platform_device_count=N`, which splits the same cores: on a 2-core machine
the ceiling is about 2x); on GPU (`--platform gpu`, what bench/gpu.sh runs) the first N GPUs are
made visible. Prints the device kind, the load average before and after, and one table.
Run: `python bench/scaling.py [--devices 1 2 4] [--rows N] [--platform cpu|gpu]`.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np


def _best(fn, repeats: int) -> float:
    fn()  # compile and warm up
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def child(rows: int, repeats: int) -> dict:
    """Measure in this process (its devices are what the parent set up)."""
    import jax

    from audit import datasets, explain, parallel
    from audit.fairness import assess
    from audit.models import Model, padded_batches, zoo
    from audit.models._model import split_nnx
    from audit.robustness import pgd

    digits = datasets.load("digits", seed=0)
    apply, params = split_nnx(zoo.for_data(digits, seed=0, channels=(16, 32), hidden=64))
    model = Model(apply=apply, params=params, input_shape=digits.input_shape, class_names=digits.class_names,
                  batch_size=256)
    x = np.resize(digits.X, (rows, *digits.input_shape)).astype(np.float32)
    y = np.resize(digits.y, rows).astype(np.int32)
    key = jax.random.key(0)
    attack = lambda: padded_batches(lambda xb, yb: pgd(model.apply, model.params, xb, yb, eps=0.1, steps=10, key=key),
                                    [x, y], 256)
    ig = lambda: explain.integrated_gradients(model, x, steps=32, batch_size=64).values
    credit = datasets.load("credit", n=max(rows * 10, 20_000), seed=0)
    rng = np.random.default_rng(0)
    yt = credit.y
    pred = np.where(rng.random(len(yt)) < 0.9, yt, 1 - yt)
    scores = np.stack([1 - pred * 0.8, pred * 0.8], axis=1)
    groups = credit.sensitive["sex"]
    replicates = 200
    fair = lambda: assess(yt, pred, groups, scores=scores, n_bootstrap=replicates, seed=0)
    return {"devices": parallel.count(), "kind": jax.devices()[0].device_kind, "platform": jax.default_backend(),
            "pgd": rows / _best(attack, repeats), "ig": rows / _best(ig, repeats),
            "fairness": len(yt) * replicates / _best(fair, repeats)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--devices", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--rows", type=int, default=1024)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--platform", choices=("cpu", "gpu"), default="cpu")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.rows, args.repeats)))
        return
    load_before = os.getloadavg()
    results = []
    for n in args.devices:
        env = dict(os.environ)
        if args.platform == "cpu":
            flags = [f for f in env.get("XLA_FLAGS", "").split() if "device_count" not in f]
            env.update(JAX_PLATFORMS="cpu", XLA_FLAGS=" ".join([*flags, f"--xla_force_host_platform_device_count={n}"]))
        else:
            available = int(subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True).stdout.count("GPU "))
            if n > available:
                print(f"skipping {n} devices: this machine has {available} GPU(s)")
                continue
            env["CUDA_VISIBLE_DEVICES"] = ",".join(map(str, range(n)))
        out = subprocess.run([sys.executable, __file__, "--child", "--rows", str(args.rows),
                              "--repeats", str(args.repeats)], env=env, capture_output=True, text=True, check=True)
        results.append(json.loads(out.stdout.strip().splitlines()[-1]))
    load_after = os.getloadavg()
    print(f"device kind: {results[0]['kind']} ({results[0]['platform']}); load average before "
          f"{load_before[0]:.1f}, after {load_after[0]:.1f}; {os.cpu_count()} CPU cores")
    print(f"{'devices':>7}  {'PGD-10 rows/s':>14}  {'IG-32 rows/s':>13}  {'fairness rows x replicates/s':>29}")
    base = results[0]
    for r in results:
        print(f"{r['devices']:>7}  {r['pgd']:>9.0f} ({r['pgd'] / base['pgd']:.2f}x)  {r['ig']:>8.0f} "
              f"({r['ig'] / base['ig']:.2f}x)  {r['fairness']:>22.3g} ({r['fairness'] / base['fairness']:.2f}x)")


if __name__ == "__main__":
    main()
