"""Random-noise baselines: Gaussian or uniform noise rescaled to exactly the attack's norm.

If noise of the same size hurts the model as much as an attack, the attack is not doing its
job (or the model is simply fragile); either way robust-accuracy numbers need this baseline.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from audit.errors import AuditInputError
from audit.robustness._domain import Domain, broadcast_eps, full_domain, project

KINDS = ("gaussian", "uniform")


@jax.jit(static_argnames=("norm",))
def _noise(x, eps_b, domain, key, norm, gaussian):
    u = jnp.where(gaussian, jax.random.normal(key, x.shape, jnp.float32),
                  jax.random.uniform(key, x.shape, jnp.float32, -1.0, 1.0))  # one compile for both kinds
    u = u * domain.mutable
    flat = u.reshape(x.shape[0], -1)
    size = jnp.max(jnp.abs(flat), axis=1) if norm == "linf" else jnp.sqrt(jnp.sum(flat ** 2, axis=1))
    u = u / jnp.maximum(size, 1e-12).reshape(eps_b.shape)
    return project(x, x + eps_b * u, eps_b, norm, domain)


def noise(x, *, eps, norm: str = "linf", kind: str = "gaussian", domain: Domain | None = None,
          key: jax.Array) -> jax.Array:
    """x plus `kind` noise ("gaussian" or "uniform") of `norm` exactly eps on mutable inputs
    (then clipped to the domain, which can only shrink it)."""
    if kind not in KINDS:
        raise AuditInputError(f"noise kind {kind!r} must be one of {list(KINDS)}.")
    if norm not in ("linf", "l2"):
        raise AuditInputError(f"norm {norm!r} is not supported; use 'linf' or 'l2'.")
    x = jnp.asarray(x, jnp.float32)
    domain = full_domain(x) if domain is None else domain
    return _noise(x, broadcast_eps(eps, x), domain, key, norm, kind == "gaussian")
