"""`Model`: the one place that knows Linen and NNX; below it every analyzer sees a pure function.

A Model is `apply(params, x) -> logits` plus its params, input shape and class names. Batch
evaluation pads to one fixed batch size, so any number of rows compiles exactly once.
"""

from __future__ import annotations

import dataclasses
import hashlib
from typing import Any, Callable, Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from audit.errors import AuditInputError
from audit.models._batching import padded_batches
from audit.models._rewrite import fast_apply
from audit.models._xla import jit as xla_jit

ApplyFn = Callable[[Any, jax.Array], jax.Array]


def _eval_view(module):
    """An evaluation-mode copy of an NNX module (dropout off, running batch statistics)."""
    from flax import nnx

    copy = nnx.clone(module)
    copy.eval()
    return copy


def split_nnx(module) -> tuple[ApplyFn, Any]:
    """NNX module -> (pure apply, params). Params hold `nnx.Param` and `nnx.BatchStat` state;
    everything else (RNG streams) is fixed inside `apply`. The user's module is not mutated."""
    from flax import nnx

    graphdef, params, rest = nnx.split(_eval_view(module), (nnx.Param, nnx.BatchStat), ...)

    def apply(params, x):
        return nnx.merge(graphdef, params, rest)(x)

    return apply, params


@dataclasses.dataclass(frozen=True, eq=False)
class Model:
    """A classifier as a pure function: `apply(params, x) -> logits` of shape (n, n_classes).

    `architecture` names a zoo architecture and its config when the model can be rebuilt from
    a checkpoint alone; `metadata` carries free-form facts (training history, data fingerprint).
    `fast_gradients` routes non-overlapping max pools through a cheap custom VJP with identical
    values and gradients (see `_rewrite.py`); set it False to run `apply` exactly as given.
    """

    apply: ApplyFn
    params: Any
    input_shape: tuple[int, ...]
    class_names: tuple[str, ...]
    architecture: Mapping[str, Any] | None = None
    metadata: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    batch_size: int = 512
    differentiable: bool = True
    fast_gradients: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "input_shape", tuple(int(d) for d in self.input_shape))
        object.__setattr__(self, "class_names", tuple(str(c) for c in self.class_names))
        if len(self.class_names) < 2:
            raise AuditInputError(f"a classifier needs at least two class names, got {self.class_names}.")
        if self.batch_size < 1:
            raise AuditInputError(f"batch_size must be positive, got {self.batch_size}.")
        # Max pools in any user model get the zoo's fast, bit-identical gradient (_rewrite.py).
        object.__setattr__(self, "apply", fast_apply(self.apply, enabled=self.fast_gradients))
        apply, size = self.apply, self.batch_size
        leaves, treedef = jax.tree_util.tree_flatten(self.params)
        # Flat leaves go into jit: flattening an NNX State on every call costs more than a small model.
        object.__setattr__(self, "_leaves", leaves)
        object.__setattr__(self, "_batch_logits", xla_jit(
            lambda leaves, x: apply(jax.tree_util.tree_unflatten(treedef, leaves), x).astype(jnp.float32),
            kind="forward"))
        object.__setattr__(self, "_batch", size)

    # ---- constructors ------------------------------------------------------------------
    @classmethod
    def _adapted(cls, apply: ApplyFn, params: Any, input_shape: Sequence[int], class_names: Sequence[str],
                 output: str, **kwargs) -> "Model":
        """The one edge where output conventions become logits and the output width is checked."""
        from audit.models._output import as_logits, check_width

        if output != "logits":
            apply = as_logits(apply, output)
        check_width(apply, params, input_shape, class_names)
        return cls(apply=apply, params=params, input_shape=tuple(input_shape),
                   class_names=tuple(class_names), **kwargs)

    @classmethod
    def from_function(cls, fn: ApplyFn, params: Any, *, input_shape: Sequence[int],
                      class_names: Sequence[str], output: str = "logits", **kwargs) -> "Model":
        """Wrap a pure `fn(params, x)` returning logits, or with `output="probabilities"` class
        probabilities, or with `output="sigmoid"` one binary logit per row (see `audit.models._output`)."""
        return cls._adapted(fn, params, input_shape, class_names, output, **kwargs)

    @classmethod
    def from_linen(cls, module, variables: Mapping[str, Any], *, input_shape: Sequence[int],
                   class_names: Sequence[str], output: str = "logits", **kwargs) -> "Model":
        """Wrap a Linen module and its variables (all collections, e.g. params, batch_stats).

        The module is called as `module.apply(variables, x)`; pass a module configured for
        inference (e.g. `train=False` attributes) if it has dropout or batch norm. `output` as in
        `from_function`.
        """
        return cls._adapted(lambda v, x: module.apply(v, x), variables, input_shape, class_names, output,
                            **kwargs)

    @classmethod
    def from_nnx(cls, module, *, input_shape: Sequence[int], class_names: Sequence[str],
                 output: str = "logits", **kwargs) -> "Model":
        """Wrap an NNX module (evaluated in eval mode; the module itself is not changed).
        `output` as in `from_function`."""
        apply, params = split_nnx(module)
        config = getattr(module, "config", None)
        if config is not None and "architecture" not in kwargs and hasattr(config, "to_dict"):
            kwargs["architecture"] = {"name": config.name, "config": config.to_dict()}
        return cls._adapted(apply, params, input_shape, class_names, output, **kwargs)

    # ---- evaluation --------------------------------------------------------------------
    @property
    def n_classes(self) -> int:
        return len(self.class_names)

    def _check(self, x: Any) -> np.ndarray:
        x = np.asarray(x, dtype=np.float32)
        if x.shape[1:] != self.input_shape:
            raise AuditInputError(f"input has shape {x.shape}; this model takes (n, "
                                  f"{', '.join(map(str, self.input_shape))}).")
        return x

    def logits(self, x: Any) -> np.ndarray:
        """Logits for any number of rows, in fixed-size padded batches (compiles once)."""
        x = self._check(x)
        if len(x) == 0:
            return np.zeros((0, self.n_classes), np.float32)
        return padded_batches(lambda xb: self._batch_logits(self._leaves, xb),
                              [np.asarray(x, np.float32)], self._batch)

    def predict_proba(self, x: Any) -> np.ndarray:
        """Softmax class probabilities, shape (n, n_classes) (numpy: no compile per row count)."""
        z = self.logits(x).astype(np.float64)
        z = np.exp(z - z.max(axis=-1, keepdims=True))
        return (z / z.sum(axis=-1, keepdims=True)).astype(np.float32)

    def predict(self, x: Any) -> np.ndarray:
        """Predicted class ids, shape (n,)."""
        return self.logits(x).argmax(axis=-1).astype(np.int32)

    def check_data(self, data) -> None:
        """AuditInputError unless `data` has this model's input shape and classes, in order."""
        if tuple(self.input_shape) != tuple(data.input_shape):
            raise AuditInputError(f"the model takes inputs of shape {self.input_shape} but the data "
                                  f"{data.name!r} has {data.input_shape}.")
        if tuple(self.class_names) != tuple(data.class_names):
            raise AuditInputError(f"the model's classes {list(self.class_names)} differ from the data's "
                                  f"{list(data.class_names)}; the labels must be the model's classes, in order.")

    def accuracy(self, x: Any, y: Any) -> float:
        return float((self.predict(x) == np.asarray(y)).mean())

    def compile_count(self) -> int:
        """How many times the batched logits function has been compiled (for tests and benches)."""
        return self._batch_logits._cache_size()

    # ---- checkpoints -------------------------------------------------------------------
    def save(self, directory, *, format: str = "msgpack") -> str:
        """Write a safe checkpoint (no pickle) atomically: msgpack params, or with format="orbax" an
        Orbax StandardCheckpointer folder `params/` that opens in the user's own tools; both with
        a JSON manifest."""
        from audit.models import _checkpoint, _orbax

        if format not in ("msgpack", "orbax"):
            raise AuditInputError(f"checkpoint format {format!r} is not known; use 'msgpack' or 'orbax'.")
        return (_orbax.save if format == "orbax" else _checkpoint.save)(self, directory)

    @classmethod
    def load(cls, directory, *, like: "Model | None" = None, allow_factory: bool = False) -> "Model":
        """Read a checkpoint (either format). Zoo models rebuild themselves; a model built by a
        factory is rebuilt from the factory its manifest records when `allow_factory=True` (that
        imports and runs the user's code, so it is the caller's explicit choice, as naming a
        factory in a config is); otherwise pass `like` (a Model of the same structure)."""
        from audit.models import _checkpoint, _orbax

        if _orbax.is_orbax_checkpoint(directory):
            return _orbax.load(directory, model_cls=cls, like=like, allow_factory=allow_factory)
        return _checkpoint.load(directory, model_cls=cls, like=like, allow_factory=allow_factory)

    # ---- misc --------------------------------------------------------------------------
    def replace(self, **changes) -> "Model":
        return dataclasses.replace(self, **changes)

    def fingerprint(self) -> str:
        """sha256 over parameter shapes and bytes: identifies the weights in reports."""
        h = hashlib.sha256()
        for path, leaf in jax.tree_util.tree_flatten_with_path(self.params)[0]:
            arr = np.asarray(leaf)
            h.update(jax.tree_util.keystr(path).encode())
            h.update(str(arr.shape).encode())
            h.update(np.ascontiguousarray(arr).tobytes())
        return h.hexdigest()

    def summary(self) -> dict[str, Any]:
        """Small JSON-ready description for model cards."""
        leaves = jax.tree_util.tree_leaves(self.params)
        return {"architecture": dict(self.architecture) if self.architecture else None,
                "input_shape": list(self.input_shape), "classes": list(self.class_names),
                "parameters": int(sum(np.size(leaf) for leaf in leaves)),
                "fingerprint": self.fingerprint()}
