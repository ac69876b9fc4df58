"""The device mesh: independent rows sharded over every device, on one host or many (jax.sharding).

An analyzer says only "these rows are independent": `chunks` (and `audit.models.padded_batches`,
the one loop every batched model call goes through) cuts them into fixed-size chunks, pads each to
a multiple of the device count and places it with a `NamedSharding` over the 1-D mesh of axis
"rows"; a jitted function then runs on every device at once (computation follows data: XLA
partitions it, params are replicated) and compiles once. `gather` brings the rows back as numpy.

With one device nothing is placed: chunks stay numpy, exactly as before. With several processes
(`jax.distributed`, see `audit.pipeline` `distributed:`), the mesh spans every process's devices:
every process runs the same program on the same rows, supplies only its own devices' shards, and
`gather` returns all rows to every process. Random draws inside jit do not depend on the sharding
(`jax_threefry_partitionable`), so the same chunk gives the same result on 1 or N devices.
"""

from __future__ import annotations

import functools
from typing import Any, Iterator, Sequence

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

AXIS = "rows"


def count() -> int:
    """Devices in the mesh: every device of every process."""
    return jax.device_count()


def processes() -> int:
    """Processes taking part (1 unless `jax.distributed` was initialised)."""
    return jax.process_count()


@functools.lru_cache(maxsize=4)
def _mesh(devices: tuple) -> Mesh:
    return Mesh(np.array(devices, dtype=object), (AXIS,))


def mesh() -> Mesh:
    """The 1-D mesh over `jax.devices()` (all processes), axis "rows"."""
    return _mesh(tuple(jax.devices()))


def rows() -> NamedSharding:
    """Rows split over the mesh, every other axis whole."""
    return NamedSharding(mesh(), PartitionSpec(AXIS))


def replicated() -> NamedSharding:
    """A full copy on every device (params, background rows, designs)."""
    return NamedSharding(mesh(), PartitionSpec())


def round_up(n: int) -> int:
    """`n` rounded up to a multiple of the device count (a chunk every device gets a part of)."""
    d = count()
    return -(-int(n) // d) * d


def pad_rows(a: np.ndarray, size: int) -> np.ndarray:
    """`a` with its last row repeated up to `size` rows (padded rows are cut after the call)."""
    m = len(a)
    return a if m >= size else np.concatenate([a, np.repeat(a[-1:], size - m, axis=0)])


def _is_key(a: Any) -> bool:
    return isinstance(a, jax.Array) and jax.dtypes.issubdtype(a.dtype, jax.dtypes.prng_key)


def _place(a: Any, sharding: NamedSharding) -> jax.Array:
    if processes() == 1:
        return jax.device_put(a, sharding)
    if _is_key(a):  # typed PRNG keys travel as their raw words
        return jax.random.wrap_key_data(_place(jax.random.key_data(a), sharding), impl=jax.random.key_impl(a))
    host = np.asarray(a)  # every process holds the same rows and supplies its own devices' shards
    return jax.make_array_from_callback(host.shape, sharding, lambda index: host[index])


def shard_rows(a: Any) -> Any:
    """`a` (rows a multiple of `count()`) split by rows over the mesh; unchanged on one device."""
    return a if count() == 1 else _place(a, rows())


def replicate(tree: Any) -> Any:
    """Every leaf of `tree` copied to every device of the mesh; unchanged on one device."""
    return tree if count() == 1 else jax.tree.map(lambda a: _place(a, replicated()), tree)


def gather(tree: Any) -> Any:
    """Every leaf as numpy with all its rows, on every process."""
    if processes() > 1:
        from jax.experimental import multihost_utils

        return jax.tree.map(np.asarray, multihost_utils.process_allgather(tree, tiled=True))
    return jax.tree.map(np.asarray, jax.device_get(tree))


def local(tree: Any) -> Any:
    """`tree` (e.g. trained params replicated over the mesh) as ordinary arrays of this process's
    default device, so a model built from it behaves as any other; unchanged on one device."""
    if count() == 1:
        return tree

    def one(a):
        if _is_key(a):
            return jax.random.wrap_key_data(one(jax.random.key_data(a)), impl=jax.random.key_impl(a))
        if isinstance(a, jax.Array) and not a.is_fully_addressable:
            a = a.addressable_shards[0].data if a.is_fully_replicated else gather(a)
        return jax.device_put(np.asarray(a))  # uncommitted: free to move where a later call runs

    return jax.tree.map(one, tree)


def chunks(arrays: Sequence[np.ndarray], batch: int) -> Iterator[tuple[int, int, list]]:
    """(start, rows used, placed chunk) for consecutive chunks of `batch` rows of `arrays` (same
    leading length): each chunk padded to `round_up(batch)` rows and split over the mesh, so a
    jitted function of it sees one shape (one compile) and runs on every device."""
    if batch < 1:
        raise ValueError(f"batch must be positive, got {batch}")
    n, size = len(arrays[0]), round_up(batch)
    for start in range(0, n, batch):
        part = [pad_rows(np.asarray(a[start:start + batch]), size) for a in arrays]
        yield start, min(batch, n - start), [shard_rows(p) for p in part]
