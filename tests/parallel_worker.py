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


def fast() -> dict[str, np.ndarray]:
    """A few seconds: the padded-batch loop (logits, PGD, IG), kernel SHAP's example blocks, exact
    SHAP's distinct rows, the fairness bootstrap and a few data-parallel training steps."""
    import jax

    from audit import datasets, explain, parallel
    from audit.fairness import _stats
    from audit.models import padded_batches, train
    from audit.robustness import pgd

    data = datasets.load("credit", n=300, seed=1)
    model = fixed_model(data)
    x, y = data.test.X[:30], data.test.y[:30]
    def spans(xb):  # how many devices a chunk is split over
        return np.full(len(xb), len(xb.sharding.device_set) if hasattr(xb, "sharding") else 1)

    out = {"devices": np.array(parallel.count()), "spans": padded_batches(spans, [x], 8),
           "spans_of_10": padded_batches(spans, [x], 10), "logits": model.logits(data.test.X)}
    out["pgd"] = padded_batches(lambda xb, yb: pgd(model.apply, model.params, xb, yb, eps=0.1, steps=3,
                                                   key=jax.random.key(1)), [x, y], 10)
    out["ig"] = explain.integrated_gradients(model, x[:14], steps=8, batch_size=6).values
    out["kernel_shap"] = explain.compute_shap(model, x[:3], data.train.X[:8], method="kernel", n_samples=64,
                                              data=data).values
    # exact SHAP over raw columns: categorical players shared with background rows take the
    # distinct-rows path (audit.explain._distinct), rows split over the devices
    out["exact_shap"] = explain.compute_shap(model, x[:3], data.train.X[:8], method="exact", data=data).values
    codes = np.arange(len(x)) % 3
    stats = _stats.row_stats(y == 1, model.predict(x) == 1, model.predict(x) == y, model.predict_proba(x)[:, 1],
                             n_bins=4)
    out["bootstrap"] = _stats.bootstrap_sums(stats, codes, 3, n_bootstrap=50, rng=np.random.default_rng(0))
    trained = train("mlp", data, epochs=1, batch_size=32, widths=(8,), progress=False, seed=0)
    out.update({f"train/{i}": np.asarray(a) for i, a in enumerate(jax.tree.leaves(trained.params))})
    return out


def slow() -> dict[str, np.ndarray]:
    """Whole analyzers: robustness evaluation (FGSM, PGD, APGD, Square, minimal perturbation), LIME
    both ways, exact SHAP, expected gradients, IBP, OOD scores, fairness with its bootstrap,
    certification (IBP, randomized smoothing, AutoAttack, C&W) and explanation stability."""
    from audit import datasets, explain, fairness, ood
    from audit.robustness import certify, evaluate, explanation_stability, ibp_margins

    data = datasets.load("credit", n=500, seed=1)
    model = fixed_model(data)
    x, y = data.test.X[:30], data.test.y[:30]
    out = {}
    rob = evaluate(model, data, n=30, attacks=("fgsm", "pgd", "apgd", "square"), steps=4, square_queries=30,
                   bootstrap=40, min_perturbation_n=6, search_steps=3, batch_size=10, impute_k=(1,))
    out.update({f"robustness/{k}": np.array(v) for k, v in rob.metrics().items()})
    out["lime"] = explain.lime_native(model, data, data.test.raw[:6], num_samples=300).values
    out["lime_independent"] = explain.lime_native(model, data, data.test.raw[:5], num_samples=200,
                                                  shared_samples=False).values
    out["exact_shap"] = explain.compute_shap(model, x[:3], data.train.X[:6], method="exact", data=data).values
    out["expected_gradients"] = explain.compute_shap(model, x[:5], data.train.X[:8], method="gradient",
                                                     n_samples=32, data=data).values
    out["ibp"] = ibp_margins(model, x, y, eps=0.05, batch_size=7)
    report = ood.evaluate(model, data, detectors=("msp", "energy", "mahalanobis"), n=40, n_bootstrap=20,
                          max_train=200)
    out.update({f"ood/{k}": np.array(v) for k, v in report.metrics().items()})
    fair = fairness.evaluate(model, data, n_bootstrap=60, proxies=False)
    out.update({f"fairness/{k}": np.array(v) for k, v in fair.metrics().items()})
    cert = certify(model, data, n=12, eps=(0.1,), attacks=("pgd", "autoattack"), steps=3, n0=20,
                   n_samples=60, smoothing_attack_steps=2, smoothing_attack_samples=2, batch_size=5)
    out.update({f"certify/{k}": np.array(v) for k, v in cert.metrics().items()})
    cw = evaluate(model, data, norm="l2", eps=(0.5,), n=10, attacks=("cw",), steps=3, bootstrap=10,
                  min_perturbation_n=0, batch_size=4, impute_k=())
    out.update({f"cw/{k}": np.array(v) for k, v in cw.metrics().items()})
    stab = explanation_stability(model, data, n=10, eps=(0.1,), pgd_steps=3, attack_steps=3, attack_samples=2,
                                 batch_size=6)
    out.update({f"stability/{k}": np.array(v) for k, v in stab.metrics().items()})
    return out


if __name__ == "__main__":
    np.savez(sys.argv[1], **(slow() if sys.argv[2:] == ["slow"] else fast()))
