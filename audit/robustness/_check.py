"""Validation at the edge of the attack functions (skipped under tracing: shapes only there)."""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

from audit.errors import AuditInputError
from audit.robustness._core import LOSSES, is_tracing
from audit.robustness._domain import Domain, NORMS, broadcast_eps, check_domain, check_eps, full_domain


def attack_inputs(apply_fn: Callable, params: Any, x, y, *, eps, norm: str, loss: str | None,
                  domain: Domain | None, steps: int | None = None,
                  name: str = "attack") -> tuple[jnp.ndarray, jnp.ndarray, jnp.ndarray, Domain]:
    """Check and convert (x, y, eps, domain); returns x, y, eps as (n, 1, ...) and the domain."""
    if norm not in NORMS:
        raise AuditInputError(f"{name}: norm {norm!r} is not supported; use one of {list(NORMS)}.")
    if loss is not None and loss not in LOSSES:
        raise AuditInputError(f"{name}: loss {loss!r} is not supported; use one of {list(LOSSES)}.")
    if steps is not None and (int(steps) != steps or steps < 1):
        raise AuditInputError(f"{name}: steps must be a positive integer, got {steps}.")
    x = jnp.asarray(x, jnp.float32)
    y = jnp.asarray(y)
    if x.ndim < 2:
        raise AuditInputError(f"{name}: x has shape {x.shape}; expected a batch (n, *input_shape).")
    if y.shape != (x.shape[0],):
        raise AuditInputError(f"{name}: y has shape {y.shape}; expected ({x.shape[0]},), one label per row.")
    domain = full_domain(x) if domain is None else domain
    if not is_tracing(x, y, eps, domain, params):
        domain = check_domain(domain, x.shape[1:])
        e = np.asarray(eps, dtype=np.float64)
        if e.ndim not in (0, 1) or (e.ndim == 1 and e.shape[0] != x.shape[0]):
            raise AuditInputError(f"{name}: eps must be a number or one value per row ({x.shape[0]}), "
                                  f"got shape {e.shape}.")
        check_eps(e, norm=norm, domain=domain, name=f"{name}: eps")
        if not np.isfinite(np.asarray(x)).all():
            raise AuditInputError(f"{name}: x has NaN or infinite values.")
        if y.dtype.kind not in "iu":
            raise AuditInputError(f"{name}: y must hold integer class ids, got dtype {y.dtype}.")
        k = _n_classes(apply_fn, params, x.shape[1:])
        yv = np.asarray(y)
        if yv.size and (yv.min() < 0 or yv.max() >= k):
            raise AuditInputError(f"{name}: labels must be class ids in [0, {k}); got values in "
                                  f"[{yv.min()}, {yv.max()}].")
    return x, y.astype(jnp.int32), broadcast_eps(eps, x), domain


_CLASSES: dict = {}


def _n_classes(apply_fn: Callable, params: Any, input_shape: tuple[int, ...]) -> int:
    """Output width of the model, from an abstract evaluation (cached: tracing costs milliseconds)."""
    leaves, treedef = jax.tree_util.tree_flatten(params)
    key = (apply_fn, treedef, tuple(np.shape(v) for v in leaves), tuple(input_shape))
    try:
        hit = _CLASSES.get(key)
    except TypeError:  # an unhashable apply function: no caching
        hit, key = None, None
    if hit is None:
        out = jax.eval_shape(lambda p, v: apply_fn(p, v), params,
                             jax.ShapeDtypeStruct((1, *input_shape), jnp.float32))
        hit = int(out.shape[-1])
        if key is not None:
            _CLASSES[key] = hit
    return hit
