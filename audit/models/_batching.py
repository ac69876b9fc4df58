"""Fixed-size padded batches: the one loop every batched model call goes through.

Calling a jitted function on chunks of one fixed size (the last chunk padded by repeating its
last row) compiles it once for any number of rows; the padded rows are cut from the output.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import jax
import numpy as np


def padded_batches(fn: Callable[..., Any], arrays: Sequence[np.ndarray], batch: int) -> Any:
    """`fn(*chunks)` over chunks of `batch` rows of `arrays` (same leading length), concatenated.

    The output may be an array or any pytree of arrays with a leading row axis (e.g. a tuple of
    attributions and a dict of extras); it comes back as numpy with exactly `len(arrays[0])` rows.
    Results are fetched from the device once, after every chunk was dispatched.
    """
    n = len(arrays[0])
    if n == 0:
        return np.zeros((0,), np.float32)
    if batch < 1:
        raise ValueError(f"batch must be positive, got {batch}")
    outs = []
    for start in range(0, n, batch):
        chunk = [np.asarray(a[start:start + batch]) for a in arrays]
        m = len(chunk[0])
        if m < batch:
            chunk = [np.concatenate([c, np.repeat(c[-1:], batch - m, axis=0)]) for c in chunk]
        outs.append(fn(*chunk))
    outs = jax.device_get(outs)
    return jax.tree.map(lambda *parts: np.concatenate([np.asarray(p) for p in parts])[:n], *outs)
