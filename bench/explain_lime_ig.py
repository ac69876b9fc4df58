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
evaluations each cannot avoid: one neighbourhood through the model's batched logits (what lime
calls), and for native LIME with a neighbourhood per row the bare jitted model on the encoded
rows of one of its calls. Times are the best of a few warm, interleaved runs; ratios are
measured in the same run, so they hold up under machine load; absolute times do not.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import pathlib
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from audit import datasets  # noqa: E402
from audit.explain import (_lime, _lime_native, _saliency, integrated_gradients, lime_image,  # noqa: E402
                           lime_native, lime_tabular)
from audit.models import train  # noqa: E402


def race(fns: dict, rounds: int = 6) -> dict:
    """Best time of each function over `rounds` interleaved rounds in rotating order (robust to
    load drifting and to order effects)."""
    for fn in fns.values():
        jax.block_until_ready(fn())  # warm (compile)
    best = {k: float("inf") for k in fns}
    keys = list(fns)
    for r in range(rounds):
        for k in keys[r % len(keys):] + keys[:r % len(keys)]:  # rotate: no function always goes first
            fn = fns[k]
            t = time.perf_counter()
            jax.block_until_ready(fn())
            best[k] = min(best[k], time.perf_counter() - t)
    return best


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

    ours, right, masks = {}, {}, {}

    def run_ours():
        ours["r"] = integrated_gradients(model, X, target=t, steps=steps)
        return ours["r"].values

    def run_right():
        right["r"] = integrated_gradients(model, X, target=t, steps=steps, rule="riemann_right")
        return right["r"].values

    def call_model(x_batch, call_model_args=None, expected_keys=None):
        cls = call_model_args["class"]
        g = grad(jnp.asarray(x_batch, jnp.float32), model.params, jnp.full(len(x_batch), cls, jnp.int32))
        return {INPUT_OUTPUT_GRADIENTS: np.asarray(g)}

    pair = IntegratedGradients()

    def run_pair():
        masks["m"] = np.stack([pair.GetMask(X[i], call_model, {"class": int(t[i])}, x_steps=steps,
                                            x_baseline=np.zeros_like(X[i]), batch_size=steps) for i in range(n)])
        return masks["m"]

    best = race({"grad": one_gradient_call, "ours": run_ours, "right": run_right, "pair": run_pair})
    t_grad, t_ours, t_right, t_pair = best["grad"], best["ours"], best["right"], best["pair"]
    out, base = ours["r"].extras["output"], ours["r"].extras["baseline_output"]
    pair_err = float(np.abs(masks["m"].reshape(n, -1).sum(1) - (out - base)).sum() / np.abs(out - base).sum())
    ours_err = ours["r"].completeness_error()
    floor = steps * t_grad
    common = {"method": "IG", "budget": steps, "floor_ms": 1e3 * floor / n}
    return [
        {**common, "impl": "native (JAX), trapezoid", "ms": 1e3 * t_ours / n, "error": ours_err,
         "speedup": t_pair / t_ours, "error_ratio_vs_pair": pair_err / ours_err},
        {**common, "impl": "native (JAX), riemann_right", "ms": 1e3 * t_right / n,
         "error": right["r"].completeness_error(), "speedup": t_pair / t_right},
        {**common, "impl": "PAIR saliency IntegratedGradients", "ms": 1e3 * t_pair / n, "error": pair_err},
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
    cat = [int(j) for j in np.flatnonzero(space.categorical)]
    default = LimeTabularExplainer(space.train, feature_names=list(space.names), categorical_features=cat,
                                   random_state=0)
    labels = model.predict(space.encode(raw))
    runs: dict[str, object] = {}

    def keep(key, fn):
        def go():
            runs[key] = fn()
            return 0
        return go

    enc = space.encode(np.repeat(raw[:1], samples, 0))
    per_call = max(1, _lime_native.MAX_EVAL_POINTS // samples)  # neighbourhoods per native per-row call
    enc_call, apply = jnp.asarray(np.repeat(enc, per_call, 0)), jax.jit(model.apply)
    best = race({
        "cont": keep("cont", lambda: lime_tabular(model, data, raw, num_samples=samples, seed=0)),
        "plain": keep("plain", lambda: lime_tabular(model, data, raw, num_samples=samples, seed=0,
                                                    predict_fn=plain)),
        "default": keep("default", lambda: [default.explain_instance(r, batched, labels=(int(c),),
                                                                     num_samples=samples)
                                            for r, c in zip(raw, labels)]),
        "shared": keep("shared", lambda: lime_native(model, data, raw, num_samples=samples, seed=0)),
        "indep": keep("indep", lambda: lime_native(model, data, raw, num_samples=samples, seed=0,
                                                   shared_samples=False)),
        # floors: the model evaluations each method cannot avoid
        "eval": lambda: model.logits(enc),  # one neighbourhood through the model's batched logits
        "eval_jit": lambda: apply(model.params, enc_call),  # the bare jitted model on encoded rows
    }, rounds=2 if quick else 5)
    t_cont, t_plain, t_default = best["cont"], best["plain"], best["default"]
    t_shared, t_indep, t_eval = best["shared"], best["indep"], best["eval"]
    t_eval_row = best["eval_jit"] / per_call
    cont2 = lime_tabular(model, data, raw, num_samples=samples, seed=1)
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
         "floor_ms": 1e3 * t_eval_row, "speedup": t_default / t_indep, "speedup_fast": t_cont / t_indep,
         "corr": _corr(w(indep), w(cont))},
    ]


def lime_image_rows(*, n: int, samples: int) -> list[dict]:
    from lime.lime_image import LimeImageExplainer

    data = datasets.load("digits", seed=0)
    model = train("cnn", data, epochs=10, channels=(8, 16), hidden=32, progress=False, seed=0)
    X = data.test.X[:n]
    seg = _lime.grid_segments((8, 8), 2)
    t = model.predict(X)
    plain = lambda imgs: np.asarray(jax.nn.softmax(model.apply(model.params, jnp.asarray(imgs, jnp.float32))))

    def lime_default_batches():
        ex = LimeImageExplainer(random_state=0)
        with _quiet_lime():
            return [ex.explain_instance(X[i].astype(np.float64), plain, labels=(int(t[i]),), top_labels=None,
                                        hide_color=0.0, num_samples=samples, segmentation_fn=lambda im: seg)
                    for i in range(n)]

    one = np.repeat(X[:1], samples, 0)
    best = race({"ours": lambda: lime_image(model, X, num_samples=samples, seed=0).values,
                 "plain": lime_default_batches, "eval": lambda: model.logits(one)}, rounds=2)
    t_ours, t_plain, t_eval = best["ours"], best["plain"], best["eval"]
    return [{"method": "LIME image", "impl": "lime's draws and fit, vectorised neighbourhood, batched jitted predict", "budget": samples,
             "ms": 1e3 * t_ours / n, "floor_ms": 1e3 * t_eval, "speedup": t_plain / t_ours},
            {"method": "LIME image", "impl": "lime, plain predict, batch_size=10", "budget": samples,
             "ms": 1e3 * t_plain / n, "floor_ms": 1e3 * t_eval}]


@contextlib.contextmanager
def _quiet_lime():
    """lime's explain_instance shows a tqdm bar per image: silence it for the timing."""
    import lime.lime_image as li

    original = li.tqdm
    li.tqdm = lambda iterable, *a, **k: iterable
    try:
        yield
    finally:
        li.tqdm = original


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
        x_floor = r["ms"] / r["floor_ms"] if r.get("floor_ms") else None
        corr = r.get("corr", r.get("corr_seed"))
        print(f"| {r['method']} | {r['impl']} | {r.get('budget', '')} | {f(r.get('ms'), '.2f')} | "
              f"{f(r.get('floor_ms'), '.2f')} | {f(x_floor, '.2f')} | {f(r.get('speedup'), '.1f')} | "
              f"{f(r.get('speedup_fast'), '.1f')} | {f(r.get('error'), '.2e')} | {f(corr, '.4f')} |")
    for r in rows:
        if "error_ratio_vs_pair" in r:
            print(f"\nIG completeness error, PAIR's Riemann rule / our trapezoid rule at {r['budget']} "
                  f"gradient evaluations: {r['error_ratio_vs_pair']:.2f}x")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer examples and epochs, for a smoke run")
    ap.add_argument("--only", nargs="+", default=["ig", "lime", "lime_image"], choices=["ig", "lime", "lime_image"])
    args = ap.parse_args()
    load = lambda: "/".join(f"{v:.2f}" for v in os.getloadavg())
    print(f"{jax.device_count()} {jax.default_backend()} device(s); load average (1/5/15 min) {load()}\n")
    rows = run(quick=args.quick, only=tuple(args.only))
    print_table(rows)
    print(f"\nload average after the run: {load()}")
