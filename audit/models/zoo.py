"""Model zoo written with Flax NNX: an MLP for tabular data and a small CNN for images.

Each module keeps its frozen config, so a checkpoint can rebuild it (`build(name, config)`).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping

import jax
import jax.numpy as jnp
from flax import nnx

from audit.errors import AuditInputError
from audit.models._pooling import max_pool


@dataclasses.dataclass(frozen=True)
class MLPConfig:
    """in_features -> hidden widths (ReLU, optional norm and dropout) -> n_classes logits."""

    in_features: int
    n_classes: int
    widths: tuple[int, ...] = (64, 32)
    dropout: float = 0.1
    norm: str | None = None  # None | "layer" | "batch"
    name: str = "mlp"

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["widths"] = list(self.widths)
        return d


@dataclasses.dataclass(frozen=True)
class CNNConfig:
    """Two conv(3x3)-ReLU-maxpool(2x2) blocks, a dense ReLU layer with dropout, logits."""

    input_shape: tuple[int, int, int]
    n_classes: int
    channels: tuple[int, int] = (32, 64)
    hidden: int = 128
    dropout: float = 0.25
    name: str = "cnn"

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["input_shape"], d["channels"] = list(self.input_shape), list(self.channels)
        return d


class MLP(nnx.Module):
    def __init__(self, config: MLPConfig, *, rngs: nnx.Rngs):
        if config.norm not in (None, "layer", "batch"):
            raise AuditInputError(f"MLP norm {config.norm!r} must be None, 'layer' or 'batch'.")
        self.config = config
        sizes = (config.in_features, *config.widths)
        self.layers = nnx.List([nnx.Linear(a, b, rngs=rngs) for a, b in zip(sizes[:-1], sizes[1:])])
        if config.norm == "layer":
            self.norms = nnx.List([nnx.LayerNorm(w, rngs=rngs) for w in config.widths])
        elif config.norm == "batch":
            self.norms = nnx.List([nnx.BatchNorm(w, rngs=rngs) for w in config.widths])
        else:
            self.norms = nnx.List([])
        self.dropout = nnx.Dropout(config.dropout, rngs=rngs)
        self.head = nnx.Linear(sizes[-1], config.n_classes, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if len(self.norms):
                x = self.norms[i](x)
            x = self.dropout(jax.nn.relu(x))
        return self.head(x)


class CNN(nnx.Module):
    def __init__(self, config: CNNConfig, *, rngs: nnx.Rngs):
        h, w, c = config.input_shape
        c1, c2 = config.channels
        self.config = config
        self.conv1 = nnx.Conv(c, c1, kernel_size=(3, 3), rngs=rngs)
        self.conv2 = nnx.Conv(c1, c2, kernel_size=(3, 3), rngs=rngs)
        self.dense = nnx.Linear((h // 4) * (w // 4) * c2, config.hidden, rngs=rngs)
        self.dropout = nnx.Dropout(config.dropout, rngs=rngs)
        self.head = nnx.Linear(config.hidden, config.n_classes, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        x = max_pool(jax.nn.relu(self.conv1(x)))
        x = max_pool(jax.nn.relu(self.conv2(x)))
        x = x.reshape(x.shape[0], -1)
        return self.head(self.dropout(jax.nn.relu(self.dense(x))))


_ARCHITECTURES = {"mlp": (MLP, MLPConfig), "cnn": (CNN, CNNConfig)}


def build(name: str, config: Mapping[str, Any], *, seed: int = 0) -> nnx.Module:
    """A zoo module from its architecture name and config dict (as stored in checkpoints)."""
    if name not in _ARCHITECTURES:
        raise AuditInputError(f"unknown architecture {name!r}; the zoo has {sorted(_ARCHITECTURES)}.")
    module_cls, config_cls = _ARCHITECTURES[name]
    fields = {f.name for f in dataclasses.fields(config_cls)}
    unknown = sorted(set(config) - fields)
    if unknown:
        raise AuditInputError(f"{name} config has unknown keys {unknown}; allowed: {sorted(fields)}.")
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in config.items()}
    try:
        cfg = config_cls(**values)
    except TypeError as exc:
        raise AuditInputError(f"bad {name} config: {exc}") from None
    return module_cls(cfg, rngs=nnx.Rngs(params=seed, dropout=seed + 1))


def for_data(data, *, seed: int = 0, **config) -> nnx.Module:
    """The default zoo module for a Dataset: an MLP for tabular data, a CNN for images."""
    if data.kind == "image":
        if len(data.input_shape) != 3:
            raise AuditInputError(f"the zoo CNN takes (H, W, C) images, got {data.input_shape}.")
        return build("cnn", {"input_shape": data.input_shape, "n_classes": data.n_classes, **config}, seed=seed)
    return build("mlp", {"in_features": int(jnp.prod(jnp.array(data.input_shape))),
                         "n_classes": data.n_classes, **config}, seed=seed)


def rebuild(architecture: Mapping[str, Any], *, model_cls, input_shape, class_names, seed: int = 0,
            initialise: bool = True):
    """A freshly initialised `model_cls` (audit.Model) of a recorded zoo architecture
    (`{"name", "config"}`): the one rule that `_factory.build` and checkpoint loading share.

    `initialise=False` gives the template a checkpoint fills: parameters of the right shapes and
    dtypes (`jax.ShapeDtypeStruct`) traced by `nnx.eval_shape`, nothing computed. Initialising real
    weights only to replace them cost ~2 s of small compiles at every audit's start (MNIST CNN)."""
    arch = dict(architecture)
    config = {k: v for k, v in arch["config"].items() if k != "name"}
    if initialise:
        module = build(arch["name"], config, seed=seed)
    else:
        module = _concrete_state(nnx.eval_shape(lambda: build(arch["name"], config, seed=seed)), seed=seed)
    return model_cls.from_nnx(module, input_shape=input_shape, class_names=class_names, architecture=arch)


def _concrete_state(module: nnx.Module, *, seed: int) -> nnx.Module:
    """`module` (from `nnx.eval_shape`) with its non-parameter state made real: RNG streams seeded
    as `build` seeds dropout (an evaluating model draws from none), counters at zero. Parameters
    and batch statistics stay abstract for the checkpoint to fill."""
    graphdef, params, rest = nnx.split(module, (nnx.Param, nnx.BatchStat), ...)

    def real(leaf):
        if not isinstance(leaf, jax.ShapeDtypeStruct):
            return leaf
        if jnp.issubdtype(leaf.dtype, jax.dtypes.prng_key):
            return jnp.broadcast_to(jax.random.key(seed + 1), leaf.shape)
        return jnp.zeros(leaf.shape, leaf.dtype)

    return nnx.merge(graphdef, params, jax.tree_util.tree_map(real, rest))
