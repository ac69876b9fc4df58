"""The input domain of an attack: per-input bounds and a mask of inputs the attacker may change.

Adversarial examples must stay meaningful: images stay in their pixel range, tabular inputs stay
within the range seen in training, and immutable inputs (one-hot blocks of categorical columns,
sensitive attributes fed to the model, columns the user names) never change.
"""

from __future__ import annotations

from typing import NamedTuple, Sequence

import jax.numpy as jnp
import numpy as np

from audit.errors import AuditInputError

NORMS = ("linf", "l2")


class Domain(NamedTuple):
    """`lower` / `upper` bounds and a 0/1 `mutable` mask, each of the model's input shape.

    A NamedTuple of arrays, so it is a pytree and travels through `jit` as data.
    """

    lower: jnp.ndarray
    upper: jnp.ndarray
    mutable: jnp.ndarray

    def width(self, norm: str) -> float:
        """The largest perturbation size that can still matter (the domain's diameter in `norm`)."""
        span = np.asarray(self.upper - self.lower) * np.asarray(self.mutable)
        return float(span.max() if norm == "linf" else np.sqrt((span ** 2).sum()))


def box_domain(input_shape: Sequence[int], *, lower: float = 0.0, upper: float = 1.0,
               mutable: np.ndarray | None = None) -> Domain:
    """A box [lower, upper] over every input (images: the pixel range), all inputs mutable."""
    shape = tuple(int(d) for d in input_shape)
    if not (np.isfinite(lower) and np.isfinite(upper) and lower < upper):
        raise AuditInputError(f"domain bounds [{lower}, {upper}] must be finite with lower < upper.")
    mask = np.ones(shape, np.float32) if mutable is None else _mask(mutable, shape)
    return Domain(jnp.full(shape, lower, jnp.float32), jnp.full(shape, upper, jnp.float32),
                  jnp.asarray(mask))


def _mask(mutable, shape) -> np.ndarray:
    mask = np.asarray(mutable)
    if mask.shape != shape:
        raise AuditInputError(f"the mutable mask has shape {mask.shape}; expected {shape} (one entry "
                              "per model input, True where the attacker may change it).")
    return mask.astype(bool).astype(np.float32)


def domain_for(data, *, allow_categorical: bool = False, allow_sensitive: bool = False,
               immutable: Sequence[str] = (), mutable: np.ndarray | None = None) -> Domain:
    """The default attack domain of a Dataset.

    Images: [0, 1] when the data lie there, else the data's own min/max. Tabular: per-input
    bounds from the training rows; one-hot blocks of categorical columns are immutable unless
    `allow_categorical`, sensitive attributes that are model inputs unless `allow_sensitive`,
    and raw columns (or input names) listed in `immutable` always. `mutable` (a boolean array,
    one entry per input) replaces the computed mask.
    """
    train = data.part("train") if len(data.splits.get("train", ())) else data
    if data.kind == "image":
        lo, hi = float(data.X.min()), float(data.X.max())
        lo, hi = (0.0, 1.0) if lo >= 0.0 and hi <= 1.0 else (lo, hi)
        return box_domain(data.input_shape, lower=lo, upper=max(hi, lo + 1e-6), mutable=mutable)
    X = train.X.reshape(len(train.X), -1)
    lower, upper = X.min(axis=0), X.max(axis=0)
    names = list(data.feature_names)
    if mutable is not None:
        mask = _mask(mutable, data.input_shape)
    else:
        mask = np.ones(len(names), np.float32)
        groups = data.feature_groups
        raw_names = list(data.raw_feature_names)
        if data.encoding is not None and not allow_categorical:
            mask[np.asarray(data.encoding.categorical_mask, bool)] = 0.0
        blocked = set(immutable) | (set() if allow_sensitive else set(data.sensitive))
        known = set(raw_names) | set(names)
        unknown = sorted(set(immutable) - known)
        if unknown:
            raise AuditInputError(f"immutable names {unknown} are neither raw columns {raw_names} "
                                  f"nor model inputs.")
        for name in blocked:
            if name in raw_names:
                mask[list(groups[raw_names.index(name)])] = 0.0
            elif name in names:
                mask[names.index(name)] = 0.0
    return Domain(jnp.asarray(lower.reshape(data.input_shape), jnp.float32),
                  jnp.asarray(upper.reshape(data.input_shape), jnp.float32), jnp.asarray(mask))


def check_domain(domain: Domain, input_shape: Sequence[int]) -> Domain:
    """Validate a user-supplied Domain against the model's input shape (at the edge)."""
    shape = tuple(int(d) for d in input_shape)
    if not isinstance(domain, Domain):
        raise AuditInputError(f"domain must be an audit.robustness.Domain, got {type(domain).__name__}.")
    for name, arr in zip(Domain._fields, domain):
        if tuple(np.shape(arr)) != shape:
            raise AuditInputError(f"domain.{name} has shape {tuple(np.shape(arr))}; expected {shape} "
                                  "(one entry per model input).")
    if not (np.asarray(domain.lower) <= np.asarray(domain.upper)).all():
        raise AuditInputError("domain.lower must not exceed domain.upper anywhere.")
    if not np.asarray(domain.mutable).any():
        raise AuditInputError("the domain's mutable mask is all False: the attacker can change nothing.")
    return Domain(*(jnp.asarray(a, jnp.float32) for a in domain))


def check_eps(eps, *, norm: str, domain: Domain | None = None, name: str = "eps") -> np.ndarray:
    """Validate perturbation sizes: finite, non-negative, not beyond the domain, supported norm."""
    if norm not in NORMS:
        raise AuditInputError(f"norm {norm!r} is not supported; use one of {list(NORMS)}.")
    values = np.atleast_1d(np.asarray(eps, dtype=np.float64))
    if values.size == 0:
        raise AuditInputError(f"{name} is empty; give at least one perturbation size.")
    if not np.isfinite(values).all() or (values < 0).any():
        raise AuditInputError(f"{name} must be finite and non-negative, got {values.tolist()}.")
    if domain is not None:
        width = domain.width(norm)
        if values.max() > width * (1 + 1e-6):
            raise AuditInputError(
                f"{name}={values.max():g} is beyond the input domain: the largest {norm} change the "
                f"domain allows is {width:g}; use a smaller {name} (e.g. 0.3 for images in [0, 1]).")
    return values


def broadcast_eps(eps, x: jnp.ndarray) -> jnp.ndarray:
    """Scalar or per-example eps -> shape (n, 1, ..., 1) for broadcasting against x."""
    eps = jnp.asarray(eps, x.dtype)
    eps = jnp.broadcast_to(eps, (x.shape[0],)) if eps.ndim == 0 else eps
    return eps.reshape((x.shape[0],) + (1,) * (x.ndim - 1))


def _norm2(v: jnp.ndarray) -> jnp.ndarray:
    return jnp.sqrt(jnp.sum(v.reshape(v.shape[0], -1) ** 2, axis=1))


def project(x0: jnp.ndarray, x: jnp.ndarray, eps_b: jnp.ndarray, norm: str, domain: Domain) -> jnp.ndarray:
    """Project `x` onto {x0 + d : d in the eps ball, d = 0 on immutable inputs} within the domain.

    The box is widened per example to contain x0 itself, so clean inputs never move. Clipping
    after the ball projection keeps the point in the ball (it only shrinks each coordinate).
    """
    delta = (x - x0) * domain.mutable
    if norm == "linf":
        delta = jnp.clip(delta, -eps_b, eps_b)
    else:
        size = _norm2(delta).reshape(eps_b.shape)
        delta = delta * jnp.minimum(1.0, eps_b / jnp.maximum(size, 1e-12))
    lower = jnp.minimum(domain.lower, x0)
    upper = jnp.maximum(domain.upper, x0)
    return jnp.clip(x0 + delta, lower, upper)


def direction(g: jnp.ndarray, norm: str, domain: Domain) -> jnp.ndarray:
    """Steepest-ascent direction of unit `norm` for gradient g (sign for linf, g/|g| for l2)."""
    g = g * domain.mutable
    if norm == "linf":
        return jnp.sign(g)
    size = _norm2(g).reshape((g.shape[0],) + (1,) * (g.ndim - 1))
    return g / jnp.maximum(size, 1e-12)


def random_start(key, x0: jnp.ndarray, eps_b: jnp.ndarray, norm: str, domain: Domain) -> jnp.ndarray:
    """A uniform random point of the eps ball around x0 (inside the domain)."""
    if norm == "linf":
        delta = eps_b * jnp_uniform(key, x0.shape)
    else:
        import jax

        k1, k2 = jax.random.split(key)
        g = jax.random.normal(k1, x0.shape, x0.dtype) * domain.mutable
        g = g / jnp.maximum(_norm2(g), 1e-12).reshape(eps_b.shape)
        d = jnp.maximum(jnp.sum(domain.mutable), 1.0)
        r = jax.random.uniform(k2, eps_b.shape, x0.dtype) ** (1.0 / d)
        delta = g * eps_b * r
    return project(x0, x0 + delta, eps_b, norm, domain)


def jnp_uniform(key, shape) -> jnp.ndarray:
    import jax

    return jax.random.uniform(key, shape, jnp.float32, -1.0, 1.0)


def full_domain(x: jnp.ndarray) -> Domain:
    """No bounds and every input mutable: for callers that pass no domain."""
    shape = x.shape[1:]
    return Domain(jnp.full(shape, -jnp.inf, jnp.float32), jnp.full(shape, jnp.inf, jnp.float32),
                  jnp.ones(shape, jnp.float32))
