"""Integrated Gradients and LIME against their peers on the same models, in one run.

    python bench/explain_lime_ig.py [--quick]

IG: the zoo CNN on MNIST; our jitted IG (all steps of all images vmapped in one call) against
PAIR's `saliency.core.IntegratedGradients` (one image per call, its steps batched) with the
same jitted JAX gradient as its model callback; floor = steps x one batched input-gradient
call on the same images. Completeness error (relative, aggregated) for our trapezoid rule and
for PAIR's Riemann rule (linspace(0, 1, steps), divided by steps) at the same gradient count.
LIME: the zoo MLP on the synthetic credit data (raw columns, categoricals as categoricals);
the lime package with our batched jitted predict against lime with a plain (eager, un-jitted)
predict; native JAX LIME against lime's default explainer (quartile discretisation, 10
features) and lime's continuous mode (the estimator it reproduces); floors are the model
evaluations each cannot avoid. Times are the best of a few warm runs; ratios are measured in
the same run, so they hold up under machine load; absolute times do not.
"""

from __future__ import annotations

import argparse
import pathlib
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from audit import datasets  # noqa: E402
from audit.explain import _lime, _saliency, integrated_gradients, lime_image, lime_native, lime_tabular  # noqa: E402
from audit.models import train  # noqa: E402


def best_of(fn, repeats: int = 5) -> float:
    fn()  # warm (compile)
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        jax.block_until_ready(fn())
        times.append(time.perf_counter() - t)
    return min(times)


# ---- Integrated Gradients ----------------------------------------------------------------
def ig_rows(*, n: int, steps: int, quick: bool) -> list[dict]:
    from saliency.core import IntegratedGradients
    from saliency.core.base import INPUT_OUTPUT_GRADIENTS

    data = datasets.load("mnist", seed=0)
    model = train("cnn", data, epochs=1 if quick else 2, channels=(16, 32), hidden=64, progress=False, seed=0)
    X = data.test.X[:n]
    t = model.predict(X)
    grad = jax.jit(_saliency.input_gradient(model.apply, "logit"))

    def one_gradient_call():
        return grad(X, model.params, jnp.asarray(t))

    t_grad = best_of(one_gradient_call)
    ours = {}

    def run_ours():
        ours["r"] = integrated_gradients(model, X, target=t, steps=steps)
        return ours["r"].values

    t_ours = best_of(run_ours)
    right = integrated_gradients(model, X, target=t, steps=steps, rule="riemann_right")

    def call_model(x_batch, call_model_args=None, expected_keys=None):
        cls = call_model_args["class"]
        g = grad(jnp.asarray(x_batch, jnp.float32), model.params, jnp.full(len(x_batch), cls, jnp.int32))
        return {INPUT_OUTPUT_GRADIENTS: np.asarray(g)}

    pair = IntegratedGradients()
    masks = {}

    def run_pair():
        masks["m"] = np.stack([pair.GetMask(X[i], call_model, {"class": int(t[i])}, x_steps=steps,
                                            x_baseline=np.zeros_like(X[i]), batch_size=steps) for i in range(n)])
        return masks["m"]

    t_pair = best_of(run_pair, repeats=2)
    out, base = ours["r"].extras["output"], ours["r"].extras["baseline_output"]
    pair_err = float(np.abs(masks["m"].reshape(n, -1).sum(1) - (out - base)).sum() / np.abs(out - base).sum())
    ours_err = ours["r"].completeness_error()
    floor = steps * t_grad
    common = {"method": "IG", "budget": steps, "floor_ms": 1e3 * floor / n}
    return [
        {**common, "impl": "native (JAX), trapezoid", "ms": 1e3 * t_ours / n, "error": ours_err,
         "speedup": t_pair / t_ours, "x_floor": t_ours / floor},
        {**common, "impl": "native (JAX), riemann_right", "ms": None, "error": right.completeness_error()},
        {**common, "impl": "PAIR saliency IntegratedGradients", "ms": 1e3 * t_pair / n, "error": pair_err,
         "x_floor": t_pair / floor},
        {"method": "IG", "impl": "trapezoid vs PAIR Riemann: error ratio", "budget": steps, "ms": None,
         "error": pair_err / ours_err},
    ]


# ---- LIME --------------------------------------------------------------------------------
def _corr(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a.ravel(), b.ravel())[0, 1])


def lime_rows(*, n: int, samples: int, quick: bool) -> list[dict]:
    from lime.lime_tabular import LimeTabularExplainer

    data = datasets.load("credit", seed=0)
    model = train("mlp", data, epochs=3 if quick else 10, progress=False, seed=0)
    space = _lime.raw_space(model, data)
    raw = data.test.raw[:n]
    batched = lambda r: model.predict_proba(space.encode(r))
    plain = lambda r: np.asarray(jax.nn.softmax(model.apply(model.params, jnp.asarray(space.encode(r)))))
    runs: dict[str, object] = {}

    def timed(key, fn, repeats=2):
        def go():
            runs[key] = fn()
            return 0
        return best_of(go, repeats)

    t_cont = timed("cont", lambda: lime_tabular(model, data, raw, num_samples=samples, seed=0))
    t_plain = timed("plain", lambda: lime_tabular(model, data, raw, num_samples=samples, seed=0, predict_fn=plain), 1)
    cont2 = lime_tabular(model, data, raw, num_samples=samples, seed=1)
    cat = [int(j) for j in np.flatnonzero(space.categorical)]
    default = LimeTabularExplainer(space.train, feature_names=list(space.names), categorical_features=cat,
                                   random_state=0)
    labels = model.predict(space.encode(raw))

    def lime_default():
        return [default.explain_instance(r, batched, labels=(int(c),), num_samples=samples) for r, c in zip(raw, labels)]

    t_default = timed("default", lime_default, 1)
    t_shared = timed("shared", lambda: lime_native(model, data, raw, num_samples=samples, seed=0), 3)
    t_indep = timed("indep", lambda: lime_native(model, data, raw, num_samples=samples, seed=0,
                                                 shared_samples=False), 3)
    # floors: the model evaluations each method cannot avoid (the model's jitted batched predict)
    rows_per = np.repeat(raw[:1], samples, 0)
    enc = space.encode(rows_per)
    t_eval = best_of(lambda: model.logits(enc))  # samples rows, one explanation's worth
    t_eval_all = best_of(lambda: model.logits(np.repeat(enc, min(n, 20), 0))) * n / min(n, 20)
    cont, shared, indep = runs["cont"], runs["shared"], runs["indep"]
    w = lambda a: a.extras["weights"]
    common = {"method": "LIME tab", "budget": samples}
    return [
        {**common, "impl": "lime, our batched jitted predict", "ms": 1e3 * t_cont / n,
         "floor_ms": 1e3 * t_eval, "speedup": t_plain / t_cont, "corr_seed": _corr(w(cont), w(cont2))},
        {**common, "impl": "lime, plain eager predict", "ms": 1e3 * t_plain / n, "floor_ms": 1e3 * t_eval},
        {**common, "impl": "lime default (quartiles, 10 features)", "ms": 1e3 * t_default / n,
         "floor_ms": 1e3 * t_eval},
        {**common, "impl": "native (JAX), shared neighbourhood", "ms": 1e3 * t_shared / n,
         "floor_ms": 1e3 * t_eval / n, "speedup": t_default / t_shared, "speedup_fast": t_cont / t_shared,
         "corr": _corr(w(shared), w(cont))},
        {**common, "impl": "native (JAX), one neighbourhood per row", "ms": 1e3 * t_indep / n,
         "floor_ms": 1e3 * t_eval_all / n, "speedup": t_default / t_indep, "speedup_fast": t_cont / t_indep,
         "corr": _corr(w(indep), w(cont))},
    ]


def lime_image_rows(*, n: int, samples: int) -> list[dict]:
    from lime.lime_image import LimeImageExplainer

    data = datasets.load("digits", seed=0)
    model = train("cnn", data, epochs=10, channels=(8, 16), hidden=32, progress=False, seed=0)
    X = data.test.X[:n]
    seg = _lime.grid_segments((8, 8), 2)
    t = model.predict(X)
    t_ours = best_of(lambda: lime_image(model, X, num_samples=samples, seed=0).values, 2)
    plain = lambda imgs: np.asarray(jax.nn.softmax(model.apply(model.params, jnp.asarray(imgs, jnp.float32))))

    def lime_default_batches():
        ex = LimeImageExplainer(random_state=0)
        with _lime._quiet_lime(False):
            return [ex.explain_instance(X[i].astype(np.float64), plain, labels=(int(t[i]),), top_labels=None,
                                        hide_color=0.0, num_samples=samples, segmentation_fn=lambda im: seg)
                    for i in range(n)]

    t_plain = best_of(lime_default_batches, 1)
    t_eval = best_of(lambda: model.logits(np.repeat(X[:1], samples, 0)))
    return [{"method": "LIME image", "impl": "lime, batched jitted predict", "budget": samples,
             "ms": 1e3 * t_ours / n, "floor_ms": 1e3 * t_eval, "speedup": t_plain / t_ours},
            {"method": "LIME image", "impl": "lime, plain predict, batch_size=10", "budget": samples,
             "ms": 1e3 * t_plain / n, "floor_ms": 1e3 * t_eval}]


def run(quick: bool = False, only: tuple[str, ...] = ("ig", "lime", "lime_image")) -> list[dict]:
    """All rows: IG vs PAIR, LIME package predict, native LIME vs lime, lime on images."""
    rows: list[dict] = []
    if "ig" in only:
        rows += ig_rows(n=16 if quick else 64, steps=50, quick=quick)
    if "lime" in only:
        rows += lime_rows(n=20 if quick else 100, samples=5000, quick=quick)
    if "lime_image" in only:
        rows += lime_image_rows(n=4 if quick else 16, samples=1000)
    return rows


def print_table(rows: list[dict]) -> None:
    f = lambda v, spec: "" if v is None else format(v, spec)
    print("| method | implementation | budget | ms/expl | floor ms | x floor | speed-up | vs fast | "
          "error | corr |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        x_floor = r.get("x_floor") or (r["ms"] / r["floor_ms"] if r.get("ms") and r.get("floor_ms") else None)
        corr = r.get("corr", r.get("corr_seed"))
        print(f"| {r['method']} | {r['impl']} | {r.get('budget', '')} | {f(r.get('ms'), '.2f')} | "
              f"{f(r.get('floor_ms'), '.2f')} | {f(x_floor, '.2f')} | {f(r.get('speedup'), '.1f')} | "
              f"{f(r.get('speedup_fast'), '.1f')} | {f(r.get('error'), '.2e')} | {f(corr, '.4f')} |")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer examples and epochs, for a smoke run")
    ap.add_argument("--only", nargs="+", default=["ig", "lime", "lime_image"], choices=["ig", "lime", "lime_image"])
    args = ap.parse_args()
    print(f"{jax.device_count()} {jax.default_backend()} device(s)\n")
    print_table(run(quick=args.quick, only=tuple(args.only)))
