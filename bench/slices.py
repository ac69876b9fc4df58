"""Error analysis: audit.slices against sliceline (SliceLine, Sagadeeva & Boehm 2021) on the same errors.

The credit data with its planted cohort (`hidden_cohort=True`: label noise for retail renters); one
model; both searchers get the same per-row errors on the test split and the same discretised columns
(our quantile bins and levels, one code per column), conjunctions of up to 3 conditions, a minimum
cohort size of 30. Printed: time (best of `--repeats`) and how well the top cohort matches the planted
one (Jaccard of rows). sliceline ranks by its size-and-error score, not by a test, so it has no
p-values or correction; we report the number of cohorts tested and the significant ones.

    python bench/slices.py [--rows 20000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from audit import datasets, slices, train
from audit.data import _credit
from audit.slices import _conditions
from audit.slices._evaluate import _columns


def best(fn, repeats):
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        value = fn()
        times.append(time.perf_counter() - t0)
    return min(times), value


def jaccard(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max((a | b).sum(), 1))


def main() -> None:
    from sliceline.slicefinder import Slicefinder

    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    data = datasets.load("credit", n=args.rows, seed=0, hidden_cohort=True)
    model = train("mlp", data, epochs=10, batch_size=128, widths=(32, 16), progress=False, seed=0)
    rows = data.splits["test"]
    wrong = np.asarray(model.predict(data.X[rows])) != data.y[rows]
    planted = _credit.hidden_cohort_mask(_credit.credit_frame(args.rows, seed=0, hidden_cohort=True))[rows]
    conds = _conditions.build(_columns(data, rows, None, False), n_bins=4)
    # one code per column: the index of the (partitioning) condition each row meets
    codes = np.stack([conds.masks[:, conds.column == j].argmax(1) for j in range(len(conds.names))], axis=1)

    def ours():
        return slices.find_cohorts(conds, wrong, max_order=3, min_size=30)

    def theirs():
        sf = Slicefinder(alpha=0.95, k=1, max_l=3, min_sup=30, verbose=False)
        return sf.fit(codes, wrong.astype(float))

    t_ours, (cohorts, n_tried) = best(ours, args.repeats)
    t_theirs, sf = best(theirs, args.repeats)
    top = cohorts[0]
    ours_mask = np.logical_and.reduce([conds.masks[:, conds.texts.index(t)] for t in top.conditions])
    slice_ = sf.top_slices_[0]
    their_mask = np.logical_and.reduce([codes[:, j] == int(v) for j, v in enumerate(slice_) if v is not None])
    their_text = " and ".join(conds.texts[np.flatnonzero(conds.column == j)[int(v)]]
                              for j, v in enumerate(slice_) if v is not None)
    print(f"test rows {len(rows)}, error {wrong.mean():.3f}, planted cohort {planted.sum()} rows "
          f"(error {wrong[planted].mean():.3f})")
    print(f"audit.slices   {t_ours:7.3f} s  top: {top.name} ({top.size} rows, error {top.error:.3f}, "
          f"corrected p {top.p_adjusted:.2g}); Jaccard with planted {jaccard(ours_mask, planted):.3f}; "
          f"{n_tried} cohorts tested, {sum(c.significant for c in cohorts)} significant (of the top 50 kept)")
    print(f"sliceline      {t_theirs:7.3f} s  top: {their_text} ({int(their_mask.sum())} rows, error "
          f"{wrong[their_mask].mean():.3f}); Jaccard with planted {jaccard(their_mask, planted):.3f}")
    print(f"speed-up {t_theirs / t_ours:.1f}x")


if __name__ == "__main__":
    main()
