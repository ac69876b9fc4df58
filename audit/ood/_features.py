"""Penultimate-layer features of any model, found in its jaxpr: the input of the last dense layer.

Mahalanobis and kNN detectors work on the representation the classifier's head reads, not on
logits. The zoo, Linen and NNX models all end in a dense layer (`dot_general` with the weights);
its activation operand is the feature vector. Models that do not end that way fall back to their
logits, and the report says so. A user's model may name its own feature function instead: a
factory section's `features:` (a method of the module or `package.module:function`), or a callable
passed from Python.
"""

from __future__ import annotations

import functools

from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax.extend import core as jcore

from audit.errors import AuditInputError
from audit.models._batching import padded_batches
from audit.models._factory import feature_apply
from audit.models._xla import jit as xla_jit

CHOICES = ("auto", "penultimate", "logits")  # besides a callable or the model's own `features:`


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


def _batched(fn: Callable, model, batch_size: int) -> Callable[[np.ndarray], np.ndarray]:
    """x -> fn(params, x) flattened to (n, d) float32 numpy, in fixed-size padded batches (compiles once)."""

    @functools.partial(xla_jit, kind="forward")
    def batch(params, x):
        f = fn(params, x)
        return f.reshape(f.shape[0], -1).astype(jnp.float32)

    def features(x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, np.float32)
        if len(x) == 0:
            return np.asarray(batch(model.params, np.zeros((1, *model.input_shape), np.float32)))[:0]
        return padded_batches(lambda xb: batch(model.params, xb), [x], min(batch_size, len(x)))

    return features


def jax_features(model, features: str | None = None) -> tuple[Callable, str]:
    """(`(params, x) -> features`, traceable and differentiable; where they come from).

    `features`: None (the model's own `features:` if its factory names one, else "auto"), "auto" /
    "penultimate" (the input of the last dense layer, found in the jaxpr; logits when there is
    none) or "logits". The source is "penultimate", "logits" or "model:<name>".
    """
    if features is not None and features not in CHOICES:
        raise AuditInputError(f"ood features {features!r} is not known; use one of {list(CHOICES)}, a callable from "
                              "Python, or name the model's feature method in its config (model.features).")
    if features is None and (named := feature_apply(model)) is not None:
        return named, f"model:{model.architecture['features']}"
    if features == "logits":
        return model.apply, "logits"
    probe = jnp.zeros((1, *model.input_shape), jnp.float32)
    _, found = _truncated(model.apply, model.params, probe)
    return (lambda p, x: _truncated(model.apply, p, x)[0]), ("penultimate" if found else "logits")


def feature_function(model, *, features: str | Callable | None = None,
                     batch_size: int = 1024) -> tuple[Callable[[np.ndarray], np.ndarray], str]:
    """(x -> features as float32 numpy of shape (n, d), where they come from).

    `features` as in `jax_features`, or a callable `x -> features` on a numpy batch (source
    "callable").
    """
    if callable(features):
        def user(x: np.ndarray) -> np.ndarray:
            out = np.asarray(features(np.asarray(x, np.float32)), np.float32)
            if out.ndim < 1 or len(out) != len(x):
                raise AuditInputError(f"the feature function returned shape {out.shape} for {len(x)} rows; it must "
                                      "return one feature vector per row.")
            return out.reshape(len(x), -1)
        return user, "callable"
    fn, source = jax_features(model, features)
    return _batched(fn, model, batch_size), source
