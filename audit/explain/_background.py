"""Background data for SHAP: a seeded sample or a k-means summary of the training rows.

Interventional Shapley values average the model over "absent" features drawn from a
background distribution (Lundberg & Lee 2017, NeurIPS, "A unified approach to interpreting
model predictions"); its size sets the cost (model calls scale linearly with it).
"""

from __future__ import annotations

import numpy as np

from audit.errors import AuditInputError

METHODS = ("sample", "kmeans")


def background(data, *, size: int = 100, method: str = "sample", seed: int = 0) -> np.ndarray:
    """`size` rows summarising the training split of `data` (all rows if it has none), shape
    (size, *input_shape), float32.

    method="sample": rows drawn without replacement (seeded). method="kmeans": k-means
    centres (scikit-learn, seeded); for tabular data every one-hot block of a centre is
    snapped to its most likely category so each row is a valid input. Centres count equally,
    so prefer "sample" when the background must be an unbiased draw of the data.
    """
    if method not in METHODS:
        raise AuditInputError(f"background method={method!r}; choose one of {list(METHODS)}.")
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 1:
        raise AuditInputError(f"background size={size!r} must be a positive integer (e.g. 100).")
    rows = data.splits.get("train")
    X = data.X[rows] if rows is not None and len(rows) else data.X
    if size >= len(X):
        return np.array(X, np.float32)
    rng = np.random.default_rng(seed)
    if method == "sample":
        return np.array(X[np.sort(rng.choice(len(X), size=size, replace=False))], np.float32)
    from sklearn.cluster import KMeans

    flat = X.reshape(len(X), -1)
    centres = KMeans(n_clusters=size, n_init=3, random_state=seed).fit(flat).cluster_centers_
    if data.kind == "tabular" and data.encoding is not None:
        for col, group in zip(data.encoding.columns, data.encoding.groups):
            if col.kind == "categorical":
                block = centres[:, list(group)]
                centres[:, list(group)] = np.eye(len(group))[block.argmax(axis=1)]
    return centres.reshape((size, *X.shape[1:])).astype(np.float32)
