"""Gradient attributions: vanilla gradient, Gradient x Input, Integrated Gradients, SmoothGrad.

- Vanilla gradient (Simonyan et al. 2014, "Deep inside convolutional networks").
- Gradient x Input (Shrikumar et al. 2016, "Not just a black box").
- Integrated Gradients (Sundararajan et al. 2017, "Axiomatic attribution for deep networks"):
  the path integral of the gradient from a baseline to the input, by a quadrature rule; the
  completeness error (sum of attributions minus output difference) comes with every result.
- SmoothGrad / SmoothGrad-squared (Smilkov et al. 2017): the mean (of squares) of any of the
  above over Gaussian-noised copies of the input; a wrapper, not a separate method.

Each method is a pure kernel `(params, x, target) -> (attributions, extras)` on a chunk of
examples, jitted and vectorised over examples (and integration steps), run in padded chunks
of a few fixed sizes (one compilation per size). Gradient x Input reuses the gradient kernel;
SmoothGrad calls the wrapped method on all noisy copies at once, so neither compiles anything new.
"""

from __future__ import annotations

import functools
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

from audit.errors import AuditInputError
from audit.explain._attribution import Attribution
from audit.models._batching import padded_batches
from audit.results import Provenance, timer
from audit.models._xla import jit as xla_jit

OUTPUTS = ("logit", "probability", "log_probability")
RULES = ("trapezoid", "riemann_left", "riemann_right", "riemann_middle")
METHODS = ("gradient", "gradient_x_input", "integrated_gradients")
MAX_POINTS = 4096  # model evaluations per call (bounds memory)
MAX_CELLS = 1 << 16  # input values per call: keeps activations cache-sized (CPU runs ~2x slower
# when one call's activations spill out of cache; see bench/explain_lime_ig.py)

Kernel = Callable[..., tuple[jax.Array, dict[str, jax.Array]]]


# ---- checks at the edge -----------------------------------------------------------------
def check_inputs(model, X: Any) -> np.ndarray:
    """X as float32 (n, *model.input_shape); a non-differentiable model is an error."""
    if not getattr(model, "differentiable", True):
        raise AuditInputError("this model is marked differentiable=False, so gradient attributions "
                              "are undefined; use LIME or KernelSHAP instead.")
    X = np.asarray(X, dtype=np.float32)
    if X.ndim == len(model.input_shape):
        X = X[None]
    if X.shape[1:] != model.input_shape or len(X) == 0:
        raise AuditInputError(f"inputs have shape {X.shape}; this model takes (n, "
                              f"{', '.join(map(str, model.input_shape))}) with n >= 1.")
    if not np.isfinite(X).all():
        raise AuditInputError("inputs contain NaN or infinite values; attributions need finite inputs.")
    return X


def explained_class(model, X: np.ndarray) -> np.ndarray:
    """The default explained class of every explainer in audit.explain (SHAP, LIME, gradients):
    the positive class (1) for two-class models, else the predicted class of each example."""
    return np.ones(len(X), np.int32) if model.n_classes == 2 else model.predict(X).astype(np.int32)


def targets(model, X: np.ndarray, target: Any) -> np.ndarray:
    """Class index per example: None -> `explained_class`; an int -> that class for all; or
    one class index per example."""
    if target is None:
        return explained_class(model, X)
    t = np.asarray(target)
    if t.ndim == 0:
        t = np.full(len(X), t)  # keeps the dtype, so 1.7 or "b" fail the check below
    if t.shape != (len(X),) or t.dtype.kind not in "iu" or t.min() < 0 or t.max() >= model.n_classes:
        raise AuditInputError(f"target must be None, a class index in [0, {model.n_classes}) or one "
                              f"such index per example ({len(X)}); got {np.asarray(target)!r}.")
    return t.astype(np.int32)


def _check_choice(name: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise AuditInputError(f"{name} {value!r} must be one of {allowed}.")


def path_rule(rule: str, steps: int) -> tuple[np.ndarray, np.ndarray]:
    """Points alpha in [0, 1] and weights of a quadrature rule with `steps` gradient evaluations."""
    _check_choice("rule", rule, RULES)
    if rule == "trapezoid":
        if steps < 2:
            raise AuditInputError(f"the trapezoid rule needs steps >= 2, got {steps}.")
        alphas = np.linspace(0.0, 1.0, steps)
        weights = np.full(steps, 1.0 / (steps - 1))
        weights[[0, -1]] /= 2
        return alphas, weights
    if steps < 1:
        raise AuditInputError(f"steps must be >= 1, got {steps}.")
    k = np.arange(steps, dtype=np.float64)
    offset = {"riemann_left": 0.0, "riemann_right": 1.0, "riemann_middle": 0.5}[rule]
    return (k + offset) / steps, np.full(steps, 1.0 / steps)


# ---- pure kernels -----------------------------------------------------------------------
def scalar_output(apply: Callable, output: str) -> Callable:
    """f(params, xs, t) -> (n,) explained output of each row for its target class."""

    def f(params, xs, t):
        logits = apply(params, xs).astype(jnp.float32)
        if output == "probability":
            logits = jax.nn.softmax(logits, axis=-1)
        elif output == "log_probability":
            logits = jax.nn.log_softmax(logits, axis=-1)
        return jnp.take_along_axis(logits, t[:, None], axis=1)[:, 0]

    return f


def input_gradient(apply: Callable, output: str) -> Callable:
    """g(params, xs, t) -> d f(x_i)[t_i] / d x_i for every row (rows are independent)."""
    f = scalar_output(apply, output)
    return jax.grad(lambda xs, params, t: jnp.sum(f(params, xs, t)))


def gradient_kernel(apply: Callable, *, output: str) -> Kernel:
    grad = input_gradient(apply, output)
    return lambda params, xs, t: (grad(xs, params, t), {})


def integrated_gradients_kernel(apply: Callable, *, output: str, alphas: np.ndarray,
                                weights: np.ndarray) -> Kernel:
    """IG from a `baseline` (an argument, broadcast against each chunk: a new baseline does not
    recompile); all steps of all rows in one call."""
    f = scalar_output(apply, output)
    grad = input_gradient(apply, output)
    alphas, weights = jnp.asarray(alphas, jnp.float32), jnp.asarray(weights, jnp.float32)

    def kernel(params, xs, t, baseline):
        base = jnp.broadcast_to(baseline, xs.shape)
        shape = (-1,) + (1,) * xs.ndim
        path = base[None] + alphas.reshape(shape) * (xs - base)[None]  # (m, n, ...)
        flat = path.reshape((-1,) + xs.shape[1:])
        g = grad(flat, params, jnp.tile(t, len(alphas))).reshape(path.shape)
        attr = (xs - base) * jnp.tensordot(weights, g, axes=1)
        out, out0 = f(params, xs, t), f(params, base, t)
        err = attr.reshape(len(xs), -1).sum(axis=1) - (out - out0)
        return attr, {"output": out, "baseline_output": out0, "completeness_error": err}

    return kernel


# ---- batching ---------------------------------------------------------------------------
@functools.lru_cache(maxsize=64)
def _compiled(kernel_factory, apply, settings: tuple):
    kwargs = {k: (jnp.asarray(v) if isinstance(v, np.ndarray) else v) for k, v in _unfreeze(settings)}
    return xla_jit(kernel_factory(apply, **kwargs))


def _freeze(settings: dict) -> tuple:
    out = []
    for k, v in sorted(settings.items()):
        if isinstance(v, np.ndarray):
            v = ("__array__", v.dtype.str, v.shape, v.tobytes())
        out.append((k, v))
    return tuple(out)


def _unfreeze(frozen: tuple):
    for k, v in frozen:
        if isinstance(v, tuple) and v and v[0] == "__array__":
            v = np.frombuffer(v[3], dtype=np.dtype(v[1])).reshape(v[2])
        yield k, v


def chunk_size(n: int, per_row: int, batch_size: int | None, input_size: int = 1) -> int:
    """Examples per call: `batch_size`, else the power of two >= n within the bounds on model
    evaluations and input values per call (so any number of rows compiles one of a few sizes)."""
    if batch_size is not None:
        if int(batch_size) < 1:
            raise AuditInputError(f"batch_size must be >= 1, got {batch_size}.")
        return int(batch_size)
    bound = min(MAX_POINTS // per_row, MAX_CELLS // (per_row * input_size))
    return max(1, min(bound, 1 << max(0, n - 1).bit_length()))


def run_chunks(fn: Callable, params, X: np.ndarray, t: np.ndarray, chunk: int,
               *operands) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Apply `fn(params, rows, targets, *operands)` to padded chunks of `chunk` rows and
    concatenate the results."""
    attr, extras = padded_batches(lambda xb, tb: fn(params, xb, tb, *operands), [X, t], chunk)
    return attr, {k: v.astype(np.float64) for k, v in extras.items()}


def _attribute(method: str, model, X, *, target, output: str, batch_size: int | None, settings: dict,
               operands: tuple = ()) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict, float]:
    """(X, targets, attributions, extras, seconds) of one kernel over all rows; `settings` are
    compiled in, `operands` are traced arguments (changing them does not recompile)."""
    X = check_inputs(model, X)
    _check_choice("output", output, OUTPUTS)
    t = targets(model, X, target)
    factory = {"gradient": gradient_kernel, "integrated_gradients": integrated_gradients_kernel}[method]
    chunk = chunk_size(len(X), len(settings.get("alphas", [0])), batch_size, int(np.prod(X.shape[1:])))
    with timer() as clock:
        fn = _compiled(factory, model.apply, _freeze({"output": output, **settings}))
        values, extras = run_chunks(fn, model.params, X, t, chunk, *operands)
    return X, t, values, extras, clock[0]


# ---- public API -------------------------------------------------------------------------
def gradient(model, X: Any, *, target: Any = None, output: str = "logit",
             batch_size: int | None = None) -> Attribution:
    """Vanilla gradient d output[target] / d x (Simonyan et al. 2014)."""
    X, t, values, extras, seconds = _attribute("gradient", model, X, target=target, output=output,
                                               batch_size=batch_size, settings={})
    return Attribution(method="gradient", values=values, target=t, inputs=X, extras=extras,
                       provenance=Provenance("gradient", {"output": output}, None, seconds))


def gradient_x_input(model, X: Any, *, target: Any = None, output: str = "logit",
                     batch_size: int | None = None) -> Attribution:
    """Gradient x Input (Shrikumar et al. 2016); equals w * x for a linear model."""
    X, t, values, extras, seconds = _attribute("gradient", model, X, target=target, output=output,
                                               batch_size=batch_size, settings={})
    return Attribution(method="gradient_x_input", values=X * values, target=t, inputs=X, extras=extras,
                       provenance=Provenance("gradient_x_input", {"output": output}, None, seconds))


def _baseline(model, X: np.ndarray, baseline: Any) -> np.ndarray:
    if baseline is None:
        return np.zeros(model.input_shape, np.float32)
    b = np.asarray(baseline, dtype=np.float32)
    try:
        np.broadcast_to(b, model.input_shape)
    except ValueError:
        raise AuditInputError(f"baseline has shape {b.shape}; it must broadcast to one input "
                              f"{model.input_shape} (e.g. a scalar, or the training mean).") from None
    if not np.isfinite(b).all():
        raise AuditInputError("baseline contains NaN or infinite values.")
    return np.broadcast_to(b, model.input_shape).copy()


def integrated_gradients(model, X: Any, *, target: Any = None, baseline: Any = None,
                         steps: int = 50, rule: str = "trapezoid", output: str = "logit",
                         batch_size: int | None = None) -> Attribution:
    """Integrated Gradients (Sundararajan et al. 2017) from `baseline` (default zeros).

    `steps` gradient evaluations per example along the straight path, combined by `rule`
    ("trapezoid" default, or "riemann_left" / "riemann_right" / "riemann_middle"). Extras carry
    the output at x and at the baseline and the completeness error per example;
    `result.completeness_error()` is the aggregate relative error.
    """
    X = check_inputs(model, X)
    alphas, weights = path_rule(rule, int(steps))
    base = _baseline(model, X, baseline)
    settings = {"alphas": alphas, "weights": weights}
    X, t, values, extras, seconds = _attribute("integrated_gradients", model, X, target=target,
                                               output=output, batch_size=batch_size, settings=settings,
                                               operands=(base,))
    described = {"output": output, "steps": int(steps), "rule": rule,
                 "baseline": "zeros" if baseline is None else
                 (float(base.ravel()[0]) if np.ndim(baseline) == 0 else "array")}
    return Attribution(method="integrated_gradients", values=values, target=t, inputs=X, extras=extras,
                       provenance=Provenance("integrated_gradients", described, None, seconds))


def smoothgrad(model, X: Any, *, method: str = "gradient", noise: float = 0.15, n_samples: int = 25,
               squared: bool = False, seed: int = 0, target: Any = None, output: str = "logit",
               batch_size: int | None = None, **method_settings) -> Attribution:
    """SmoothGrad (Smilkov et al. 2017) around any gradient method of this module.

    Averages `method` over `n_samples` copies of each input with Gaussian noise of std
    `noise * (max(x) - min(x))` (drawn with numpy from `seed` for the whole call);
    `squared=True` averages squared attributions (SmoothGrad-SQ). With noise 0 it equals the
    wrapped method. `method_settings` go to the wrapped method (e.g. steps=, rule=, baseline=
    for integrated_gradients). All noisy copies go through the wrapped method in one call.
    """
    _check_choice("method", method, METHODS)
    if not (np.isfinite(noise) and noise >= 0) or int(n_samples) < 1:
        raise AuditInputError(f"smoothgrad needs noise >= 0 and n_samples >= 1, got noise={noise}, "
                              f"n_samples={n_samples}.")
    allowed = {"integrated_gradients": {"steps", "rule", "baseline"}}.get(method, set())
    if set(method_settings) - allowed:
        raise AuditInputError(f"unknown settings {sorted(set(method_settings) - allowed)} for method "
                              f"{method!r}; it takes {sorted(allowed) or 'none'}.")
    X = check_inputs(model, X)
    t = targets(model, X, target)
    n, s = len(X), int(n_samples)
    flat = X.reshape(n, -1)
    sigma = noise * (flat.max(axis=1) - flat.min(axis=1))
    eps = np.random.default_rng(seed).standard_normal((n, s) + X.shape[1:]).astype(np.float32)
    noisy = X[:, None] + sigma.reshape((n, 1) + (1,) * (X.ndim - 1)).astype(np.float32) * eps
    wrapped = {"gradient": gradient, "gradient_x_input": gradient_x_input,
               "integrated_gradients": integrated_gradients}[method]
    with timer() as clock:
        inner = wrapped(model, noisy.reshape((n * s,) + X.shape[1:]), target=np.repeat(t, s),
                        output=output, batch_size=batch_size, **method_settings)
        values = inner.values.reshape((n, s) + X.shape[1:])
        values = (values ** 2 if squared else values).mean(axis=1)
    name = ("smoothgrad_sq:" if squared else "smoothgrad:") + method
    settings = {**inner.provenance.settings, "method": method, "noise": float(noise), "n_samples": s,
                "squared": bool(squared)}
    return Attribution(method=name, values=values, target=t, inputs=X,
                       provenance=Provenance(name, settings, int(seed), clock[0]))
