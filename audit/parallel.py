"""The device mesh: independent rows split over every device, on one host or many (jax.sharding).

An analyzer says only "these rows are independent": `map_chunks` (and `audit.models.padded_batches`,
the one loop every batched model call goes through) cuts them into fixed-size chunks (the last one
padded) and places each with a `NamedSharding` over a 1-D mesh of axis "rows"; a jitted function
then runs on every device at once (computation follows data: XLA partitions it, params are
replicated) and compiles once. A chunk keeps its size whatever the device count, so the function
sees the shapes, and draws the random numbers, it sees on one device: chunks are split over the
most local devices that divide the chunk size (all of them for the usual sizes 64, 256, 512...;
`round_up` gives a size every device gets a share of).

With one device nothing is placed: chunks stay numpy, exactly as before. With several processes
(`initialize`, `jax.distributed`), chunk k runs on process k mod P, on that process's devices, and
the results are exchanged so every process holds every row (one all-gather per call); analyzers
keep working on ordinary, process-local arrays. Random draws inside jit do not depend on the
sharding (`jax_threefry_partitionable`), and a chunk holds the same rows on 1 or N devices or
processes, so results are the same (to float rounding where XLA sums in another order).
"""

from __future__ import annotations

import functools
from typing import Any, Callable, Iterator, Sequence

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

AXIS = "rows"


def initialize(*, coordinator_address: str | None = None, num_processes: int | None = None,
               process_id: int | None = None) -> int:
    """Join a many-process run (`jax.distributed.initialize`) before any JAX computation: with
    all three arguments, or with none where a cluster launcher (SLURM, Open MPI) or the
    JAX_COORDINATOR_ADDRESS / JAX_NUM_PROCESSES / JAX_PROCESS_ID variables say them. CPU processes
    talk through gloo. A second call does nothing. Returns this process's index (0 writes the
    report)."""
    import os

    if not _joined:
        coordinator_address = coordinator_address or os.environ.get("JAX_COORDINATOR_ADDRESS")
        num_processes = num_processes if num_processes is not None else _env_int("JAX_NUM_PROCESSES")
        process_id = process_id if process_id is not None else _env_int("JAX_PROCESS_ID")
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
        jax.distributed.initialize(coordinator_address=coordinator_address, num_processes=num_processes,
                                   process_id=process_id)
        _joined.append(True)
    return jax.process_index()


_joined: list = []


def _env_int(name: str) -> int | None:
    import os

    value = os.environ.get(name)
    return int(value) if value not in (None, "") else None


def process_index() -> int:
    """This process's index; only process 0 writes reports, checkpoints and progress."""
    return jax.process_index()


def count() -> int:
    """Devices in this process's mesh (its local devices)."""
    return jax.local_device_count()


def processes() -> int:
    """Processes taking part (1 unless `initialize` joined a many-process run)."""
    return jax.process_count()


@functools.lru_cache(maxsize=16)
def _mesh(devices: tuple) -> Mesh:
    return Mesh(np.array(devices, dtype=object), (AXIS,))


def mesh(size: int | None = None) -> Mesh:
    """The 1-D mesh over this process's devices (the first `size` of them), axis "rows"."""
    return _mesh(tuple(jax.local_devices()[:size]))


def rows(size: int | None = None) -> NamedSharding:
    """Rows split over the mesh (of `size` devices), every other axis whole."""
    return NamedSharding(mesh(size), PartitionSpec(AXIS))


def devices_for(batch: int) -> int:
    """The most local devices that split `batch` rows evenly (all of them when `batch` is a
    multiple of the device count)."""
    return max(d for d in range(1, count() + 1) if batch % d == 0)


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


def shard_rows(a: Any) -> Any:
    """`a` split by rows over the most devices that divide its rows; unchanged on one device."""
    d = devices_for(len(a)) if count() > 1 else 1
    return a if d == 1 else jax.device_put(a, rows(d))


def replicate(tree: Any) -> Any:
    """Every leaf of `tree` copied to every device of the mesh; unchanged on one device."""
    return tree if count() == 1 else jax.device_put(tree, replicated())


def gather(tree: Any) -> Any:
    """Every leaf as numpy (fetched from the devices)."""
    return jax.tree.map(np.asarray, jax.device_get(tree))


def local(tree: Any) -> Any:
    """`tree` (e.g. trained params replicated over the mesh) as ordinary arrays of the default
    device, so a model built from it behaves as any other; unchanged on one device."""
    if count() == 1:
        return tree

    def one(a):
        if isinstance(a, jax.Array) and jax.dtypes.issubdtype(a.dtype, jax.dtypes.prng_key):
            return jax.random.wrap_key_data(one(jax.random.key_data(a)), impl=jax.random.key_impl(a))
        return jax.device_put(np.asarray(jax.device_get(a)))  # uncommitted: free to move to any device

    return jax.tree.map(one, tree)


def chunks(arrays: Sequence[np.ndarray], batch: int) -> Iterator[tuple[int, int, int, list]]:
    """(chunk index, start, rows used, placed chunk) for the chunks of `batch` rows of `arrays`
    (same leading length) that this process runs (all of them with one process): the last padded
    to `batch` rows, each split over `devices_for(batch)` devices, so a jitted function of it sees
    one shape (one compile) and runs on all of them."""
    if batch < 1:
        raise ValueError(f"batch must be positive, got {batch}")
    n, size = len(arrays[0]), batch
    every, me = processes(), process_index()
    for k, start in enumerate(range(0, n, batch)):
        if k % every == me or (k == 0 and n <= batch * me):  # a process with no chunk of its own runs
            # chunk 0 too, so that every process has an output of the right shape to exchange
            part = [pad_rows(np.asarray(a[start:start + batch]), size) for a in arrays]
            yield k, start, min(batch, n - start), [shard_rows(p) for p in part]


def map_chunks(fn: Callable[..., Any], arrays: Sequence[np.ndarray], batch: int) -> list:
    """`fn(*chunk)` for every chunk of `chunks(arrays, batch)`, as numpy pytrees in chunk order
    (padded rows included), on every process. Chunks are dispatched before any is fetched."""
    n_chunks = -(-len(arrays[0]) // batch) if batch >= 1 else 0
    own = [(k, fn(*chunk)) for k, _, _, chunk in chunks(arrays, batch)]
    own = list(zip([k for k, _ in own], gather([out for _, out in own])))
    if processes() == 1:
        return [out for _, out in own]
    return _exchange(own, n_chunks)


def _exchange(own: list, n_chunks: int) -> list:
    """Every process's chunk outputs to every process: one all-gather of equal-sized stacks."""
    from jax.experimental import multihost_utils

    every = processes()
    per = -(-n_chunks // every)
    mine = [out for k, out in own if k % every == process_index()] or [own[0][1]]
    mine += [mine[0]] * (per - len(mine))  # equal stacks everywhere; the fillers are never read
    stacked = jax.tree.map(lambda *parts: np.stack(parts), *mine)
    everyone = multihost_utils.process_allgather(stacked)  # (processes, per, ...)
    return [jax.tree.map(lambda a, k=k: np.asarray(a[k % every, k // every]), everyone) for k in range(n_chunks)]
