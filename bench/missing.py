"""The missing-data audit against the scikit-learn imputer work it cannot avoid.

On the planted MNAR credit data (`--rows` rows, median imputation): loading (`from_pandas` with
`missing=`) against scikit-learn's SimpleImputer fit + transform on the same training rows alone;
`audit.missing.evaluate` (profile over all rows with Wilson intervals and mask AUCs, plus the
robustness curve at 3 rates) against the bare imputer transforms of those 3 injected test sets.
The profile is checked against pandas' groupby on the same mask. Best of `--repeats`.

    python bench/missing.py [--rows 200000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import time

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
    t_eval, report = best(lambda: audit.missing.evaluate(model, data, rates=rates), args.repeats)
    rng = np.random.default_rng(0)
    blanks = [np.where(rng.random((len(test), len(numeric))) < r, np.nan, raw[test][:, numeric]) for r in rates]
    t_floor, _ = best(lambda: [imputer.transform(b) for b in blanks], args.repeats)
    by_hand = frame.assign(hole=frame["income"].isna()).groupby("sex")["hole"].mean()
    sex = next(a for a in report.attributes if a.attribute == "sex")
    diff = max(abs(g.rate - by_hand[g.label]) for g in sex.groups)
    print(f"rows {args.rows}: load with imputation {t_load:.3f} s (SimpleImputer fit alone {t_fit:.3f} s); "
          f"missing.evaluate {t_eval:.3f} s (3 imputer transforms alone {t_floor:.3f} s, "
          f"ratio {t_eval / t_floor:.1f}x); profile vs pandas max diff {diff:.1e}; "
          f"findings {[f.id for f in report.findings if f.status != 'pass']}")


if __name__ == "__main__":
    main()
