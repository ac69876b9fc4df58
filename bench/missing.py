"""The missing-data audit against the scikit-learn imputer work it cannot avoid, and its memory.

On the planted MNAR credit data (`--rows` rows, median imputation): loading (`from_pandas` with
`missing=`) against scikit-learn's SimpleImputer fit + transform on the same training rows alone;
`audit.missing.evaluate` (profile over all rows with Wilson intervals and mask AUCs, permutation
importance, then 3 rates x 4 scenarios: MCAR, most important columns, one group per sensitive
attribute, each with per-group intervals and fairness gaps) against the bare imputer transforms of
those 12 injected test sets. `--multiple K` adds multiple imputation (K IterativeImputer posterior
draws, pooled by Rubin's rules) to the analyzer, and the K IterativeImputer fits plus their
transforms to the floor. Peak memory: tracemalloc's peak of numpy allocations during the analyzer
(rows are processed in chunks, so it stays flat as rows grow) next to one float64 copy of the test
rows' raw matrix, and the whole process's peak RSS. The profile is checked against pandas' groupby.

    python bench/missing.py [--rows 200000] [--repeats 3] [--multiple 0]
"""

from __future__ import annotations

import argparse
import resource
import time
import tracemalloc

import jax.numpy as jnp
import numpy as np
from sklearn.impute import SimpleImputer

import audit
from audit.data import _credit
from audit.models import Model


def best(fn, repeats):
    times, value = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        value = fn()
        times.append(time.perf_counter() - t0)
    return min(times), value


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--multiple", type=int, default=0, help="multiple-imputation draws (0: none)")
    args = parser.parse_args()
    frame = _credit.credit_frame(args.rows, missing="mnar")
    options = dict(target="default", sensitive=["sex", "age"], categorical=list(_credit.CATEGORICAL),
                   class_names=("no", "yes"), missing={"strategy": "median"})
    t_load, data = best(lambda: audit.data.from_pandas(frame, **options), args.repeats)
    numeric = [j for j, c in enumerate(data.encoding.columns) if c.kind == "numeric"]
    raw = np.where(data.missing_mask, np.nan, data.raw)
    train, test = data.splits["train"], data.splits["test"]
    t_fit, imputer = best(lambda: SimpleImputer(strategy="median").fit(raw[train][:, numeric]), args.repeats)
    w = jnp.asarray(np.random.default_rng(0).normal(size=(data.X.shape[1], 2)), jnp.float32)
    model = Model.from_function(lambda p, x: x @ p, w, input_shape=data.X.shape[1:], class_names=data.class_names)
    model.predict(data.X[test])  # compile once, outside the timings
    rates = (0.1, 0.2, 0.4)
    settings = dict(rates=rates) if not args.multiple else dict(rates=rates, strategies=("multiple",),
                                                                   draws=args.multiple)
    t_eval, report = best(lambda: audit.missing.evaluate(model, data, **settings), args.repeats)
    tracemalloc.start()  # a separate run: tracing slows allocation, so it is not timed
    audit.missing.evaluate(model, data, **settings)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    rng = np.random.default_rng(0)
    blanks = [np.where(rng.random((len(test), len(numeric))) < r, np.nan, raw[test][:, numeric])
              for r in rates for _ in range(4)]  # 4 scenarios x 3 rates
    t_floor, _ = best(lambda: [imputer.transform(b) for b in blanks], 1)
    t_mi = 0.0
    if args.multiple:
        from sklearn.experimental import enable_iterative_imputer  # noqa: F401
        from sklearn.impute import IterativeImputer

        def fits():
            for k in range(args.multiple):
                fitted = IterativeImputer(random_state=k, sample_posterior=True).fit(raw[train][:, numeric])
                for b in blanks:
                    fitted.transform(b)
        t_mi, _ = best(fits, 1)
    by_hand = frame.assign(hole=frame["income"].isna()).groupby("sex")["hole"].mean()
    sex = next(a for a in report.attributes if a.attribute == "sex")
    diff = max(abs(g.rate - by_hand[g.label]) for g in sex.groups)
    one_copy = len(test) * len(data.encoding.columns) * 8
    floor = t_floor + t_mi
    print(f"rows {args.rows}: load with imputation {t_load:.3f} s (SimpleImputer fit alone {t_fit:.3f} s); "
          f"missing.evaluate ({len(report.curves)} curves{f', {args.multiple} MI draws' if args.multiple else ''}) "
          f"{t_eval:.3f} s (imputer work alone {floor:.3f} s, ratio {t_eval / floor:.1f}x); "
          f"numpy peak during evaluate {peak / 2**20:.0f} MiB vs one float64 copy of the test rows "
          f"{one_copy / 2**20:.0f} MiB; process peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.2f} GiB; "
          f"profile vs pandas max diff {diff:.1e}; findings {[f.id for f in report.findings if f.status != 'pass']}")


if __name__ == "__main__":
    main()
