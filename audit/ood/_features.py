"""Penultimate-layer features of any model, found in its jaxpr: the input of the last dense layer.

Mahalanobis and kNN detectors work on the representation the classifier's head reads, not on
logits. The zoo, Linen and NNX models all end in a dense layer (`dot_general` with the weights);
its activation operand is the feature vector. Models that do not end that way fall back to their
logits, and the report says so.
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax.extend import core as jcore

from audit.models._batching import padded_batches


def _last_dense_input(jaxpr, input_var) -> tuple[int, int] | None:
    """(equation index, operand index) of the last dot_general's operand that depends on the input."""
    depends = {input_var}
    found = None
    for i, eqn in enumerate(jaxpr.eqns):
        touched = [k for k, v in enumerate(eqn.invars) if not isinstance(v, jcore.Literal) and v in depends]
        if touched:
            depends.update(eqn.outvars)
            if eqn.primitive.name == "dot_general" and len(touched) == 1:
                found = (i, touched[0])
    return found


def _truncated(apply: Callable, params: Any, x: jax.Array) -> tuple[jax.Array, bool]:
    closed = jax.make_jaxpr(apply)(params, x)
    jaxpr = closed.jaxpr
    input_var = jaxpr.invars[-1]
    where = _last_dense_input(jaxpr, input_var)
    if where is None:
        return apply(params, x), False
    stop, operand = where
    env: dict[Any, Any] = {}

    def read(v):
        return v.val if isinstance(v, jcore.Literal) else env[v]

    leaves = jax.tree_util.tree_leaves(params)
    for var, value in zip(jaxpr.constvars, closed.consts):
        env[var] = value
    for var, value in zip(jaxpr.invars, [*leaves, x]):
        env[var] = value
    for eqn in jaxpr.eqns[:stop]:
        out = eqn.primitive.bind(*map(read, eqn.invars), **eqn.primitive.get_bind_params(eqn.params))
        for var, value in zip(eqn.outvars, out if eqn.primitive.multiple_results else [out]):
            env[var] = value
    return read(jaxpr.eqns[stop].invars[operand]), True


def feature_function(model, *, batch_size: int = 1024) -> tuple[Callable[[np.ndarray], np.ndarray], str]:
    """(x -> features as float32 numpy, "penultimate" or "logits"): batched, padded, compiled once."""
    probe = jnp.zeros((1, *model.input_shape), jnp.float32)
    _, found = _truncated(model.apply, model.params, probe)
    source = "penultimate" if found else "logits"

    @jax.jit
    def batch(params, x):
        f, _ = _truncated(model.apply, params, x)
        return f.reshape(f.shape[0], -1).astype(jnp.float32)

    def features(x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, np.float32)
        if len(x) == 0:
            return np.asarray(batch(model.params, probe))[:0]
        return padded_batches(lambda xb: batch(model.params, xb), [x], min(batch_size, len(x)))

    return features, source
