"""Models written the way users write them, against the peers on the same weights, in one run.

    python bench/user_models.py [--quick] [--only pgd ig shap lime]

Models: a Linen CNN with `nn.max_pool`, BatchNorm and Dropout (trained here by a plain Optax
loop, as a user would), the zoo CNN (`audit.models.max_pool`), an NNX MLP (nnx.Linear + relu)
and the zoo MLP. Peers on the same weights, interleaved with ours in rotating order (each time
is the best of a few rounds, so load drifting hits everyone alike; the load average is printed
beside every table):
- PGD-20 (linf, random start, same eps and step): `audit.robustness.pgd` with each loop, the
  user's unrewritten apply (`fast_gradients=False`), the floor (20 jitted value-and-gradient calls
  of the same batch), and IBM ART's ProjectedGradientDescent on a PyTorch copy of the weights, at
  1 torch thread and at all threads (the faster is the peer's best).
- IG, 50 steps: `audit.explain.integrated_gradients` against PAIR saliency's IntegratedGradients
  fed the jitted input gradient (its best), floor = 50 batched gradient calls; and IG at PAIR's
  50-step completeness error (the fewest trapezoid steps that reach it, chosen on other images).
- Exact SHAP (12 players, 100 background rows) against shap's ExactExplainer and its floor
  (2^12 x 100 rows through the jitted model in the library's chunk size).
LIME on equal work (lime with `discretize_continuous=False`, same jitted predict) is measured by
bench/explain_lime_ig.py on the zoo MLP.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import sys
import time

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from audit import Model, datasets  # noqa: E402
from audit.models import _xla, train  # noqa: E402
from audit.robustness import pgd  # noqa: E402
from audit.robustness._core import loss_and_grad  # noqa: E402


def load() -> str:
    return "load average %.1f %.1f %.1f" % os.getloadavg()


def _options(model) -> dict:
    """jax.jit keywords for the compile options the audit uses for `model`'s gradients (the floor's too)."""
    options = _xla.options_for(model)["gradient"]
    return {"compiler_options": options} if options else {}


def race(fns: dict, rounds: int) -> dict:
    """Best time of each function over interleaved rounds in rotating order."""
    for fn in fns.values():
        jax.block_until_ready(fn())
    best = {k: float("inf") for k in fns}
    keys = list(fns)
    for r in range(rounds):
        for k in keys[r % len(keys):] + keys[:r % len(keys)]:
            t = time.perf_counter()
            jax.block_until_ready(fns[k]())
            best[k] = min(best[k], time.perf_counter() - t)
    return best


# ---- the user's models ------------------------------------------------------------------
class UserCNN(nn.Module):
    """A Linen CNN as users write it: nn.max_pool, BatchNorm, Dropout."""

    @nn.compact
    def __call__(self, x, train: bool = False):
        x = nn.max_pool(nn.relu(nn.Conv(32, (3, 3))(x)), (2, 2), strides=(2, 2))
        x = nn.BatchNorm(use_running_average=not train)(x)
        x = nn.max_pool(nn.relu(nn.Conv(64, (3, 3))(x)), (2, 2), strides=(2, 2))
        x = nn.Dropout(0.25, deterministic=not train)(x.reshape(x.shape[0], -1))
        return nn.Dense(10)(nn.relu(nn.Dense(128)(x)))


def train_user_cnn(data, *, epochs: int, seed: int = 0):
    """A plain Optax loop with mutable batch statistics and a dropout key, as in Flax's examples."""
    module, X, y = UserCNN(), data.train.X, data.train.y
    variables = module.init(jax.random.key(seed), X[:2])
    params, stats = variables["params"], variables["batch_stats"]
    opt = optax.adam(1e-3)
    state = opt.init(params)

    @jax.jit
    def step(params, stats, state, xb, yb, key):
        def loss(p):
            logits, upd = module.apply({"params": p, "batch_stats": stats}, xb, train=True,
                                       mutable=["batch_stats"], rngs={"dropout": key})
            return optax.softmax_cross_entropy_with_integer_labels(logits, yb).mean(), upd
        (_, upd), g = jax.value_and_grad(loss, has_aux=True)(params)
        upd_p, state = opt.update(g, state)
        return optax.apply_updates(params, upd_p), upd["batch_stats"], state

    key = jax.random.key(seed + 1)
    for _ in range(epochs):
        order = np.random.default_rng(seed).permutation(len(X))
        for i in range(0, len(X) - 63, 64):
            key, sub = jax.random.split(key)
            idx = order[i:i + 64]
            params, stats, state = step(params, stats, state, X[idx], y[idx], sub)
    variables = {"params": params, "batch_stats": stats}
    return Model.from_linen(module, variables, input_shape=data.input_shape, class_names=data.class_names)


class UserMLP(nnx.Module):
    def __init__(self, d_in: int, d_out: int, rngs: nnx.Rngs):
        self.l1, self.l2 = nnx.Linear(d_in, 64, rngs=rngs), nnx.Linear(64, 32, rngs=rngs)
        self.out = nnx.Linear(32, d_out, rngs=rngs)

    def __call__(self, x):
        return self.out(nnx.relu(self.l2(nnx.relu(self.l1(x)))))


def train_user_mlp(data, *, epochs: int, seed: int = 0):
    module = UserMLP(int(np.prod(data.input_shape)), len(data.class_names), nnx.Rngs(seed))
    opt = nnx.Optimizer(module, optax.adam(1e-3), wrt=nnx.Param)

    @nnx.jit
    def step(module, opt, xb, yb):
        loss = lambda m: optax.softmax_cross_entropy_with_integer_labels(m(xb), yb).mean()
        opt.update(module, nnx.grad(loss)(module))

    X, y = data.train.X, data.train.y
    for _ in range(epochs):
        order = np.random.default_rng(seed).permutation(len(X))
        for i in range(0, len(X) - 127, 128):
            step(module, opt, X[order[i:i + 128]], y[order[i:i + 128]])
    return Model.from_nnx(module, input_shape=data.input_shape, class_names=data.class_names)


# ---- PyTorch copies for ART ---------------------------------------------------------------
def _np(v):
    return np.asarray(v.value if hasattr(v, "value") else v)


def torch_user_cnn(model):
    import torch
    from torch import nn as tnn

    p, s = model.params["params"], model.params["batch_stats"]

    class Net(tnn.Module):
        def __init__(self):
            super().__init__()
            self.c1, self.c2 = tnn.Conv2d(1, 32, 3, padding=1), tnn.Conv2d(32, 64, 3, padding=1)
            self.bn = tnn.BatchNorm2d(32, eps=1e-5)
            self.d1, self.d2 = tnn.Linear(7 * 7 * 64, 128), tnn.Linear(128, 10)

        def forward(self, x):
            x = self.bn(tnn.functional.max_pool2d(torch.relu(self.c1(x)), 2))
            x = tnn.functional.max_pool2d(torch.relu(self.c2(x)), 2)
            x = x.permute(0, 2, 3, 1).reshape(x.shape[0], -1)
            return self.d2(torch.relu(self.d1(x)))

    net, t = Net(), lambda a: torch.from_numpy(np.ascontiguousarray(a))
    with torch.no_grad():
        for mine, theirs in (("c1", "Conv_0"), ("c2", "Conv_1")):
            getattr(net, mine).weight.copy_(t(_np(p[theirs]["kernel"]).transpose(3, 2, 0, 1)))
            getattr(net, mine).bias.copy_(t(_np(p[theirs]["bias"])))
        for mine, theirs in (("d1", "Dense_1"), ("d2", "Dense_0")):  # Dense(10) is built first
            getattr(net, mine).weight.copy_(t(_np(p[theirs]["kernel"]).T))
            getattr(net, mine).bias.copy_(t(_np(p[theirs]["bias"])))
        net.bn.weight.copy_(t(_np(p["BatchNorm_0"]["scale"])))
        net.bn.bias.copy_(t(_np(p["BatchNorm_0"]["bias"])))
        net.bn.running_mean.copy_(t(_np(s["BatchNorm_0"]["mean"])))
        net.bn.running_var.copy_(t(_np(s["BatchNorm_0"]["var"])))
    return net.eval()


def torch_user_mlp(model):
    import torch
    from torch import nn as tnn

    p = model.params
    layers = []
    for name in ("l1", "l2", "out"):
        k = _np(p[name]["kernel"])
        lin = tnn.Linear(*k.shape)
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(np.ascontiguousarray(k.T)))
            lin.bias.copy_(torch.from_numpy(_np(p[name]["bias"])))
        layers += [lin, tnn.ReLU()]
    return tnn.Sequential(*layers[:-1]).eval()


# ---- PGD-20 against ART -------------------------------------------------------------------
def pgd_rows(name, model, net, data, *, image: bool, eps: float, batch: int, n: int, rounds: int) -> list[dict]:
    import torch
    from art.attacks.evasion import ProjectedGradientDescent
    from art.estimators.classification import PyTorchClassifier

    from audit.robustness import domain_for

    x, y, steps = data.test.X[:n], data.test.y[:n], 20
    dom = domain_for(data)
    to_t = (lambda v: v.transpose(0, 3, 1, 2)) if image else (lambda v: v)
    with torch.no_grad():
        diff = float(np.abs(net(torch.from_numpy(to_t(x[:64]).copy())).numpy() - model.logits(x[:64])).max())
    lo, hi = np.asarray(dom.lower, np.float32), np.asarray(dom.upper, np.float32)
    clip = (0.0, 1.0) if image else (lo, hi)
    clf = PyTorchClassifier(model=net, loss=torch.nn.CrossEntropyLoss(), input_shape=to_t(x[:1]).shape[1:],
                            nb_classes=len(data.class_names), clip_values=clip)
    step = 2.5 * eps / steps
    attack = ProjectedGradientDescent(clf, norm=np.inf, eps=eps, eps_step=step, max_iter=steps,
                                      num_random_init=1, batch_size=batch, verbose=False)
    batches = [(x[i:i + batch], y[i:i + batch]) for i in range(0, n - batch + 1, batch)]
    key, all_threads = jax.random.key(0), os.cpu_count()
    plain = model.replace(fast_gradients=False)
    vg = jax.jit(lambda xb, yb: loss_and_grad(model.apply, model.params, xb, yb, "ce", False),
                 **_options(model))

    def ours(m, loop):
        def go():
            with _xla.for_model(m):  # the compile options the audit uses for this model
                return [pgd(m.apply, m.params, xb, yb, eps=eps, steps=steps, step_size=step, domain=dom, key=key,
                            loop=loop) for xb, yb in batches]
        return go

    def art(threads):
        def go():
            torch.set_num_threads(threads)
            mask = {} if image else {"mask": np.asarray(dom.mutable, np.float32)}  # immutable columns stay
            return [attack.generate(to_t(xb), y=yb, **mask) for xb, yb in batches]
        return go

    fns = {"auto": ours(model, "auto"), "host": ours(model, "host"), "scan": ours(model, "scan"),
           "user apply (no rewrite)": ours(plain, "auto"),
           "floor": lambda: [[vg(xb, yb) for _ in range(steps)][-1] for xb, yb in batches],
           "art1": art(1), "artN": art(all_threads)}
    best = race(fns, rounds)
    torch.set_num_threads(all_threads)
    n_used = len(batches) * batch
    art_best = min(best["art1"], best["artN"])
    art_threads = 1 if best["art1"] <= best["artN"] else all_threads
    adv = np.concatenate(fns["auto"]())
    yy = np.concatenate([b[1] for b in batches])
    rows = [{"model": name, "method": f"PGD-20 eps={eps:g}", "impl": f"audit pgd, loop={k}",
             "rate": n_used / best[k], "x_floor": best[k] / best["floor"], "vs_peer": art_best / best[k],
             "acc": model.accuracy(adv, yy) if k == "auto" else None} for k in ("auto", "host", "scan",
                                                                                 "user apply (no rewrite)")]
    art_adv = np.concatenate([np.asarray(a) for a in fns["art1"]()])
    art_adv = art_adv.transpose(0, 2, 3, 1) if image else art_adv
    rows.append({"model": name, "method": f"PGD-20 eps={eps:g}",
                 "impl": f"ART PGD, torch {art_threads} thread(s) (1: {n_used / best['art1']:.0f}/s, "
                         f"{all_threads}: {n_used / best['artN']:.0f}/s)",
                 "rate": n_used / art_best, "acc": model.accuracy(art_adv, yy), "note": f"|torch-jax| {diff:.1e}"})
    return rows


# ---- IG against PAIR -----------------------------------------------------------------------
def ig_rows(name, model, data, *, n: int, rounds: int, steps: int = 50) -> list[dict]:
    from saliency.core import IntegratedGradients
    from saliency.core.base import INPUT_OUTPUT_GRADIENTS

    from audit.explain import _saliency, integrated_gradients

    X = data.test.X[:n]
    t = model.predict(X)
    grad = jax.jit(_saliency.input_gradient(model.apply, "logit"))  # what a PAIR user would jit
    floor_grad = jax.jit(_saliency.input_gradient(model.apply, "logit"), **_options(model))
    plain = model.replace(fast_gradients=False)
    plain_grad = jax.jit(_saliency.input_gradient(plain.apply, "logit"))
    pair = IntegratedGradients()

    def pair_with(g, Xs=X, ts=t):
        def call_model(xb, call_model_args=None, expected_keys=None):
            cls = call_model_args["class"]
            return {INPUT_OUTPUT_GRADIENTS: np.asarray(g(jnp.asarray(xb, jnp.float32), model.params,
                                                         jnp.full(len(xb), cls, jnp.int32)))}
        return lambda: np.stack([pair.GetMask(Xs[i], call_model, {"class": int(ts[i])}, x_steps=steps,
                                              x_baseline=np.zeros_like(Xs[i]), batch_size=steps)
                                 for i in range(len(Xs))])

    def ours(m, k=steps, X=X, t=t):
        def go():
            with _xla.for_model(m):  # the compile options the audit uses for this model
                return integrated_gradients(m, X, target=t, steps=k)
        return go

    def pair_error(X, t, masks):
        out = model.logits(X)[np.arange(len(X)), t] - model.logits(np.zeros_like(X))[np.arange(len(X)), t]
        return float(np.abs(masks.reshape(len(X), -1).sum(1) - out).sum() / np.abs(out).sum())

    # Equal error: the fewest steps whose completeness error (and that of every larger candidate)
    # is at most PAIR's at `steps` steps, chosen on the next n test images, then timed on these.
    Xc = data.test.X[n:2 * n]
    tc = model.predict(Xc)
    pair_c = pair_error(Xc, tc, pair_with(grad, Xc, tc)())
    candidates = [k for k in (4, 6, 8, 10, 12, 16, 20, 25, 32, 40) if k < steps]
    fine = [ours(model, k, Xc, tc)().completeness_error() <= pair_c for k in candidates]
    k_eq = next((k for i, k in enumerate(candidates) if all(fine[i:])), steps)

    results = {}
    keep = lambda key, fn: lambda: (results.__setitem__(key, fn()), getattr(results[key], "values", results[key]))[1]
    best = race({"ours": lambda: ours(model)().values, "ours_plain": lambda: ours(plain)().values,
                 "ours_equal_error": keep("ours_equal_error", ours(model, k_eq)),
                 "floor": lambda: floor_grad(X, model.params, jnp.asarray(t)),
                 "pair": keep("pair", pair_with(grad)), "pair_plain": pair_with(plain_grad)}, rounds)
    floor = steps * best["floor"]
    pair_best = min(best["pair"], best["pair_plain"])
    pair_err = pair_error(X, t, results["pair"])
    ms = lambda k: 1e3 * best[k] / n
    row = lambda impl, k, work=f"IG, {steps} steps", **kw: {"model": name, "method": work, "impl": impl,
                                                             "ms": ms(k), "x_floor": best[k] / floor, **kw}
    eq_err = results["ours_equal_error"].completeness_error()
    return [row("audit integrated_gradients", "ours", vs_peer=pair_best / best["ours"]),
            row("audit, user apply (no rewrite)", "ours_plain", vs_peer=pair_best / best["ours_plain"]),
            row("PAIR saliency, fed audit's jitted gradient", "pair", note=f"completeness error {pair_err:.2e}"),
            row("PAIR saliency, fed the user's jitted gradient", "pair_plain"),
            row(f"audit integrated_gradients, {k_eq} steps (trapezoid)", "ours_equal_error",
                work=f"IG at PAIR's {steps}-step completeness error", vs_peer=pair_best / best["ours_equal_error"],
                note=f"completeness error {eq_err:.2e} vs PAIR's {pair_err:.2e}; x floor: against {steps} calls")]


# ---- exact SHAP against shap ----------------------------------------------------------------
def breast_cancer_12():
    from audit import Dataset

    full = datasets.load("breast_cancer", seed=0)
    return Dataset(X=full.X[:, :12], y=full.y, feature_names=full.feature_names[:12],
                   class_names=full.class_names, splits=full.splits, name="breast_cancer[:12]")


def shap_floor(model, rows_per_example: int, n: int, chunk_rows: int, d: int):
    """The unavoidable model evaluations of exact SHAP: 2^P x background rows per example through
    the jitted model in the library's chunk size, inputs prebuilt, class-1 probability reduced."""
    from audit.explain import _players

    leaves, treedef = jax.tree_util.tree_flatten(model.params)
    out_fn = _players.output_fn(model.apply, "probability")

    @jax.jit
    def run(lv, xs):
        params = jax.tree_util.tree_unflatten(treedef, lv)
        return jax.lax.map(lambda r: out_fn(params, r)[:, 1].mean(), xs)

    chunks = -(-rows_per_example // chunk_rows)
    xs = jnp.asarray(np.random.default_rng(0).normal(size=(chunks, chunk_rows, d)).astype(np.float32))
    lv = tuple(leaves)
    return lambda: [run(lv, xs) for _ in range(n)]


def shap_rows(name, model, data, *, n: int, rounds: int) -> list[dict]:
    import shap

    from audit.explain import _players, background, compute_shap

    X, bg = data.test.X[:n], background(data, size=100, seed=0)
    p = X.shape[1]
    proba = lambda v: model.predict_proba(v)[:, 1]
    ex = shap.explainers.ExactExplainer(proba, shap.maskers.Independent(bg, max_samples=100))
    best = race({"ours": lambda: compute_shap(model, X, bg, method="exact", target=1).values,
                 "shap": lambda: ex(X).values,
                 "floor": shap_floor(model, 2 ** p * len(bg), n, _players.CHUNK_ROWS, p)}, rounds)
    err = float(np.abs(compute_shap(model, X, bg, method="exact", target=1).values - ex(X).values).max())
    common = {"model": name, "method": f"exact SHAP, {p} players, {len(bg)} background rows"}
    return [{**common, "impl": "audit compute_shap(method='exact')", "ms": 1e3 * best["ours"] / n,
             "x_floor": best["ours"] / best["floor"], "vs_peer": best["shap"] / best["ours"],
             "note": f"max |ours - shap| {err:.1e}"},
            {**common, "impl": "shap ExactExplainer(predict_proba)", "ms": 1e3 * best["shap"] / n,
             "x_floor": best["shap"] / best["floor"]}]


def print_table(rows: list[dict]) -> None:
    print("| model | work | implementation | rate (ex/s) | ms/expl | x floor | speed-up vs peer's best | robust acc | note |")
    print("|---|---|---|---:|---:|---:|---:|---:|---|")
    f = lambda v, spec: "" if v is None else format(v, spec)
    for r in rows:
        print(f"| {r['model']} | {r['method']} | {r['impl']} | {f(r.get('rate'), '.0f')} | {f(r.get('ms'), '.2f')} | "
              f"{f(r.get('x_floor'), '.2f')} | {f(r.get('vs_peer'), '.2f')}{'x' if r.get('vs_peer') else ''} | "
              f"{f(r.get('acc'), '.3f')} | {r.get('note', '')} |", flush=True)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--only", nargs="+", default=["pgd", "ig", "shap"], choices=["pgd", "ig", "shap"])
    args = ap.parse_args(argv)
    rounds = 2 if args.quick else 4
    import torch

    torch.manual_seed(0)
    print(f"jax {jax.__version__}, torch {torch.__version__}, cpus {os.cpu_count()}, {load()}")
    rows: list[dict] = []
    if {"pgd", "ig"} & set(args.only):
        mnist = datasets.load("mnist")
        t0 = time.perf_counter()
        user_cnn = train_user_cnn(mnist, epochs=1 if args.quick else 2)
        zoo_cnn = train("cnn", mnist, epochs=1 if args.quick else 2, progress=False, seed=0)
        print(f"CNNs trained in {time.perf_counter() - t0:.0f}s: user {user_cnn.accuracy(mnist.test.X, mnist.test.y):.3f}, "
              f"zoo {zoo_cnn.accuracy(mnist.test.X, mnist.test.y):.3f}; {load()}")
        from robustness import torch_copy  # bench/robustness.py

        if "pgd" in args.only:
            for nm, m, net in (("user Linen CNN (nn.max_pool, BatchNorm, Dropout)", user_cnn, torch_user_cnn(user_cnn)),
                               ("zoo CNN", zoo_cnn, torch_copy(zoo_cnn, "cnn"))):
                rows += pgd_rows(nm, m, net, mnist, image=True, eps=0.1, batch=64, n=128 if args.quick else 256,
                                 rounds=rounds)
                print_table(rows[-5:])
                print(f"  {nm} PGD done; {load()}", flush=True)
        if "ig" in args.only:
            for nm, m in (("user Linen CNN", user_cnn), ("zoo CNN", zoo_cnn)):
                rows += ig_rows(nm, m, mnist, n=16 if args.quick else 32, rounds=rounds)
                print_table(rows[-5:])
                print(f"  {nm} IG done; {load()}", flush=True)
    if "pgd" in args.only:
        credit = datasets.load("credit")
        user_mlp = train_user_mlp(credit, epochs=3 if args.quick else 10)
        zoo_mlp = train("mlp", credit, epochs=3 if args.quick else 10, progress=False, seed=0)
        from robustness import torch_copy  # bench/robustness.py

        for nm, m, net in (("user NNX MLP (credit)", user_mlp, torch_user_mlp(user_mlp)),
                           ("zoo MLP (credit)", zoo_mlp, torch_copy(zoo_mlp, "mlp"))):
            rows += pgd_rows(nm, m, net, credit, image=False, eps=0.3, batch=512, n=1024 if args.quick else 2048,
                             rounds=rounds)
            print_table(rows[-5:])
            print(f"  {nm} PGD done; {load()}", flush=True)
    if "shap" in args.only:
        bc12 = breast_cancer_12()
        for nm, m in (("user NNX MLP (breast_cancer, 12 features)", train_user_mlp(bc12, epochs=30)),
                      ("zoo MLP (breast_cancer, 12 features)", train("mlp", bc12, epochs=30, widths=(64, 32),
                                                                       progress=False, seed=0))):
            rows += shap_rows(nm, m, bc12, n=10, rounds=rounds)
            print_table(rows[-2:])
            print(f"  {nm} SHAP done; {load()}", flush=True)
    print(f"\n{load()}\n")
    print_table(rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
