"""fairlearn-shaped disparity functions: audit.fairness.<name> against fairlearn.metrics.<name>.

Same inputs (binary labels and predictions, sample weights, two sensitive columns intersected),
same numbers (max abs diff printed); time per call, best of `--repeats`.

    python bench/fairness_metrics.py [--rows 200000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import time

import fairlearn.metrics as fl
import numpy as np
import pandas as pd

import audit

NAMES = ("demographic_parity_difference", "demographic_parity_ratio", "equalized_odds_difference",
         "equalized_odds_ratio", "equal_opportunity_difference", "equal_opportunity_ratio")


def best(fn, repeats):
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        value = fn()
        times.append(time.perf_counter() - t0)
    return min(times), value


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    n = args.rows
    features = pd.DataFrame({"sex": rng.choice(["f", "m"], n), "age": rng.choice(["<30", "30-60", ">60"], n)})
    y = rng.integers(0, 2, n)
    pred = np.where(rng.random(n) < 0.8, y, 1 - y)
    w = rng.uniform(0.5, 2.0, n)
    print(f"| metric ({n} rows, 6 groups, weighted) | audit (s) | fairlearn (s) | speed-up | abs diff |")
    print("|---|---|---|---|---|")
    for name in NAMES:
        ours, theirs = getattr(audit.fairness, name), getattr(fl, name)
        t_a, v_a = best(lambda: ours(y, pred, sensitive_features=features, sample_weight=w), args.repeats)
        t_f, v_f = best(lambda: theirs(y, pred, sensitive_features=features, sample_weight=w), args.repeats)
        print(f"| {name} | {t_a:.3f} | {t_f:.3f} | {t_f / t_a:.1f}x | {abs(v_a - v_f):.1e} |")


if __name__ == "__main__":
    main()
