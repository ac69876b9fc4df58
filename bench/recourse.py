"""Counterfactual benchmark: audit.explain.counterfactuals against DiCE (dice-ml) on the same model.

    python bench/recourse.py [--rows 40] [--k 3] [--skip-gradient]

Credit data (sex and age as model inputs and immutable for everyone), the zoo MLP. For rows the model
denies credit, k counterfactuals toward "no default" from: ours (gradient method: JAX search pooled
with growing spheres; and growing spheres alone), DiCE "random" and "genetic" on a numpy predict
function (sklearn backend), and DiCE "gradient" on a PyTorch copy of the same weights (DiCE's own
min-max/one-hot encoding in front). Every counterfactual is scored by the same code: validity (our
model gives the target), cost (MAD-scaled L1 + 1 per changed categorical; cheapest valid per row),
sparsity (columns changed), diversity (mean pairwise cost-distance between a row's valid ones) and
seconds per requested counterfactual. Ours is timed after one warm-up call (compilation shown apart),
the median of 5 calls.
"""

from __future__ import annotations

import argparse
import os
import time
import warnings

import numpy as np
import pandas as pd


def _score(space, model, raw0, cfs, target):
    """validity, mean cheapest cost, sparsity, diversity for (n, k, d) raw counterfactuals (NaN = none)."""
    n, k, _ = cfs.shape
    finite = np.isfinite(cfs).all(-1)
    safe = np.where(finite[..., None], cfs, raw0[:, None])
    pred = model.predict(space.encode(safe.reshape(-1, space.d))).reshape(n, k)
    valid = finite & (pred == target[:, None]) & space.satisfied(np.broadcast_to(raw0[:, None], cfs.shape), safe)
    cost = np.where(valid, space.cost(raw0[:, None], safe), np.inf)
    cheapest = cost.min(1)
    changed = space.changed(raw0[:, None], safe).sum(-1)
    pair = space.cost(safe[:, :, None], safe[:, None])
    both = valid[:, :, None] & valid[:, None] & ~np.eye(k, dtype=bool)
    div = np.where(both.sum((1, 2)) > 0, np.where(both, pair, 0).sum((1, 2)) / np.maximum(both.sum((1, 2)), 1), np.nan)
    return {"validity": float(valid.mean()), "valid": valid, "row_validity": float(np.isfinite(cheapest).mean()),
            "cost": cheapest, "sparsity": float(changed[valid].mean()) if valid.any() else np.nan,
            "diversity": float(np.nanmean(div)) if np.isfinite(div).any() else np.nan}


def _dice_frames(data):
    names = list(data.encoding.raw_names)
    train = data.raw[data.splits["train"]]
    frame = pd.DataFrame({n: ([data.encoding.columns[j].categories[int(v)] for v in train[:, j]]
                              if data.encoding.columns[j].kind == "categorical" else train[:, j])
                          for j, n in enumerate(names)})
    return names, frame


def _to_raw(data, df, names):
    df = df[names].copy()
    for c in data.encoding.columns:
        if c.kind == "categorical":
            df[c.name] = df[c.name].astype(str)
        else:
            df[c.name] = pd.to_numeric(df[c.name])
    return data.encoding.raw_matrix(df)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=40)
    parser.add_argument("--k", type=int, default=3)
    parser.add_argument("--skip-gradient", action="store_true")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    os.environ.setdefault("TQDM_DISABLE", "1")
    import dice_ml

    from audit import datasets
    from audit.explain import counterfactuals
    from audit.explain._cf_space import build_space
    from audit.models import train

    data = datasets.load("credit", n=6000, seed=0, include_sensitive=True)
    model = train("mlp", data, epochs=10, batch_size=128, widths=(32, 16), progress=False, seed=0)
    test = data.test
    denied = np.flatnonzero(model.predict(test.X) == 1)[:args.rows]
    X = test.X[denied]
    space = build_space(data)
    raw0 = space.decode(X)
    target = np.zeros(len(X), int)
    names, train_frame = _dice_frames(data)
    results = {}

    for method in ("gradient", "growing_spheres"):
        start = time.perf_counter()
        counterfactuals(model, data, X, k=args.k, method=method, seed=1)  # warm-up: compiles
        compile_s = time.perf_counter() - start
        times = []
        for _ in range(5):  # one call takes about a second: the median of 5 resists a shared machine's load spikes
            start = time.perf_counter()
            res = counterfactuals(model, data, X, k=args.k, method=method, seed=0)
            times.append(time.perf_counter() - start)
        seconds = float(np.median(times))
        results[f"audit {method}"] = (_score(space, model, res.original, res.counterfactuals, target), seconds,
                                      compile_s)

    categorical = [c.name for c in data.encoding.columns if c.kind == "categorical"]
    continuous = [n for n in names if n not in categorical]
    frame = train_frame.assign(default=model.predict(data.X[data.splits["train"]]))
    d = dice_ml.Data(dataframe=frame, continuous_features=continuous, outcome_name="default")

    class Numpy:  # the same model behind a numpy predict_proba on raw DataFrames
        def predict_proba(self, df):
            return model.predict_proba(space.encode(_to_raw(data, df, names)))

        def predict(self, df):
            return self.predict_proba(df).argmax(1)

    query = pd.DataFrame(np.asarray(pd.DataFrame(raw0, columns=names), dtype=object), columns=names)
    for c in data.encoding.columns:
        if c.kind == "categorical":
            query[c.name] = [c.categories[int(v)] for v in raw0[:, names.index(c.name)]]
        else:
            query[c.name] = raw0[:, names.index(c.name)].astype(float)
    vary = [n for n in names if n not in ("sex", "age")]
    for method in ("random", "genetic"):
        exp = dice_ml.Dice(d, dice_ml.Model(model=Numpy(), backend="sklearn"), method=method)
        cfs = np.full((len(X), args.k, len(names)), np.nan)
        start = time.perf_counter()
        for i in range(len(X)):
            try:
                out = exp.generate_counterfactuals(query.iloc[[i]], total_CFs=args.k, desired_class=0,
                                                   features_to_vary=vary, verbose=False)
                df = out.cf_examples_list[0].final_cfs_df
                if df is not None and len(df):
                    cfs[i, :min(args.k, len(df))] = _to_raw(data, df, names)[:args.k]
            except Exception as exc:  # DiCE raises when it finds nothing for a row
                if i == 0:
                    print(f"DiCE {method}: {type(exc).__name__}: {exc}"[:160])
        seconds = time.perf_counter() - start
        results[f"DiCE {method}"] = (_score(space, model, raw0, cfs, target), seconds, 0.0)

    if not args.skip_gradient:
        results["DiCE gradient"] = _dice_gradient(dice_ml, d, model, data, space, names, query, raw0, target,
                                                  vary, args.k)

    print(f"\n{len(X)} denied credit rows, k={args.k}, sex and age immutable\n")
    # a row is feasible when some method found a valid counterfactual for it (one exists); the rest
    # are infeasible as far as any method can tell, and count as neither valid nor invalid
    feasible = np.any([r[0]["valid"].any(1) for r in results.values()], axis=0)
    print(f"feasible rows (some method found one): {feasible.sum()} of {len(X)}\n")
    print("| method | validity | validity on feasible rows | rows with one | mean cheapest cost (rows all found) | "
          "sparsity | diversity | ms per counterfactual | compile (s) |")
    print("|---|---|---|---|---|---|---|---|---|")
    every = np.all([np.isfinite(r[0]["cost"]) for r in results.values()], axis=0)
    for name, (s, seconds, compile_s) in results.items():
        print(f"| {name} | {s['validity']:.3f} | {s['valid'][feasible].mean():.3f} | {s['row_validity']:.3f} | "
              f"{np.mean(s['cost'][every]):.3f} "
              f"({every.sum()} rows) | {s['sparsity']:.2f} | {s['diversity']:.2f} | "
              f"{1000 * seconds / (len(X) * args.k):.2f} | {compile_s:.1f} |")


def _dice_gradient(dice_ml, d, model, data, space, names, query, raw0, target, vary, k):
    """DiCE's gradient method on a PyTorch copy of the MLP, behind DiCE's own encoding."""
    import torch

    import jax

    # DiCE's own encoding: continuous columns min-max scaled on its data, categoricals one-hot "name_level"
    enc_names = list(d.get_ohe_min_max_normalized_data(query.iloc[[0]]).columns)
    ranges = {n: (float(d.data_df[n].min()), float(d.data_df[n].max())) for n in d.continuous_feature_names}
    ours = list(data.encoding.input_names)
    # matrix M and offset o with our_input = dice_input @ M + o
    M = np.zeros((len(enc_names), len(ours)))
    o = np.zeros(len(ours))
    for c in data.encoding.columns:
        if c.kind == "numeric":
            j = ours.index(c.name)
            lo, hi = ranges[c.name]
            M[enc_names.index(c.name), j] = (hi - lo) / c.std
            o[j] = (lo - c.mean) / c.std
        else:
            for level in c.categories:
                M[enc_names.index(f"{c.name}_{level}"), ours.index(f"{c.name}={level}")] = 1.0
    layers = {}  # parent path -> {"kernel": ..., "bias": ...}
    for path, leaf in jax.tree_util.tree_flatten_with_path(model.params)[0]:
        key = jax.tree_util.keystr(path)
        parent, name = key.rsplit("kernel", 1)[0] if "kernel" in key else key.rsplit("bias", 1)[0], \
            "kernel" if "kernel" in key else "bias"
        layers.setdefault(parent, {})[name] = np.asarray(leaf)
    chain, width = [], len(ours)
    while len(chain) < len(layers):  # order the dense layers by matching shapes
        parent = next(p for p, v in layers.items() if v["kernel"].shape[0] == width and p not in chain)
        chain.append(parent)
        width = layers[parent]["kernel"].shape[1]
    kernels = [layers[p]["kernel"] for p in chain]
    biases = [layers[p]["bias"] for p in chain]

    class Torch(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.M = torch.tensor(M, dtype=torch.float32)
            self.o = torch.tensor(o, dtype=torch.float32)
            self.layers = [(torch.tensor(w, dtype=torch.float32), torch.tensor(b, dtype=torch.float32))
                           for w, b in zip(kernels, biases)]

        def forward(self, x):
            h = x @ self.M + self.o
            for i, (w, b) in enumerate(self.layers):
                h = h @ w + b
                if i < len(self.layers) - 1:
                    h = torch.relu(h)
            return torch.softmax(h, dim=-1)[..., 1:2]  # DiCE's PyTorch backend wants P(class 1)

    torch_model = Torch()
    check = torch_model(torch.tensor(np.zeros((1, len(enc_names))), dtype=torch.float32))
    assert check.shape == (1, 1)
    exp = dice_ml.Dice(d, dice_ml.Model(model=torch_model, backend="PYT", func="ohe-min-max"), method="gradient")
    cfs = np.full((len(raw0), k, len(names)), np.nan)
    start = time.perf_counter()
    for i in range(len(raw0)):
        try:
            out = exp.generate_counterfactuals(query.iloc[[i]], total_CFs=k, desired_class=0,
                                               features_to_vary=vary, verbose=False)
            df = out.cf_examples_list[0].final_cfs_df
            if df is not None and len(df):
                cfs[i, :min(k, len(df))] = _to_raw(data, df, names)[:k]
        except Exception as exc:
            if i == 0:
                print(f"DiCE gradient: {type(exc).__name__}: {exc}"[:200])
    seconds = time.perf_counter() - start
    return _score(space, model, raw0, cfs, target), seconds, 0.0


if __name__ == "__main__":
    main()
