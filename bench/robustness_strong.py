"""Stronger attacks against IBM ART on the same weights: C&W L2 and AutoAttack.

    python bench/robustness_strong.py [--quick]

Digits CNN (zoo, channels 8/16, hidden 32) copied into PyTorch (`bench/robustness.py`'s
`torch_copy`). C&W L2: ours (`cw_l2`) and ART's `CarliniL2Method` with the same binary-search
rounds, iterations, learning rate and initial constant; reported: median L2 of the adversarials
found on clean-correct rows, robust accuracy at L2 budgets (correct, and no adversarial found
within the budget), examples/s. AutoAttack (L-inf): ours (APGD-CE, APGD-T over the top 3 other
classes, FAB-T, Square) against ART's `AutoAttack` with APGD-CE, APGD-DLR and Square at the same
iteration and query budgets (ART has no FAB; its `targeted=True` would target every class);
robust accuracy evaluated with our model on both outputs, examples/s. Our times exclude the
first call (compilation), reported separately. Needs the `bench` extra.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import jax
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from audit import datasets  # noqa: E402
from audit.models import train  # noqa: E402
from audit.robustness import autoattack, cw_l2, domain_for  # noqa: E402
from bench.robustness import _best_threads, torch_copy  # noqa: E402


def _clock(fn):
    start = time.perf_counter()
    out = fn()
    jax.block_until_ready(out)
    return out, time.perf_counter() - start


def _classifier(model, data, x):
    import torch
    from art.estimators.classification import PyTorchClassifier

    net = torch_copy(model, "cnn")
    threads = _best_threads(net, x[:64].transpose(0, 3, 1, 2).copy(), np.zeros(64, np.int64))
    with torch.no_grad():
        diff = np.abs(net(torch.from_numpy(x[:64].transpose(0, 3, 1, 2).copy())).numpy() - model.logits(x[:64])).max()
    clf = PyTorchClassifier(model=net, loss=torch.nn.CrossEntropyLoss(), input_shape=(x.shape[3], *x.shape[1:3]),
                            nb_classes=len(data.class_names), clip_values=(0.0, 1.0))
    return clf, threads, diff


def bench_cw(model, data, clf, x, y, *, search_steps, steps, budgets):
    from art.attacks.evasion import CarliniL2Method

    dom = domain_for(data)
    clean = model.predict(x) == y
    run = lambda: cw_l2(model.apply, model.params, x, y, steps=steps, search_steps=search_steps, domain=dom,
                        learning_rate=0.01, initial_const=0.01)
    _, t_first = _clock(run)
    (adv, dist, found), t_ours = _clock(run)
    art = CarliniL2Method(clf, confidence=0.0, learning_rate=0.01, binary_search_steps=search_steps, max_iter=steps,
                          initial_const=0.01, batch_size=len(x), verbose=False)
    art_adv, t_art = _clock(lambda: art.generate(x.transpose(0, 3, 1, 2).copy(), y=y).transpose(0, 2, 3, 1))
    art_fooled = model.predict(art_adv) != y
    art_dist = np.where(art_fooled, np.sqrt(((art_adv - x).reshape(len(x), -1).astype(np.float64) ** 2).sum(1)), np.inf)
    ours_fooled = found & (model.predict(np.asarray(adv)) != y)
    ours_dist = np.where(ours_fooled, dist, np.inf)
    print(f"\n## C&W L2: {len(x)} digits, {search_steps} search rounds x {steps} steps, clean {clean.mean():.3f}")
    print(f"found on clean rows: ours {ours_fooled[clean].mean():.3f}, ART {art_fooled[clean].mean():.3f}; "
          f"median L2 (clean rows, inf = not found): ours {np.median(ours_dist[clean]):.4f}, "
          f"ART {np.median(art_dist[clean]):.4f}")
    for b in budgets:
        print(f"robust accuracy at L2 {b:g}: ours {(clean & (ours_dist > b)).mean():.3f}, "
              f"ART {(clean & (art_dist > b)).mean():.3f}")
    print(f"examples/s: ours {len(x) / t_ours:.1f} (first call with compile {t_first:.1f}s), ART {len(x) / t_art:.1f}; "
          f"speed-up {t_art / t_ours:.2f}x")


def bench_autoattack(model, data, clf, x, y, *, eps, steps, queries):
    from art.attacks.evasion import AutoAttack, AutoProjectedGradientDescent, SquareAttack

    dom = domain_for(data)
    clean = model.predict(x) == y
    run = lambda: autoattack(model.apply, model.params, x, y, eps=eps, domain=dom, key=jax.random.key(0), steps=steps,
                             n_target_classes=3, square_queries=queries, return_info=True)
    _, t_first = _clock(lambda: run()[0])
    (adv, info), t_ours = _clock(run)
    kw = dict(norm=np.inf, eps=eps, eps_step=2 * eps, max_iter=steps, targeted=False, nb_random_init=1,
              batch_size=len(x), verbose=False)
    attacks = [AutoProjectedGradientDescent(clf, loss_type="cross_entropy", **kw),
               AutoProjectedGradientDescent(clf, loss_type="difference_logits_ratio", **kw),
               SquareAttack(clf, norm=np.inf, eps=eps, max_iter=queries, nb_restarts=1, batch_size=len(x),
                            verbose=False)]
    art = AutoAttack(clf, norm=np.inf, eps=eps, eps_step=2 * eps, attacks=attacks, batch_size=len(x))
    art_adv, t_art = _clock(lambda: art.generate(x.transpose(0, 3, 1, 2).copy(), y=y).transpose(0, 2, 3, 1))
    acc_ours = float((clean & (model.predict(np.asarray(adv)) == y)).mean())
    acc_art = float((clean & (model.predict(art_adv) == y)).mean())
    in_ball = np.abs(art_adv - x).max() <= eps + 1e-5
    print(f"\n## AutoAttack L-inf eps {eps:g}: {len(x)} digits, APGD {steps} steps, Square {queries} queries")
    print(f"robust accuracy: ours {acc_ours:.3f}, ART {acc_art:.3f} (ART in ball: {in_ball}); "
          f"our stage shares {', '.join(f'{k} {v:.3f}' for k, v in info.share.items())}")
    print(f"examples/s: ours {len(x) / t_ours:.1f} (first call with compile {t_first:.1f}s), ART {len(x) / t_art:.1f}; "
          f"speed-up {t_art / t_ours:.2f}x")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer examples, smaller budgets")
    parser.add_argument("--part", choices=("all", "cw", "autoattack"), default="all")
    parser.add_argument("--cw-n", type=int, default=64, help="rows for C&W (ART's C&W runs at ~1 row/s)")
    args = parser.parse_args(argv)
    import torch

    torch.manual_seed(0)
    data = datasets.load("digits", seed=0)
    model = train("cnn", data, epochs=25, channels=(8, 16), hidden=32, progress=False, seed=0)
    n = 128 if args.quick else 256
    x, y = data.test.X[:n], data.test.y[:n]
    clf, threads, diff = _classifier(model, data, x)
    print(f"jax {jax.__version__}, torch {torch.__version__} (threads {threads}), cpus {os.cpu_count()}, "
          f"logits max |torch - jax| = {diff:.2e}")
    if args.part in ("all", "cw"):
        bench_cw(model, data, clf, x[:args.cw_n], y[:args.cw_n], search_steps=5 if args.quick else 9, steps=50 if args.quick else 100,
                 budgets=(0.5, 1.0, 1.5))
    for eps in () if args.part == "cw" else (0.1,) if args.quick else (0.05, 0.1):
        bench_autoattack(model, data, clf, x, y, eps=eps, steps=20 if args.quick else 50,
                         queries=200 if args.quick else 1000)


if __name__ == "__main__":
    main()
