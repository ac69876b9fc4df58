"""Players of a Shapley game: which model inputs move together, and the masked value function.

A player is a set of flat input indices: one raw tabular column (its one-hot block is one
player), a single input, or a square image patch over all channels. A coalition keeps its
players' inputs from the explained example and takes the others from a background row, so
the value of a coalition S is the interventional expectation E_b[f(x_S, b_not S)]
(Janzing, Minorics & Bloebaum 2020, "Feature relevance quantification in explainable AI").
"""

from __future__ import annotations

import collections
import dataclasses
import functools
import math
from typing import Any, Callable, Iterator

import jax
import jax.numpy as jnp
import numpy as np

from audit import parallel
from audit.errors import AuditInputError
from audit.results import Result
from audit.models._xla import jit as xla_jit

PLAYER_KINDS = ("raw", "inputs", "patches")
OUTPUTS = ("probability", "logit")
CHUNK_ROWS = 8192  # rows per model call: cache-sized chunks (see bench/explain.py)
# Where players often coincide in x and a background row (categorical columns), coalitions share
# masked rows: `_distinct` evaluates each distinct row once when that needs at most this share of
# the model calls, for games of at most DISTINCT_MAX_PAIRS (coalition, background row) pairs.
DISTINCT_SHARE = 0.6
DISTINCT_MAX_PAIRS = 1 << 20


@dataclasses.dataclass(frozen=True)  # eq and hash of its own (tuples only): Players keys caches
class Players(Result):
    """`groups[j]` lists the flat input indices of player j; `names[j]` names it."""

    kind: str
    names: tuple[str, ...]
    groups: tuple[tuple[int, ...], ...]
    input_shape: tuple[int, ...]

    @property
    def n(self) -> int:
        return len(self.groups)

    @property
    def n_inputs(self) -> int:
        return int(np.prod(self.input_shape))

    def matrix(self) -> np.ndarray:
        """(players, flat inputs) 0/1 membership matrix."""
        g = np.zeros((self.n, self.n_inputs), np.float32)
        for j, idx in enumerate(self.groups):
            g[j, list(idx)] = 1.0
        return g

    def owner(self) -> np.ndarray:
        """Player index of every flat input (-1 for inputs no player owns)."""
        out = np.full(self.n_inputs, -1, np.int64)
        for j, idx in enumerate(self.groups):
            out[list(idx)] = j
        return out


def default_patch(input_shape: tuple[int, ...]) -> int:
    """The smallest square patch giving at most 16 patches (a 4x4 grid on square images)."""
    h, w = input_shape[0], input_shape[1]
    return max(math.ceil(h / 4), math.ceil(w / 4))


def resolve(model, data, players: str | None, patch: int | None, method: str) -> Players:
    """Pick the players: one per raw column for tabular data with an encoding; inputs for other
    tabular models; square patches for images (single pixels with the gradient method)."""
    shape = tuple(model.input_shape)
    image = len(shape) == 3 or (data is not None and data.kind == "image")
    if players is None:
        if image:
            players = "inputs" if method == "gradient" else "patches"
        else:
            players = "raw" if data is not None and data.encoding is not None else "inputs"
    if players not in PLAYER_KINDS:
        raise AuditInputError(f"players={players!r}; choose one of {list(PLAYER_KINDS)} or None.")
    if data is not None and tuple(data.input_shape) != shape:
        raise AuditInputError(f"data {data.name!r} has inputs of shape {tuple(data.input_shape)}, but "
                              f"the model takes {shape}; pass the Dataset the model was trained on.")
    if players == "raw":
        if data is None or data.encoding is None:
            raise AuditInputError("players='raw' needs data=<the tabular Dataset> with an encoding "
                                  "(it says which inputs belong to which raw column); pass data= or "
                                  "use players='inputs'.")
        return Players("raw", tuple(data.raw_feature_names), tuple(data.feature_groups), shape)
    if players == "patches":
        if len(shape) != 3:
            raise AuditInputError(f"players='patches' needs image inputs (height, width, channels); "
                                  f"this model takes {shape}. Use players='raw' or 'inputs'.")
        h, w, c = shape
        size = default_patch(shape) if patch is None else int(patch)
        if size < 1 or size > max(h, w):
            raise AuditInputError(f"patch={patch} must be between 1 and {max(h, w)} pixels.")
        flat = np.arange(h * w * c).reshape(h, w, c)
        groups, names = [], []
        for r in range(0, h, size):
            for q in range(0, w, size):
                groups.append(tuple(int(i) for i in flat[r:r + size, q:q + size].ravel()))
                names.append(f"patch[{r}:{min(r + size, h)},{q}:{min(q + size, w)}]")
        return Players("patches", tuple(names), tuple(groups), shape)
    n = int(np.prod(shape))
    if data is not None and data.kind == "tabular" and len(data.feature_names) == n:
        names = tuple(data.feature_names)
    elif len(shape) == 3:
        h, w, c = shape
        names = tuple(f"pixel[{i // (w * c)},{i // c % w},{i % c}]" for i in range(n))
    else:
        names = tuple(f"x{i}" for i in range(n))
    return Players("inputs", names, tuple((i,) for i in range(n)), shape)


def player_data(players: Players, x: np.ndarray, data) -> tuple[np.ndarray, np.ndarray | None]:
    """What each player "is" for each example: raw column values (categoricals as codes, with
    category names as display data), single input values, or the mean value of a patch."""
    flat = x.reshape(len(x), -1).astype(np.float64)
    if players.kind == "inputs":
        return flat, None
    if players.kind == "patches":
        return np.stack([flat[:, list(g)].mean(axis=1) for g in players.groups], axis=1), None
    values = data.encoding.decode(flat)  # the encoding's inverse, at each column's precision
    return values, data.encoding.display(values)


def output_fn(apply: Callable, output: str) -> Callable[[Any, jax.Array], jax.Array]:
    """params, x -> the explained outputs for all classes (softmax probabilities or logits)."""
    if output == "probability":
        return lambda p, x: jax.nn.softmax(apply(p, x).astype(jnp.float32), axis=-1)
    return lambda p, x: apply(p, x).astype(jnp.float32)


def chunk_values(out_fn: Callable, input_shape: tuple[int, ...], params, x, cls, background, owner,
                 coalitions):
    """One example, a chunk of coalitions, all background rows -> the mean explained output
    per coalition (for class `cls`). Traced inside jit."""
    masks = coalitions[:, owner]  # (chunk, inputs): player membership -> input membership
    rows = jnp.where(masks[:, None, :], x[None, None, :], background[None, :, :])
    c, b, _ = rows.shape
    out = out_fn(params, rows.reshape((c * b, *input_shape)))
    return out[:, cls].reshape(c, b).mean(axis=1)


@functools.lru_cache(maxsize=32)
def _example_values(apply: Callable, output: str, input_shape: tuple[int, ...], treedef) -> Callable:
    """Jitted: one example, all coalition chunks (a loop inside jit) -> values per coalition.
    Params come in as a flat tuple of leaves: flattening a parameter tree (e.g. an NNX State)
    on every call costs more host time than a small model's chunk takes to evaluate."""
    out_fn = output_fn(apply, output)

    def example(x, cls, leaves, background, owner, chunks):
        params = jax.tree_util.tree_unflatten(treedef, leaves)
        per_chunk = functools.partial(chunk_values, out_fn, input_shape, params, x, cls, background, owner)
        return jax.lax.map(per_chunk, chunks).reshape(-1)

    return xla_jit(jax.vmap(example, in_axes=(0, 0, None, None, None, None)), kind="forward")  # a block of examples


def _chunked(designs: np.ndarray, n_background: int, chunk_rows: int) -> np.ndarray:
    """(..., m, players) -> (..., chunks, per, players), zero-padded: about `chunk_rows` model rows
    per chunk (per coalitions x all background rows), as few and as even chunks as possible."""
    m = designs.shape[-2]
    per = max(1, min(m, chunk_rows // n_background))
    per = -(-m // -(-m // per))  # same number of chunks, as even as possible: least padding
    pad = [(0, 0)] * designs.ndim
    pad[-2] = (0, -(-m // per) * per - m)
    return np.pad(designs, pad).reshape(*designs.shape[:-2], -1, per, designs.shape[-1])


def _per_example(fn: Callable, x: np.ndarray, cls: np.ndarray, shared: tuple) -> Iterator[jax.Array]:
    """fn(x[i], cls[i], *shared) for every example, yielded in order: examples go in blocks of one
    per device, split over the mesh (`audit.parallel`), dispatched asynchronously (results still
    on device); `fn` is vmapped over a block. One example per device keeps memory what one example
    needs. With several processes the blocks are shared out and every process gets every result."""
    placed = parallel.replicate(shared)
    xs, cs = np.asarray(x, np.float32), np.asarray(cls, np.int32)
    if parallel.processes() > 1:
        blocks = parallel.map_chunks(lambda xb, cb: fn(xb, cb, *placed), [xs, cs], parallel.count())
        yield from np.concatenate(blocks)[:len(xs)]
        return
    for _, _, m, (xb, cb) in parallel.chunks([xs, cs], parallel.count()):
        out = fn(xb, cb, *placed)
        yield from (out[i] for i in range(m))


def coalition_values(model, x: np.ndarray, cls: np.ndarray, background: np.ndarray,
                     coalitions: np.ndarray, owner: np.ndarray, *, output: str,
                     chunk_rows: int = CHUNK_ROWS) -> np.ndarray:
    """v[i, k] = mean over background rows b of f_cls[i](x[i] where coalition k holds, else b).

    `x` (n, d) and `background` (B, d) are flat; `coalitions` (m, players) boolean; `owner[t]`
    is the player of input t. The model sees chunks of about `chunk_rows` rows (cache-sized);
    the loop over chunks runs inside jit, one asynchronous call per example, every call the
    same shape (it compiles once per coalition set). Memory stays bounded whatever n and m are.
    Loop placement and chunk size were chosen by measurement (bench/explain.py). With several
    devices, blocks of one example per device run on all of them at once (`audit.parallel`).
    Where players often equal their background values, only the distinct masked rows are
    evaluated (`audit.explain._distinct`: the same rows, fewer model calls).
    """
    n, m = len(x), len(coalitions)
    if n and m * len(background) <= DISTINCT_MAX_PAIRS:
        from audit.explain._distinct import distinct_coalition_values, distinct_rows

        if distinct_rows(x, background, owner, coalitions.shape[1]) <= DISTINCT_SHARE * n * m * len(background):
            return distinct_coalition_values(model, x, cls, background, coalitions, owner, output=output,
                                             chunk_rows=chunk_rows, output_fn=output_fn)
    leaves, treedef = jax.tree_util.tree_flatten(model.params)
    fn = _example_values(model.apply, output, tuple(model.input_shape), treedef)
    shared = (tuple(leaves), np.asarray(background, np.float32), np.asarray(owner, np.int32),
              _chunked(coalitions, len(background), chunk_rows))
    out = list(_per_example(fn, x, cls, shared))
    if not out:
        return np.zeros((n, m))
    return np.stack([np.asarray(o, np.float64) for o in out])[:, :m]


def chunk_baseline_values(out_fn: Callable, input_shape: tuple[int, ...], params, x, cls, background,
                          design_of, owner, chunk):
    """One example, the same chunk of rows of every design, background row b with design
    `design_of[b]` -> outputs (background rows, chunk). Traced inside jit."""
    masks = chunk[design_of][:, :, owner]  # (B, c, inputs): player membership -> input membership
    rows = jnp.where(masks, x[None, None, :], background[:, None, :])
    b, c, _ = rows.shape
    return out_fn(params, rows.reshape((b * c, *input_shape)))[:, cls].reshape(b, c)


@functools.lru_cache(maxsize=32)
def _example_baseline_values(apply: Callable, output: str, input_shape: tuple[int, ...], treedef) -> Callable:
    """Jitted: one example, all design chunks (a loop inside jit) -> (rows of a design, B)."""
    out_fn = output_fn(apply, output)

    def example(x, cls, leaves, background, design_of, owner, chunks):
        params = jax.tree_util.tree_unflatten(treedef, leaves)
        per_chunk = functools.partial(chunk_baseline_values, out_fn, input_shape, params, x, cls,
                                      background, design_of, owner)
        out = jax.lax.map(per_chunk, chunks)  # (chunks, B, c)
        return out.transpose(0, 2, 1).reshape(-1, background.shape[0])

    return xla_jit(jax.vmap(example, in_axes=(0, 0, None, None, None, None, None)), kind="forward")  # a block of examples


def baseline_values(model, x: np.ndarray, cls: np.ndarray, background: np.ndarray, designs: np.ndarray,
                    design_of: np.ndarray, owner: np.ndarray, *, output: str,
                    chunk_rows: int = CHUNK_ROWS, window: int = 8) -> Iterator[np.ndarray]:
    """Per example i, yields u[k, b] = f_cls[i](x[i] where coalition k of background row b's
    design holds, else background row b), shape (m, B), float64.

    `designs` (K, m, players) boolean; background row b uses design `design_of[b]`. Chunks of
    about `chunk_rows` rows (a slice of every design, all background rows) run in a loop inside
    jit, one asynchronous call per example; at most `window` examples' outputs wait on the
    host, so memory stays bounded whatever n is.
    """
    m = designs.shape[1]
    leaves, treedef = jax.tree_util.tree_flatten(model.params)
    fn = _example_baseline_values(model.apply, output, tuple(model.input_shape), treedef)
    chunks = _chunked(designs, len(background), chunk_rows).transpose(1, 0, 2, 3)  # (chunks, K, per, P)
    shared = (tuple(leaves), np.asarray(background, np.float32), np.asarray(design_of, np.int32),
              np.asarray(owner, np.int32), chunks)
    pending: collections.deque = collections.deque()
    for result in _per_example(fn, x, cls, shared):
        pending.append(result)
        if len(pending) > window:
            yield np.asarray(pending.popleft(), np.float64)[:m]
    while pending:
        yield np.asarray(pending.popleft(), np.float64)[:m]
