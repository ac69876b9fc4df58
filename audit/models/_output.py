"""Output conventions of real models, converted once at the edge so every analyzer sees logits.

A model may return logits (the default), class probabilities, or one sigmoid logit for a
binary task. `as_logits` wraps its apply function so it always returns (n, K) logits whose
softmax equals the model's own probabilities, and whose margins equal those of the equivalent
two-logit model: one logit z becomes (0, z), because softmax((0, z))[1] = sigmoid(z).
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from audit.errors import AuditInputError

OUTPUTS = ("logits", "probabilities", "sigmoid")
_TINY = 1e-30  # log(0) guard for probability outputs: keeps logits finite, order unchanged


def check_output(output: str) -> str:
    if output not in OUTPUTS:
        raise AuditInputError(f"output {output!r} is not known; use one of {list(OUTPUTS)} (what the "
                              "model's apply function returns).")
    return output


def to_logits(out: jax.Array, output: str) -> jax.Array:
    """Raw model outputs (n, width) -> (n, K) logits under the given convention."""
    out = jnp.asarray(out)
    if out.ndim == 1:  # a binary model returning one number per row
        out = out[:, None]
    if output == "logits":
        return out
    if output == "sigmoid":
        if out.shape[-1] != 1:
            raise AuditInputError(f"output='sigmoid' needs one logit per row; the model returns {out.shape[-1]}.")
        return jnp.concatenate([jnp.zeros_like(out), out], axis=-1)
    if out.shape[-1] == 1:  # probability of the positive class
        p = jnp.clip(out, _TINY, 1.0)
        return jnp.concatenate([jnp.log(jnp.clip(1.0 - out, _TINY, 1.0)), jnp.log(p)], axis=-1)
    return jnp.log(jnp.clip(out, _TINY, None))


def as_logits(apply: Callable[[Any, jax.Array], jax.Array], output: str) -> Callable[[Any, jax.Array], jax.Array]:
    """`apply` wrapped to return (n, K) logits under the `output` convention."""
    output = check_output(output)

    def logits(params, x):
        return to_logits(apply(params, x), output)

    return logits


def check_width(apply: Callable[[Any, jax.Array], jax.Array], params: Any, input_shape: Sequence[int],
                class_names: Sequence[str]) -> None:
    """AuditInputError unless `apply` returns (n, len(class_names)) for (n, *input_shape) inputs.

    Uses `jax.eval_shape`: a trace, no computation."""
    x = jax.ShapeDtypeStruct((2, *tuple(int(d) for d in input_shape)), np.float32)
    try:
        out = jax.eval_shape(apply, params, x)
    except AuditInputError:
        raise
    except Exception as exc:  # the user's model raised while tracing: say where it happened
        raise AuditInputError(f"the model cannot be called on inputs of shape (n, "
                              f"{', '.join(map(str, input_shape))}): {type(exc).__name__}: {exc}") from None
    shape = getattr(out, "shape", None)
    if shape is None or len(shape) != 2 or shape[0] != 2:
        raise AuditInputError(f"the model must return one row of outputs per input (n, n_classes); it "
                              f"returns {shape if shape is not None else type(out).__name__}.")
    if shape[1] != len(class_names):
        raise AuditInputError(f"the model outputs {shape[1]} values per row but the classes are "
                              f"{list(class_names)} ({len(class_names)}); give class names that match the "
                              "model's outputs, or output='sigmoid' / 'probabilities' for a one-column binary model.")
