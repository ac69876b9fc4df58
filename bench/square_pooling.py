"""Square attack over an eps grid: per call and eps (before) against one pool (after), and ART.

    python bench/square_pooling.py [--config reports/mnist.yaml] [--queries 300]

The robustness section's Square on the demo's model, rows (its seeded sample) and eps grid:
- *per call*: Square per eps and per batch of the audit's batch size, its host loop packing the
  rows still standing into smaller batches (the audit before this change);
- *pooled*: `run_attacks`' default on one device, every (eps, row) pair through one pool of 64
  slots that rows leave as they are fooled or spend their budget.
Both are timed after a warm-up run (compiled), and compared row by row (the same adversarial per
row up to the model's rounding at another batch size) and by robust accuracy per eps.
IBM ART's SquareAttack (same weights in PyTorch, same eps, p_init 0.3, max_iter = queries, batch
64, its own random draws; torch at 1 thread and at its default, the faster reported) runs on the same rows at the largest eps below 0.15 for a time and robust
accuracy on equal work: ours pooled on that one eps.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import pathlib
import sys
import time

import jax
import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

from audit.models._xla import for_model  # noqa: E402
from audit.pipeline import AuditConfig  # noqa: E402
from audit.pipeline._run import load_data, load_model  # noqa: E402
from audit.robustness import _attack_cache, _evaluate  # noqa: E402
from audit.robustness._domain import domain_for  # noqa: E402
from audit.robustness._evaluate import attack_batch, run_attacks, sample_rank, sample_rows  # noqa: E402
from audit.robustness._registry import ATTACKS  # noqa: E402


def _load() -> str:
    return "load average %.1f %.1f %.1f" % os.getloadavg()


def _square(model, x, y, grid, dom, queries, batch, rank, pooled: bool):
    """Square's correct-and-surviving matrix and adversarials by run_attacks, pooled or per call."""
    spec = ATTACKS["square"]
    _evaluate.ATTACKS["square"] = spec if pooled else dataclasses.replace(spec, run_pooled=None)
    try:
        _attack_cache.clear()
        t = time.perf_counter()
        hit = run_attacks(model, x, y, grid=np.asarray(grid), attacks=("square",), norm="linf", domain=dom,
                          settings=dict(steps=1, restarts=1, apgd_steps=1, square_queries=queries),
                          batch=batch, key=jax.random.key(0), rank=rank)
        return time.perf_counter() - t, hit
    finally:
        _evaluate.ATTACKS["square"] = spec
        _attack_cache.clear()


def _art(model, x, y, eps, queries, threads: int):
    """ART's SquareAttack on a PyTorch copy of the weights with `threads` torch threads; seconds
    and its adversarials."""
    import torch
    from art.attacks.evasion import SquareAttack
    from art.estimators.classification import PyTorchClassifier

    from _torch_copy import torch_copy

    torch.set_num_threads(threads)
    net = torch_copy(model, "cnn")
    xt = x.transpose(0, 3, 1, 2)
    clf = PyTorchClassifier(model=net, loss=torch.nn.CrossEntropyLoss(), input_shape=xt.shape[1:],
                            nb_classes=model.n_classes, clip_values=(0.0, 1.0))
    attack = SquareAttack(clf, norm=np.inf, eps=eps, max_iter=queries, p_init=0.3, batch_size=64, verbose=False)
    t = time.perf_counter()
    adv = attack.generate(np.ascontiguousarray(xt), y=np.eye(model.n_classes)[y])
    return time.perf_counter() - t, adv.transpose(0, 2, 3, 1)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default="reports/mnist.yaml")
    ap.add_argument("--queries", type=int, default=300)
    ap.add_argument("--no-art", action="store_true")
    args = ap.parse_args(argv)
    config = AuditConfig.from_yaml(args.config)
    data = load_data(config)
    model = load_model(config, data, progress=False)
    settings = config.analyzers["robustness"]
    n, grid = int(settings.get("n", 500)), [float(e) for e in settings["eps"]]
    part = data.part("test")
    rows = sample_rows(len(part), n, seed=config.seed)
    x, y = part.X[rows], part.y[rows]
    rank = sample_rank(len(part), n, seed=config.seed)
    batch, dom = attack_batch(64, len(x)), domain_for(data)
    print(f"{_load()}; {len(x)} rows, eps {grid}, {args.queries} queries, attack batch {batch}, "
          f"{os.cpu_count()} cores, jax {jax.__version__}")
    with for_model(model):
        for pooled in (False, True):  # warm-up: compile every shape either path uses
            _square(model, x, y, grid, dom, args.queries, batch, rank, pooled)
        t_call, per_call = _square(model, x, y, grid, dom, args.queries, batch, rank, pooled=False)
        t_pool, pool = _square(model, x, y, grid, dom, args.queries, batch, rank, pooled=True)
    diff = np.abs(pool.adversarial - per_call.adversarial).reshape(len(grid), len(x), -1).max(axis=2)
    acc_call, acc_pool = per_call.correct["square"].mean(axis=1), pool.correct["square"].mean(axis=1)
    print("\n| Square, eps grid | seconds | robust accuracy per eps |")
    print("|---|---:|---|")
    print(f"| per call and eps (before) | {t_call:.1f} | {', '.join(f'{a:.3f}' for a in acc_call)} |")
    print(f"| pooled over the grid (after) | {t_pool:.1f} | {', '.join(f'{a:.3f}' for a in acc_pool)} |")
    print(f"speed-up {t_call / t_pool:.2f}x; rows with the same adversarial (max |diff| < 1e-6): "
          f"{int((diff < 1e-6).sum())} of {diff.size}")
    if not args.no_art:
        e = max([g for g in grid if 0 < g < 0.15] or [grid[-1]])
        with for_model(model):
            _square(model, x, y, [e], dom, args.queries, batch, rank, pooled=True)  # warm
            t_ours, ours = _square(model, x, y, [e], dom, args.queries, batch, rank, pooled=True)
        import torch

        runs = {t: _art(model, x, y, e, args.queries, t) for t in sorted({1, torch.get_num_threads()})}
        threads = min(runs, key=lambda t: runs[t][0])  # the peer at its faster setting
        t_art, adv = runs[threads]
        art_acc = float(((model.predict(adv) == y) & ours.clean).mean())
        print(f"\n| Square at eps {e:g}, {len(x)} rows, {args.queries} queries | seconds | robust accuracy |")
        print("|---|---:|---:|")
        print(f"| audit (pooled) | {t_ours:.1f} | {ours.correct['square'].mean():.3f} |")
        print(f"| ART SquareAttack (torch {threads} thread(s); " + ", ".join(
            f"{t}: {runs[t][0]:.1f} s" for t in runs) + f") | {t_art:.1f} | {art_acc:.3f} |")
        print(f"audit vs ART: {t_art / t_ours:.2f}x")
    print(_load())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
