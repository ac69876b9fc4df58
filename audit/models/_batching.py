"""Fixed-size padded batches: the one loop every batched model call goes through.

Calling a jitted function on chunks of one fixed size (the last chunk padded by repeating its
last row) compiles it once for any number of rows; the padded rows are cut from the output.
With several devices each chunk is padded to a multiple of the device count and split over
them by rows (`audit.parallel`), so every batched call runs on all devices.
"""

from __future__ import annotations

from typing import Any, Callable, Iterator, Sequence

import jax
import numpy as np

from audit import parallel


def padded_batches(fn: Callable[..., Any], arrays: Sequence[np.ndarray], batch: int) -> Any:
    """`fn(*chunks)` over chunks of `batch` rows of `arrays` (same leading length), concatenated.

    The rows must be independent (row i of the output depends only on row i of the inputs).
    `fn` gets numpy chunks on one device and row-sharded `jax.Array`s on several; with several
    processes each runs its share of the chunks and every process gets every row back. The output may
    be an array or any pytree of arrays with a leading row axis (e.g. a tuple of attributions
    and a dict of extras); it comes back as numpy with exactly `len(arrays[0])` rows. Results
    are fetched from the devices once, after every chunk was dispatched.
    """
    n = len(arrays[0])
    if n == 0:
        return np.zeros((0,), np.float32)
    outs = parallel.map_chunks(fn, arrays, batch)
    cut = [jax.tree.map(lambda a, m=min(batch, n - k * batch): a[:m], o) for k, o in enumerate(outs)]
    return jax.tree.map(lambda *parts: np.concatenate(parts), *cut)


def step_blocks(order: np.ndarray, row_bytes: int, *, steps: int = 32,
                max_bytes: int = 64 << 20) -> Iterator[tuple[int, int, np.ndarray]]:
    """(first step, steps used, row indices) per block of the training steps `order` (steps, batch):
    at most `steps` steps and `max_bytes` of batches per block, every block of one length (a
    compiled loop over them compiles once for any data size), the last padded by repeating its
    last step, which the loop does not run (it runs only the steps used)."""
    n, batch = order.shape
    block = max(1, min(steps, max_bytes // max(1, batch * row_bytes)))
    for lo in range(0, n, block):
        count = min(block, n - lo)
        yield lo, count, parallel.pad_rows(order[lo:lo + count], block)
