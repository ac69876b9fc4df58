"""OOD scores on 10k rows: flax-audit's detectors against scikit-learn's references on the same features.

Mahalanobis (shared covariance) against scikit-learn's EmpiricalCovariance per class; kNN against
NearestNeighbors; AUROC against roc_auc_score; pytorch-ood where it is installed (it needs torch).
Prints time per call and the largest score / AUROC difference. Run: `python bench/ood.py [--rows N]`.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np


def _best(fn, repeats=3):
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return min(times), out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=10_000)
    args = parser.parse_args()
    from sklearn.covariance import EmpiricalCovariance
    from sklearn.metrics import roc_auc_score
    from sklearn.neighbors import NearestNeighbors

    from audit import datasets, ood
    from audit.models import train

    data = datasets.load("credit", n=3 * args.rows, seed=0)
    model = train("mlp", data, epochs=5, widths=(64, 32), progress=False, seed=0)
    features, source = ood.feature_function(model)
    f_train = features(data.train.X).astype(np.float64)
    x_test = data.test.X[: args.rows]
    f_in = features(x_test).astype(np.float64)
    f_out = features(ood.tabular_shifts(data.test.raw[: args.rows], data.encoding, train_raw=data.train.raw,
                                        seed=0)["out_of_range"]).astype(np.float64)
    y = data.train.y
    print(f"load {os.getloadavg()[0]:.1f}; {len(f_train)} training and {len(f_in)}+{len(f_out)} scored rows; "
          f"{f_train.shape[1]} {source} features")
    rows = []

    t_ours, (ours_in, ours_out) = _best(lambda: (lambda m: (m.score(f_in), m.score(f_out)))(
        ood.Mahalanobis.fit(f_train, y, model.n_classes, ridge=0.0)))

    def sk_mahalanobis():
        means = [f_train[y == c].mean(0) for c in range(model.n_classes)]
        cov = EmpiricalCovariance(assume_centered=True).fit(f_train - np.stack(means)[y])
        return tuple(np.min([cov.mahalanobis(f - m) for m in means], axis=0) for f in (f_in, f_out))

    t_peer, (ref_in, ref_out) = _best(sk_mahalanobis)
    rows.append(("mahalanobis", t_ours, t_peer, max(np.abs(ours_in - ref_in).max() / ref_in.max(),
                                                    np.abs(ours_out - ref_out).max() / ref_out.max()),
                 abs(ood.auroc(ours_in, ours_out) - ood.auroc(ref_in, ref_out))))

    t_ours, (ours_in, ours_out) = _best(lambda: (lambda m: (m.score(f_in), m.score(f_out)))(ood.KNN.fit(f_train, k=10)))

    def sk_knn():
        norm = lambda z: z / np.linalg.norm(z, axis=1, keepdims=True)
        nn = NearestNeighbors(n_neighbors=10).fit(norm(f_train))
        return tuple(nn.kneighbors(norm(f))[0][:, -1] for f in (f_in, f_out))

    t_peer, (ref_in, ref_out) = _best(sk_knn)
    rows.append(("knn (k=10)", t_ours, t_peer, max(np.abs(ours_in - ref_in).max(), np.abs(ours_out - ref_out).max()),
                 abs(ood.auroc(ours_in, ours_out) - ood.auroc(ref_in, ref_out))))

    labels = np.r_[np.zeros(len(ours_in)), np.ones(len(ours_out))]
    t_ours, a = _best(lambda: ood.auroc(ours_in, ours_out))
    t_peer, b = _best(lambda: roc_auc_score(labels, np.r_[ours_in, ours_out]))
    rows.append(("auroc", t_ours, t_peer, 0.0, abs(a - b)))
    print("| score | flax-audit (s) | peer (s) | speed-up | max score diff | AUROC diff |")
    print("|---|---|---|---|---|---|")
    for name, t1, t2, d, da in rows:
        print(f"| {name} | {t1:.3f} | {t2:.3f} | {t2 / t1:.1f}x | {d:.1e} | {da:.1e} |")
    try:
        detectors = load_pytorch_ood()
    except ImportError:
        print("pytorch-ood is not installed (it needs torch): `pip install pytorch-ood` adds its rows.")
        return
    logits_in, logits_out = model.logits(x_test), model.logits(ood.tabular_shifts(
        data.test.raw[: args.rows], data.encoding, train_raw=data.train.raw, seed=0)["out_of_range"])
    print()
    print("| score, same features | flax-audit (s) | pytorch-ood (s) | speed-up | flax-audit AUROC | pytorch-ood AUROC "
          "| AUROC diff |")
    print("|---|---|---|---|---|---|---|")
    for row in against_pytorch_ood(detectors, f_train, y, f_in, f_out, logits_in, logits_out, model.n_classes, k=10):
        print("| {} | {:.3f} | {:.3f} | {:.1f}x | {:.6f} | {:.6f} | {:.1e} |".format(
            row["score"], row["ours_s"], row["peer_s"], row["peer_s"] / row["ours_s"], row["ours_auroc"],
            row["peer_auroc"], abs(row["ours_auroc"] - row["peer_auroc"])))


def load_pytorch_ood() -> dict:
    """pytorch-ood's Mahalanobis, EnergyBased and KNN detector classes.

    The package's `__init__` imports torchvision for its image models and data sets; where
    torchvision's compiled ops do not match the installed torch (this machine's index has only a
    CUDA torchvision beside the CPU torch), the three detector modules, which never use
    torchvision, are imported on their own."""
    import importlib
    import importlib.util
    import sys
    import types

    try:
        from pytorch_ood.detector import KNN, EnergyBased, Mahalanobis
    except RuntimeError:
        spec = importlib.util.find_spec("pytorch_ood")
        root = os.path.dirname(spec.origin)
        for name in [n for n in sys.modules if n == "pytorch_ood" or n.startswith("pytorch_ood.")]:
            del sys.modules[name]
        for name, path in (("pytorch_ood", root), ("pytorch_ood.detector", os.path.join(root, "detector"))):
            package = types.ModuleType(name)
            package.__path__ = [path]
            sys.modules[name] = package
        Mahalanobis = importlib.import_module("pytorch_ood.detector.mahalanobis").Mahalanobis
        EnergyBased = importlib.import_module("pytorch_ood.detector.energy").EnergyBased
        KNN = importlib.import_module("pytorch_ood.detector.knn").KNN
    return {"mahalanobis": Mahalanobis, "energy": EnergyBased, "knn": KNN}


def against_pytorch_ood(detectors, f_train, y, f_in, f_out, logits_in, logits_out, n_classes, *, k=10,
                        repeats=3) -> list[dict]:
    """Fit and score each detector in flax-audit and in pytorch-ood on the same features / logits;
    AUROC of inliers vs outliers for both, and the best-of-`repeats` time of fit + score."""
    import torch

    from audit import ood

    torch.set_num_threads(max(1, os.cpu_count() or 1))
    t = lambda a: torch.as_tensor(np.asarray(a, np.float32))
    rows = []

    def ours_maha():
        m = ood.Mahalanobis.fit(f_train, y, n_classes)
        return m.score(f_in), m.score(f_out)

    def peer_maha():
        m = detectors["mahalanobis"](None).fit_features(t(f_train), torch.as_tensor(y, dtype=torch.long))
        return m.predict_features(t(f_in)).numpy(), m.predict_features(t(f_out)).numpy()

    def ours_knn():
        m = ood.KNN.fit(f_train, k=k)
        return m.score(f_in), m.score(f_out)

    def peer_knn():
        m = detectors["knn"](None, k=k).fit_features(t(f_train), torch.as_tensor(y, dtype=torch.long))
        return m.predict_features(t(f_in)).numpy(), m.predict_features(t(f_out)).numpy()

    def ours_energy():
        return ood.energy_score(logits_in), ood.energy_score(logits_out)

    def peer_energy():
        return (detectors["energy"].score(t(logits_in)).numpy(), detectors["energy"].score(t(logits_out)).numpy())

    for name, ours, peer in (("mahalanobis", ours_maha, peer_maha), (f"knn (k={k})", ours_knn, peer_knn),
                             ("energy", ours_energy, peer_energy)):
        t_ours, (a_in, a_out) = _best(ours, repeats)
        t_peer, (b_in, b_out) = _best(peer, repeats)
        rows.append({"score": name, "ours_s": t_ours, "peer_s": t_peer, "ours_auroc": ood.auroc(a_in, a_out),
                     "peer_auroc": ood.auroc(np.asarray(b_in, np.float64), np.asarray(b_out, np.float64))})
    return rows


if __name__ == "__main__":
    main()
