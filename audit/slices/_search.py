"""Lattice search over conjunctions of 1 to 3 conditions (SliceFinder-style; Chung et al. 2019,
"Slice Finder: automated data slicing for model validation"), vectorised with boolean-mask matmuls.

A conjunction of two conditions on different columns is tried only when both are large enough; one
of three only when its two-condition parent (the first two, in canonical order) and its third
condition are. A conjunction with the same rows as its parent or condition adds nothing and is skipped.
"""

from __future__ import annotations

import numpy as np

_CHUNK = 64  # parent cohorts per matmul: bounds memory to n * _CHUNK floats (25 MB at 100k rows)


def search(masks: np.ndarray, column: np.ndarray, wrong: np.ndarray, *, max_order: int,
           min_size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All conjunctions of up to `max_order` conditions, on distinct columns, with at least `min_size`
    rows and at least `min_size` rows outside. Returns (keys, sizes, error counts): keys is (k, 3) of
    condition indices, -1 where a conjunction has fewer than three."""
    n, m = masks.shape
    B = masks.astype(np.float32)
    BE = B * wrong.astype(np.float32)[:, None]
    size1, err1 = B.sum(0), BE.sum(0)
    big = size1 >= min_size
    keys, sizes, errors = [], [], []

    def add(key_columns, s, e):
        key = np.full((len(s), 3), -1, np.int64)
        for j, col in enumerate(key_columns):
            key[:, j] = col
        keys.append(key)
        sizes.append(s)
        errors.append(e)

    ones = np.flatnonzero(big)
    add([ones], size1[ones], err1[ones])
    if max_order >= 2 and m:
        size2, err2 = B.T @ B, B.T @ BE
        a, b = np.triu_indices(m, k=1)
        ok = big[a] & big[b] & (column[a] != column[b])
        a, b = a[ok], b[ok]
        s2, e2 = size2[a, b], err2[a, b]
        fresh = (s2 != size1[a]) & (s2 != size1[b])
        add([a[fresh], b[fresh]], s2[fresh], e2[fresh])
        if max_order >= 3:
            parents = s2 >= min_size
            pa, pb, ps = a[parents], b[parents], s2[parents]
            for start in range(0, len(pa), _CHUNK):
                ca, cb, cs = pa[start:start + _CHUNK], pb[start:start + _CHUNK], ps[start:start + _CHUNK]
                P = (masks[:, ca] & masks[:, cb]).astype(np.float32)  # (n, chunk)
                s3, e3 = P.T @ B, P.T @ BE  # (chunk, m)
                c = np.arange(m)[None, :]
                ok = ((c > cb[:, None]) & big[None, :] & (column[None, :] != column[ca][:, None])
                      & (column[None, :] != column[cb][:, None]) & (s3 != cs[:, None]) & (s3 != size1[None, :]))
                i, k = np.nonzero(ok)
                add([ca[i], cb[i], k], s3[i, k], e3[i, k])
    keys_all = np.concatenate(keys) if keys else np.zeros((0, 3), np.int64)
    sizes_all = np.rint(np.concatenate(sizes)).astype(np.int64) if sizes else np.zeros(0, np.int64)
    errors_all = np.rint(np.concatenate(errors)).astype(np.int64) if errors else np.zeros(0, np.int64)
    inside = (sizes_all >= min_size) & (sizes_all <= n - min_size)
    return keys_all[inside], sizes_all[inside], errors_all[inside]
