"""Runs a small set of analyzers and saves their numbers (an .npz): tests/test_parallel.py runs it
once on one device and once on four forced host devices, and compares. Usage:
python tests/parallel_worker.py OUT.npz [fast|slow]"""

from __future__ import annotations

import sys

import numpy as np


def fixed_model(data, seed: int = 0):
    """A small MLP with fixed random weights: the same model in every run (no training noise)."""
    import jax.numpy as jnp

    from audit.models import Model

    rng = np.random.default_rng(seed)
    d, h = data.X.shape[1], 12
    params = {"w1": rng.normal(0, 1 / np.sqrt(d), (d, h)).astype(np.float32), "b1": np.zeros(h, np.float32),
              "w2": rng.normal(0, 1 / np.sqrt(h), (h, data.n_classes)).astype(np.float32),
              "b2": np.zeros(data.n_classes, np.float32)}

    def apply(p, x):
        return jnp.tanh(x @ p["w1"] + p["b1"]) @ p["w2"] + p["b2"]

    return Model.from_function(apply, params, input_shape=data.input_shape, class_names=data.class_names,
                               batch_size=24)  # 24 rows a chunk: split evenly over 1, 2 or 4 devices


def run(part: str) -> dict[str, np.ndarray]:
    import jax

    from audit import datasets, explain, fairness, ood, parallel
    from audit.models import train
    from audit.robustness import evaluate, ibp_margins

    data = datasets.load("credit", n=500, seed=1)
    model = fixed_model(data)
    x, y = data.test.X[:30], data.test.y[:30]
    out = {"devices": np.array(parallel.count()), "logits": model.logits(data.test.X)}
    rob = evaluate(model, data, n=30, attacks=("fgsm", "pgd"), steps=4, bootstrap=40, min_perturbation_n=6,
                   search_steps=3, batch_size=10, impute_k=(1,))  # 10 rows a chunk: padded on 4 devices
    out.update({f"robustness/{k}": np.array(v) for k, v in rob.metrics().items()})
    out["ig"] = explain.integrated_gradients(model, x[:14], steps=8, batch_size=6).values
    out["lime"] = explain.lime_native(model, data, data.test.raw[:6], num_samples=300).values
    out["lime_independent"] = explain.lime_native(model, data, data.test.raw[:5], num_samples=200,
                                                  shared_samples=False).values
    out["kernel_shap"] = explain.compute_shap(model, x[:3], data.train.X[:8], method="kernel", n_samples=64,
                                              data=data).values
    out["ibp"] = ibp_margins(model, x, y, eps=0.05, batch_size=7)
    report = ood.evaluate(model, data, detectors=("msp", "energy", "mahalanobis"), n=40, n_bootstrap=20,
                          max_train=200, autoencoder_epochs=1)
    out.update({f"ood/{k}": np.array(v) for k, v in report.metrics().items()})
    fair = fairness.evaluate(model, data, n_bootstrap=60, proxies=False)
    out.update({f"fairness/{k}": np.array(v) for k, v in fair.metrics().items()})
    trained = train("mlp", data, epochs=2, batch_size=32, widths=(8,), progress=False, seed=0)
    out.update({f"train/{i}": np.asarray(a) for i, a in enumerate(jax.tree.leaves(trained.params))})
    if part == "slow":
        out["exact_shap"] = explain.compute_shap(model, x[:3], data.train.X[:6], method="exact", data=data).values
        out["expected_gradients"] = explain.compute_shap(model, x[:5], data.train.X[:8], method="gradient",
                                                         n_samples=32, data=data).values
        rob = evaluate(model, data, n=16, attacks=("apgd", "square"), steps=4, square_queries=30, bootstrap=20,
                       min_perturbation_n=0, batch_size=6, impute_k=())
        out.update({f"robustness_slow/{k}": np.array(v) for k, v in rob.metrics().items()})
    return out


if __name__ == "__main__":
    np.savez(sys.argv[1], **run(sys.argv[2] if len(sys.argv) > 2 else "fast"))
