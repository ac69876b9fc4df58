"""backend="shap": the shap library's own explainers run on the jitted, batched JAX model.

Exact (shap.ExactExplainer with an Independent masker over the whole background), Kernel
(shap.KernelExplainer with l1_reg=False: shap 0.51's default "num_features(10)" silently zeroes
all but ten attributions) and Permutation (shap.PermutationExplainer). Grouped players (a
one-hot block, an image patch) reach shap as one column each: every column holds the index of
the row its inputs come from, and the model wrapper gathers the inputs back, so shap's
maskers swap whole players between the example and a background row.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from audit.explain._players import CHUNK_ROWS, Players, output_fn
from audit.models._xla import jit as xla_jit

METHODS = ("exact", "kernel", "permutation")


@functools.lru_cache(maxsize=16)
def _jitted(apply, output: str, input_shape: tuple[int, ...], treedef):
    out_fn = output_fn(apply, output)
    return xla_jit(lambda leaves, x: out_fn(jax.tree_util.tree_unflatten(treedef, leaves),
                                            x.reshape((len(x), *input_shape))), kind="forward")


def _outputs(model, output: str):
    """rows -> outputs for all classes (float64), for shap's explainers: one jitted function on
    flat params, rows padded to power-of-two buckets up to CHUNK_ROWS (a few compiles, no
    per-call parameter flattening), so the comparison with shap times shap, not the wrapper."""
    leaves, treedef = jax.tree_util.tree_flatten(model.params)
    leaves = tuple(leaves)
    fn = _jitted(model.apply, output, tuple(model.input_shape), treedef)

    def f(rows: np.ndarray) -> np.ndarray:
        rows = np.asarray(rows, np.float32).reshape(len(rows), -1)
        outs = []
        for start in range(0, len(rows), CHUNK_ROWS):
            part = rows[start:start + CHUNK_ROWS]
            size = max(64, 1 << (len(part) - 1).bit_length())
            padded = np.zeros((size, rows.shape[1]), np.float32)
            padded[:len(part)] = part
            outs.append(fn(leaves, padded)[:len(part)])
        return np.asarray(jnp.concatenate(outs), np.float64)

    return f


def shap_library(model, x: np.ndarray, cls: np.ndarray, background: np.ndarray, players: Players, *,
                 method: str, n_samples: int | None, seed: int,
                 output: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Values (n, P), base values (n,) and outputs f(x) (n,) from shap's explainer `method`."""
    import shap

    n, p = len(x), players.n
    out = _outputs(model, output)
    if players.kind == "inputs":
        data, base_rows, f = x.astype(np.float64), background.astype(np.float64), out
    else:  # one column per player holding a row index into `table`
        table = np.concatenate([x, background]).astype(np.float32)
        owner, cols = players.owner(), np.arange(x.shape[1])
        data = np.repeat(np.arange(n, dtype=np.float64)[:, None], p, axis=1)
        base_rows = np.repeat(np.arange(n, n + len(background), dtype=np.float64)[:, None], p, axis=1)

        def f(ids: np.ndarray) -> np.ndarray:
            return out(table[np.rint(ids).astype(np.int64)[:, owner], cols])

    pick = np.arange(n)
    if method == "kernel":
        explainer = shap.KernelExplainer(f, base_rows)
        state = np.random.get_state()  # KernelExplainer draws from numpy's global generator
        np.random.seed(seed)
        try:
            values = np.asarray(explainer.shap_values(data, nsamples=n_samples or "auto",
                                                      l1_reg=False, silent=True))
        finally:
            np.random.set_state(state)
        base = np.broadcast_to(np.asarray(explainer.expected_value, np.float64), (n, values.shape[-1]))
    else:
        masker = shap.maskers.Independent(base_rows, max_samples=len(base_rows))
        if method == "exact":
            explanation = shap.ExactExplainer(f, masker)(data, max_evals=2 ** p + 1, silent=True)
        else:
            explanation = shap.PermutationExplainer(f, masker, seed=seed)(
                data, max_evals=n_samples or 500, silent=True)
        values, base = np.asarray(explanation.values), np.asarray(explanation.base_values)
    fx = out(x)[pick, cls]
    return values[pick, :, cls], base[pick, cls], fx
