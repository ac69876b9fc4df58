"""Per-group sufficient statistics, the group metrics computed from them, and a stratified bootstrap.

Every group metric here is a ratio of per-group sums of per-row statistics (counts of positives,
predicted positives, true positives, calibration-bin sums). A bootstrap replicate only changes
how often each row is counted, so all replicates come from one matrix product
`counts (B, n_g) @ stats (n_g, S)` per group: no Python loop over rows or replicates.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from scipy.stats import beta, rankdata

from jax.extend.random import threefry2x32_p

from audit import parallel
from audit.models._batching import padded_batches

# columns of the per-row statistics matrix
ONE, POS, SEL, TP, FP, CORRECT = range(6)
N_FIXED = 6

GROUP_METRICS = ("size", "base_rate", "selection_rate", "accuracy", "tpr", "fpr", "fnr",
                 "precision", "roc_auc", "calibration_error")


def row_stats(y_pos: np.ndarray, pred_pos: np.ndarray, correct: np.ndarray, score: np.ndarray,
              *, n_bins: int) -> np.ndarray:
    """(n, 6 + 3 * n_bins) float64: 1, y, yhat, y*yhat, (1-y)*yhat, correct, then per
    calibration bin (equal width on [0, 1]): in-bin, in-bin * score, in-bin * y."""
    y = y_pos.astype(np.float64)
    s = pred_pos.astype(np.float64)
    b = np.minimum((score * n_bins).astype(np.int64), n_bins - 1)
    onehot = np.zeros((len(y), n_bins))
    onehot[np.arange(len(y)), b] = 1.0
    return np.concatenate([np.stack([np.ones_like(y), y, s, y * s, (1 - y) * s,
                                     correct.astype(np.float64)], axis=1),
                           onehot, onehot * score[:, None], onehot * y[:, None]], axis=1)


def group_sums(stats: np.ndarray, codes: np.ndarray, n_groups: int) -> np.ndarray:
    """(n_groups, S) sums of the statistics per group."""
    out = np.empty((n_groups, stats.shape[1]))
    for j in range(stats.shape[1]):  # one bincount per statistic: in row order, like np.add.at, and far faster
        out[:, j] = np.bincount(codes, weights=stats[:, j], minlength=n_groups)
    return out


def weighted_group_sums(stats: np.ndarray, codes: np.ndarray, n_groups: int, weights: np.ndarray) -> np.ndarray:
    """(B, n_groups, S) group sums of the statistics with row weights `weights` (n, B), one replicate
    per column: the Poisson bootstrap's replicate sums. The statistics are sparse (six counts and
    three calibration-bin entries per row), so one sparse product does every group and replicate."""
    from scipy import sparse

    n, S = stats.shape
    rows, cols = np.nonzero(stats)
    placed = sparse.csr_matrix((stats[rows, cols], (rows, codes[rows] * S + cols)), shape=(n, n_groups * S))
    return np.ascontiguousarray((placed.T @ weights).reshape(n_groups, S, -1).transpose(2, 0, 1))


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)


def rates(sums: np.ndarray, n_bins: int) -> dict[str, np.ndarray]:
    """Group metrics from sums of shape (..., S); undefined ones (0 denominators) are NaN."""
    n, pos, sel, tp, fp = (sums[..., k] for k in (ONE, POS, SEL, TP, FP))
    neg = n - pos
    tpr = _ratio(tp, pos)
    binned = sums[..., N_FIXED:]
    in_bin, score_sum, y_sum = (binned[..., k * n_bins:(k + 1) * n_bins] for k in range(3))
    return {
        "size": n,
        "base_rate": _ratio(pos, n),
        "selection_rate": _ratio(sel, n),
        "accuracy": _ratio(sums[..., CORRECT], n),
        "tpr": tpr,
        "fpr": _ratio(fp, neg),
        "fnr": _ratio(pos - tp, pos),
        "precision": _ratio(tp, sel),
        "calibration_error": _ratio(np.abs(score_sum - y_sum).sum(-1), n),
    }


# rate metrics: name -> (numerator, denominator) as functions of the group sums
def fractions(sums: np.ndarray) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """(successes, trials) per group for every group metric that is a binomial proportion."""
    n, pos, sel, tp, fp = (sums[..., k] for k in (ONE, POS, SEL, TP, FP))
    return {"base_rate": (pos, n), "selection_rate": (sel, n), "accuracy": (sums[..., CORRECT], n),
            "tpr": (tp, pos), "fpr": (fp, n - pos), "fnr": (pos - tp, pos), "precision": (tp, sel)}


def exact_interval(k: np.ndarray, n: np.ndarray, *, confidence: float) -> tuple[np.ndarray, np.ndarray]:
    """Clopper-Pearson ("exact") interval for a proportion k/n, vectorised; NaN where n == 0.

    Unlike a bootstrap, it is as wide as a small group really is: one row gives about [0.025, 1]
    at 95%, not the zero-width interval that resampling a single row yields (Clopper & Pearson 1934).
    """
    k, n = np.asarray(k, np.float64), np.asarray(n, np.float64)
    alpha = (1.0 - confidence) / 2
    ok = n > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        low = np.where(k > 0, beta.ppf(alpha, k, n - k + 1), 0.0)
        high = np.where(k < n, beta.ppf(1 - alpha, k + 1, n - k), 1.0)
    return np.where(ok, low, np.nan), np.where(ok, high, np.nan)


def roc_auc(y_pos: np.ndarray, score: np.ndarray) -> float:
    """ROC-AUC by the rank (Mann-Whitney) formula, ties counted half; NaN for a single class."""
    pos = y_pos.astype(bool)
    n_pos, n_neg = int(pos.sum()), int((~pos).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = rankdata(score)
    return float((ranks[pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


SLOTS = 64  # group keys per compiled call: attributes with up to 64 groups (most) share one compile
REPLICATE_CHUNK = 256  # replicates per compiled call (at most)
BLOCK = 64  # draws per block: one key per block keeps the hash vectorised over the block


def _bits_at(words: jax.Array, index: jax.Array) -> jax.Array:
    """Elements `index` of `jax.random.bits(key, (L,))` (32 bits) for any L > index, computed
    alone; `words` is the key's data (2 uint32). Threefry is counter-based: with
    `jax_threefry_partitionable` element i hashes the counter (0, i) and XORs the two words."""
    hi, lo = threefry2x32_p.bind(words[0], words[1], jnp.zeros_like(index), index)
    return hi ^ lo


def randint_at(key: jax.Array, index: jax.Array, span: jax.Array) -> jax.Array:
    """Elements `index` (an array) of `jax.random.randint(key, (L,), 0, span)` (int32, span >= 1)
    for any L > max(index), computed alone."""
    halves = jax.random.key_data(jax.random.split(key))
    return _combine(_bits_at(halves[0], index), _bits_at(halves[1], index), span)


def _combine(hi: jax.Array, lo: jax.Array, span: jax.Array) -> jax.Array:
    """randint's rule (jax.random.randint): two 32-bit draws -> an integer in [0, span)."""
    span = span.astype(jnp.uint32)
    multiplier = jnp.uint32(1 << 16) % span
    multiplier = (multiplier * multiplier) % span  # 2**32 mod span
    return (((hi % span) * multiplier + lo % span) % span).astype(jnp.int32)


@jax.jit
def _replicate_sums(key: jax.Array, replicates: jax.Array, slots: jax.Array, group: jax.Array,
                    first: jax.Array, span: jax.Array, start: jax.Array, values: jax.Array) -> jax.Array:
    """(replicates, blocks, S): per block of the layout, the sums of `values` (blocks, BLOCK, S:
    the rows' statistics in a blocked layout) weighted by how often replicate r draws each row.

    Block b holds draws first[b] .. first[b] + BLOCK - 1 of group `group[b]` (`span[b]` rows,
    its first at row `start[b]` of the layout): elements of randint(fold_in(fold_in(key, g), r),
    (m,), 0, m), what one call per group and replicate draws; each block computes its own
    elements, so one compiled shape serves every group size and count (blocks padded to a
    power of two, groups up to len(slots)). Draws past a group's size are not counted."""
    group_keys = jax.vmap(lambda g: jax.random.fold_in(key, g))(slots)
    lane = jnp.arange(BLOCK, dtype=jnp.uint32)

    def block(halves, first, span, start):
        index = first + lane
        hi, lo = _bits_at(halves[0], index), _bits_at(halves[1], index)
        return start + _combine(hi, lo, span), (index < span).astype(jnp.float32)

    def one(r):
        split = jax.vmap(lambda k: jax.random.split(jax.random.fold_in(k, r)))(group_keys)  # randint's split
        halves = jax.random.key_data(split)[group]  # (blocks, 2, 2) words
        dest, live = jax.vmap(block)(halves, first, span, start)
        counts = jnp.zeros(dest.size, jnp.float32).at[dest.reshape(-1)].add(live.reshape(-1))
        return jnp.einsum("nb,nbs->ns", counts.reshape(values.shape[:2]), values)

    return jax.vmap(one)(replicates)


def bootstrap_sums(stats: np.ndarray, codes: np.ndarray, n_groups: int, *, n_bootstrap: int,
                   rng: np.random.Generator, max_cells: int = 4_000_000) -> np.ndarray:
    """(n_bootstrap, n_groups, S) group sums over replicates resampled within each group
    (group sizes fixed: a stratified bootstrap), in chunks of at most `max_cells` draws.

    Replicate r of group g draws its m_g rows with `randint(fold_in(fold_in(key, g), r), (m_g,),
    0, m_g)`. All groups and replicates are drawn in one compiled call (`_replicate_sums`) whose
    shape depends only on the row count and, past 8, the group count: attributes,
    classes and the mitigation's re-assessment share one compile. Replicates are independent
    rows, split over every device (`padded_batches`, `audit.parallel`), with the same draws on one
    device or many. Sums run in float32 within blocks of BLOCK rows (exact for counts) and in
    float64 across blocks."""
    out = np.zeros((n_bootstrap, n_groups, stats.shape[1]))
    sizes = np.bincount(codes, minlength=n_groups)
    if len(codes) == 0 or n_bootstrap == 0:
        return out
    key = jax.random.key(int(rng.integers(2 ** 31)))
    blocks = -(-sizes // BLOCK)
    # the most blocks n rows in G groups can need (n / BLOCK + G), rounded up to 8: one shape for
    # every attribute of up to 8 groups of a data set with a given row count, whatever the group sizes
    n_blocks = -(-(-(-len(codes) // BLOCK) + n_groups) // 8) * 8
    starts = np.concatenate([[0], np.cumsum(blocks)[:-1]]) * BLOCK  # group g's rows from layout row starts[g]
    group = np.zeros(n_blocks, np.int32)
    group[:blocks.sum()] = np.repeat(np.arange(n_groups), blocks)
    first = np.zeros(n_blocks, np.uint32)
    first[:blocks.sum()] = np.concatenate([np.arange(b) * BLOCK for b in blocks])
    span = np.ones(n_blocks, np.int32)  # padding blocks: span 1, and first >= span leaves them uncounted
    span[:blocks.sum()] = np.repeat(sizes, blocks)
    first[blocks.sum():] = 1
    start = np.zeros(n_blocks, np.int32)
    start[:blocks.sum()] = np.repeat(starts, blocks)
    slots = np.arange(max(SLOTS, 1 << max(0, n_groups - 1).bit_length()), dtype=np.uint32)
    size = n_blocks * BLOCK
    order = np.concatenate([np.flatnonzero(codes == g) for g in range(n_groups)])  # rows by group
    layout = np.concatenate([starts[g] + np.arange(sizes[g]) for g in range(n_groups)])
    values = np.zeros((size, stats.shape[1]), np.float32)
    values[layout] = stats[order]
    table = parallel.replicate((slots, group, first, span, start, values.reshape(n_blocks, BLOCK, -1)))
    of_group = np.zeros((n_groups, n_blocks))  # block -> its group (padding blocks: none)
    of_group[group[:blocks.sum()], np.arange(blocks.sum())] = 1.0
    # replicates per call: a power of two up to 256 (so 200 and 500 replicates share a shape), fewer
    # when rows are many (at most `max_cells` draws); a multiple of the device count
    fit = max(1, max_cells // size)
    chunk = parallel.round_up(min(REPLICATE_CHUNK, 1 << (n_bootstrap - 1).bit_length(), 1 << (fit.bit_length() - 1)))
    replicates = np.arange(n_bootstrap, dtype=np.uint32)
    for lo in range(0, n_bootstrap, chunk):  # a few chunks at most: bounds the memory
        part = padded_batches(lambda r: _replicate_sums(key, r, *table), [replicates[lo:lo + chunk]], chunk)
        out[lo:lo + len(part)] = np.einsum("rns,gn->rgs", part.astype(np.float64), of_group)
    return out
