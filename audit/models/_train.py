"""Seeded Optax training of zoo or user models with validation early stopping."""

from __future__ import annotations

import dataclasses
import time
from collections import OrderedDict
from typing import Any, Callable, Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax
from tqdm.auto import tqdm

from audit import parallel
from audit.errors import AuditInputError
from audit.results import Result
from audit.models import zoo
from audit.models._batching import step_blocks
from audit.models._model import Model
from audit.models._xla import jit as xla_jit


@dataclasses.dataclass(frozen=True)  # its own eq and hash: no arrays inside
class History(Result):
    """Per-epoch training record; `best_epoch` is the one whose weights were kept."""

    epochs: tuple[Mapping[str, Any], ...]  # per epoch: losses and accuracies (and the epoch number)
    best_epoch: int
    stopped_early: bool
    seconds: float
    settings: Mapping[str, Any]


def _class_weights(y: np.ndarray, n_classes: int, class_weight) -> np.ndarray:
    if class_weight is None:
        return np.ones(n_classes, np.float32)
    if isinstance(class_weight, str):
        if class_weight != "balanced":
            raise AuditInputError(f"class_weight {class_weight!r} must be 'balanced', a mapping or None.")
        counts = np.bincount(y, minlength=n_classes).astype(np.float64)
        return (len(y) / (n_classes * np.maximum(counts, 1))).astype(np.float32)
    weights = np.ones(n_classes, np.float32)
    for key, value in dict(class_weight).items():
        if not 0 <= int(key) < n_classes or not np.isfinite(value) or value < 0:
            raise AuditInputError(f"class_weight entry {key}: {value} needs a class id in "
                                  f"[0, {n_classes}) and a finite non-negative weight.")
        weights[int(key)] = value
    return weights


def _adversarial(adversarial, data):
    """Bind an adversarial-training recipe to the data (duck-typed: models sit below robustness)."""
    if adversarial is None:
        return None
    needed = ("prepare", "perturb", "objective", "needs_clean", "settings")
    missing = [name for name in needed if not hasattr(adversarial, name)]
    if missing:
        raise AuditInputError(f"adversarial must be a recipe such as audit.robustness.AdversarialTraining("
                              f"'pgd', eps=0.1); got {type(adversarial).__name__} without {missing}.")
    return adversarial.prepare(data)


def _linen_functional(module, data, seed: int):
    """A Linen module trained from a seeded init: `params` are trained, the other collections
    (batch_stats) are updated in training mode; dropout draws from a key carried in `rest`."""
    from audit.models._factory import linen_flags

    on, off = linen_flags(module, train=True), linen_flags(module, train=False)
    variables = dict(module.init(jax.random.key(seed), jnp.zeros((1, *data.input_shape), jnp.float32), **off))
    params = variables.pop("params")
    mutable = sorted(variables)

    def forward(params, rest, x, train):
        collections, key = rest
        if not train:
            return module.apply({"params": params, **collections}, x, **off), rest
        key, dropout = jax.random.split(key)
        logits, updated = module.apply({"params": params, **collections}, x, rngs={"dropout": dropout},
                                       mutable=mutable, **on)
        return logits, ({**collections, **updated}, key)

    def finish(params, rest):
        return module, {"params": params, **rest[0]}

    return forward, params, (variables, jax.random.key(seed + 1)), finish, ("linen", module)


def _functional(model, data=None, seed: int = 0) -> tuple[Any, Any, Any, Any, Any]:
    """(forward(params, rest, x, train) -> (logits, rest), params, rest, finish(params, rest), identity):
    `identity` is hashable and equal for two models whose `forward` computes the same function
    (the same architecture), so their compiled training steps can be shared (see `_steps`)."""
    from flax import linen, nnx

    if isinstance(model, Model):
        def forward(params, rest, x, train):
            return model.apply(params, x), rest

        return forward, model.params, None, lambda p, r: model.replace(params=p), ("model", model.apply)
    if isinstance(model, linen.Module):
        return _linen_functional(model, data, seed)
    if not isinstance(model, nnx.Module):
        raise AuditInputError(f"cannot train a {type(model).__name__}; pass an NNX module, a Linen "
                              "module, a zoo name ('mlp' or 'cnn') or an audit.Model.")
    module = nnx.clone(model)
    module.train()
    train_def, params, rest = nnx.split(module, nnx.Param, ...)
    evaluation = nnx.clone(module)
    evaluation.eval()
    eval_def = nnx.graphdef(evaluation)

    def forward(params, rest, x, train):
        m = nnx.merge(train_def if train else eval_def, params, rest, copy=True)
        logits = m(x)
        return logits, nnx.state(m, nnx.Not(nnx.Param))

    def finish(params, rest):
        return nnx.merge(train_def, params, rest)

    return forward, params, rest, finish, ("nnx", train_def, eval_def)


_STEPS: OrderedDict = OrderedDict()  # (identity, output, optimizer) -> _make_steps(...), most recent last
_MAX_STEPS = 8


def _steps(key: Any, make: Callable[[], tuple]) -> tuple:
    """The jitted (train_step, train_steps, evaluate) for `key`, made once: retraining the same
    architecture with the same optimizer (the mitigation analyzers train several models so, on
    resampled data of other sizes too) reuses the compiled steps instead of compiling them again.
    `key` None (or unhashable) makes fresh ones."""
    try:
        hash(key)
    except TypeError:
        key = None
    if key is None:
        return make()
    if key not in _STEPS:
        _STEPS[key] = make()
        while len(_STEPS) > _MAX_STEPS:
            _STEPS.popitem(last=False)
    _STEPS.move_to_end(key)
    return _STEPS[key]


def _warmup_cosine(peak: float, warmup: jax.Array, total: jax.Array) -> Callable:
    """`optax.warmup_cosine_decay_schedule(0.0, peak, warmup, total)` with the step counts traced
    (the same values, bit for bit, as optax's compiled schedule; a test checks): one compiled
    training step serves every data size and epoch count."""
    def linear(count):  # optax.linear_schedule(0.0, peak, warmup)
        count = jnp.clip(count - 0, 0, warmup)
        frac = 1 - count / warmup
        return (0.0 - peak) * (frac ** 1) + peak

    def cosine(count):  # optax.cosine_decay_schedule(peak, total - warmup)
        decay_steps = (total - warmup).astype(jnp.float32)
        count = jnp.minimum(count, decay_steps)
        # times the reciprocal: XLA compiles optax's division by a constant so, and the values match
        cosine_decay = 0.5 * (1 + jnp.cos(jnp.pi * count * (1.0 / decay_steps)))
        return peak * ((1 - 0.0) * cosine_decay ** 1.0 + 0.0)

    return lambda step: jnp.where(step < warmup, linear(step), cosine(step - warmup))  # optax.join_schedules


def _optimizer(learning_rate: float, weight_decay: float, warmup, total):
    """AdamW with a linear warm-up over `warmup` steps and cosine decay to 0 at `total` steps."""
    return optax.adamw(_warmup_cosine(learning_rate, warmup, total), weight_decay=weight_decay)


def _make_steps(forward: Callable, adv, learning_rate: float,
                weight_decay: float) -> tuple[Callable, Callable, Callable]:
    """Jitted (train_step, train_steps, evaluate) for a model's `forward`: one step, a compiled loop
    of steps, and the validation loss and accuracy. The schedule's step counts and the batch are
    arguments, so retraining on other data sizes or epochs reuses the compilation."""

    def per_example(params, rest, x, t, key, progress, train_mode):
        if adv is None:
            logits, rest = forward(params, rest, x, train_mode)
            return optax.softmax_cross_entropy_with_integer_labels(logits, t), rest
        attack_params = jax.lax.stop_gradient(params)
        x_adv = adv.perturb(lambda p, v: forward(p, rest, v, False)[0], attack_params, x, t, key, progress)
        if adv.needs_clean:
            logits, rest = forward(params, rest, jnp.concatenate([x, x_adv]), train_mode)
            clean, adversarial_logits = logits[: len(x)], logits[len(x):]
        else:
            (adversarial_logits, rest), clean = forward(params, rest, x_adv, train_mode), None
        return adv.objective(clean, adversarial_logits, t), rest

    def loss_fn(params, rest, x, t, w, key, progress):
        per, rest = per_example(params, rest, x, t, key, progress, True)
        return jnp.sum(w * per) / jnp.maximum(jnp.sum(w), 1e-12), rest

    def step(params, rest, opt_state, x, y, w, key, progress, warmup, total):
        (loss, rest), grads = jax.value_and_grad(loss_fn, has_aux=True)(params, rest, x, y, w, key, progress)
        updates, opt_state = _optimizer(learning_rate, weight_decay, warmup, total).update(grads, opt_state, params)
        return optax.apply_updates(params, updates), rest, opt_state, loss

    @xla_jit
    def train_steps(params, rest, opt_state, xs, ys, ws, base_key, first, count, progress, warmup, total):
        """The first `count` steps of the block xs, ys, ws, progress (leading axis; padded to one
        length, so every data size shares one compile) as one compiled loop. Step `first + i`
        draws its key as `fold_in(base_key, first + i)`, as the host loop does."""
        def body(i, carry):
            *state, losses = carry
            *state, loss = step(*state, xs[i], ys[i], ws[i], jax.random.fold_in(base_key, first + i), progress[i],
                                warmup, total)
            return (*state, losses.at[i].set(loss))

        return jax.lax.fori_loop(0, count, body, (params, rest, opt_state, jnp.zeros(len(xs), jnp.float32)))

    @xla_jit
    def evaluate(params, rest, X, y):
        logits, _ = forward(params, rest, X, False)
        ce = optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()
        return ce, (logits.argmax(-1) == y).mean()

    return xla_jit(step), train_steps, evaluate


def train(model: Any, data, *, epochs: int = 30, batch_size: int | None = None,
          learning_rate: float = 3e-3, weight_decay: float = 1e-4, patience: int = 5,
          class_weight: str | Mapping[int, float] | None = None,
          sample_weight: Sequence[float] | None = None, seed: int = 0, progress: bool = True,
          adversarial: Any = None, output: str = "logits", **zoo_config) -> Model:
    """Train `model` on `data.train` with AdamW (warm-up + cosine decay), seeded.

    `batch_size` defaults to 64 for images (fastest on CPU) and 128 for tabular data.
    `model` is a zoo name ("mlp", "cnn"; extra keyword arguments go to its config), an NNX
    module (copied, never mutated), a Linen module (initialised from `seed`; a `train` /
    `deterministic` argument of its `__call__` switches dropout and batch statistics) or an
    `audit.Model` (its params are trained). `output` says what the model returns ("logits",
    "probabilities", "sigmoid"; see `Model.from_function`). After each
    epoch the validation loss is measured; training stops after `patience` epochs without
    improvement and the best weights are restored. The same seed gives the same weights.
    `adversarial` (e.g. `audit.robustness.AdversarialTraining("pgd", eps=0.1)`) trains on
    adversarial examples made in each step: any object with `prepare(data)`, `perturb(apply_fn,
    params, x, y, key, progress)`, `objective(clean_logits, adv_logits, y)`, `needs_clean` and
    `settings()`. Early stopping then watches the adversarial validation loss (Rice et al. 2020).
    Returns a Model whose `metadata["training"]` holds the `History`.
    """
    if epochs < 1 or (batch_size is not None and batch_size < 1) or learning_rate <= 0 or patience < 1:
        raise AuditInputError("epochs, batch_size, patience and learning_rate must be positive.")
    if isinstance(model, str):
        model = zoo.for_data(data, seed=seed, **zoo_config)
    elif zoo_config:
        raise AuditInputError(f"config options {sorted(zoo_config)} only apply to a zoo name.")
    train_part = data.part("train")
    X, y = train_part.X, train_part.y
    weights = _class_weights(y, data.n_classes, class_weight)[y]
    if sample_weight is not None:
        sample_weight = np.asarray(sample_weight, np.float32)
        if sample_weight.shape != (len(y),) or not np.isfinite(sample_weight).all() or (sample_weight < 0).any():
            raise AuditInputError(f"sample_weight needs {len(y)} finite non-negative values "
                                  "(one per training row).")
        weights = weights * sample_weight
    batch_size = min(batch_size or (64 if data.kind == "image" else 128), len(y))
    steps = len(y) // batch_size
    forward, params, rest, finish, identity = _functional(model, data, seed)
    if output != "logits":
        from audit.models._output import check_output, to_logits

        check_output(output)
        raw_forward = forward

        def forward(params, rest, x, train):
            out, rest = raw_forward(params, rest, x, train)
            return to_logits(out, output), rest
    adv = _adversarial(adversarial, data)
    warmup, total_steps = max(1, steps // 2), max(2, epochs * steps)
    opt_state = _optimizer(learning_rate, weight_decay, warmup, total_steps).init(params)
    # Without an adversarial recipe the steps depend only on these: equal keys compute the same function.
    cache_key = None if adv is not None else (identity, output, float(learning_rate), float(weight_decay))
    train_step, train_steps, evaluate = _steps(cache_key,
                                               lambda: _make_steps(forward, adv, learning_rate, weight_decay))
    schedule = (np.int32(warmup), np.int32(total_steps))

    @xla_jit
    def evaluate_adversarial(params, rest, X, y, key):
        x_adv = adv.perturb(lambda p, v: forward(p, rest, v, False)[0], params, X, y, key, 1.0)
        logits, _ = forward(params, rest, x_adv, False)
        ce = optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()
        return ce, (logits.argmax(-1) == y).mean()

    has_val = len(data.splits.get("val", ())) > 0
    val = data.part("val") if has_val else None
    # Data-parallel on this process's devices (audit.parallel): params are copied to every device and
    # each step's batch (gathered on the host: the step's shapes do not depend on the data size) is
    # split over the mesh; jit partitions the step and the gradient mean over the batch becomes a mean
    # over devices. A batch that does not split evenly runs whole on every device (same result, no
    # speed-up). With several processes each trains the same model from the same seed.
    X, y, weights = np.asarray(X, np.float32), np.asarray(y, np.int32), np.asarray(weights, np.float32)
    params, rest, opt_state = parallel.replicate((params, rest, opt_state))
    split = parallel.shard_rows if batch_size % parallel.count() == 0 else (lambda rows: rows)
    # Flat inputs on one device train blocks of steps in one compiled loop (for an MLP the per-step
    # dispatch costs more than the step); images keep a host loop over one jitted step, on CPU
    # several times faster than lax.scan for conv nets.
    compiled_loop = X.ndim == 2 and parallel.count() == 1
    rng = np.random.default_rng(seed)
    best = (np.inf, 0, params, rest)
    base_key, total = jax.random.key(seed), max(1, epochs * steps)
    record, waited, start = [], 0, time.perf_counter()
    bar = tqdm(range(1, epochs + 1), desc=f"train {data.name}", disable=not progress, leave=False)
    for epoch in bar:
        order = rng.permutation(len(y))[: steps * batch_size].reshape(steps, batch_size)
        first = (epoch - 1) * steps
        progress_at = (np.arange(first, first + steps) / total).astype(np.float32)
        losses = []
        if compiled_loop:
            for lo, count, rows in step_blocks(order, X[0].nbytes):
                params, rest, opt_state, loss = train_steps(
                    params, rest, opt_state, X[rows], y[rows], weights[rows], base_key, np.int32(first + lo),
                    np.int32(count), parallel.pad_rows(progress_at[lo:lo + count], len(rows)), *schedule)
                losses.append(loss[:count])
        else:
            for i, rows in enumerate(order):
                params, rest, opt_state, loss = train_step(
                    params, rest, opt_state, split(X[rows]), split(y[rows]), split(weights[rows]),
                    jax.random.fold_in(base_key, first + i), progress_at[i], *schedule)
                losses.append(loss)
        epoch_losses = jnp.concatenate(losses) if compiled_loop else jnp.stack(losses)
        entry = {"epoch": epoch, "train_loss": float(jnp.mean(epoch_losses))}
        if has_val:
            val_loss, val_acc = evaluate(params, rest, val.X, val.y)
            entry.update(val_loss=float(val_loss), val_accuracy=float(val_acc))
            if adv is not None:
                robust_loss, robust_acc = evaluate_adversarial(params, rest, val.X, val.y,
                                                               jax.random.fold_in(jax.random.key(seed + 1), epoch))
                entry.update(val_robust_loss=float(robust_loss), val_robust_accuracy=float(robust_acc))
        record.append(entry)
        bar.set_postfix({k: round(v, 4) for k, v in entry.items() if k != "epoch"})
        score = entry.get("val_robust_loss", entry.get("val_loss", entry["train_loss"]))
        if not np.isfinite(score):
            raise AuditInputError(f"training diverged at epoch {epoch} (loss {score}); lower the "
                                  "learning_rate.")
        if score < best[0]:
            best, waited = (score, epoch, params, rest), 0
        elif has_val:
            waited += 1
            if waited >= patience:
                break
    bar.close()
    history = History(epochs=tuple(record), best_epoch=best[1], stopped_early=len(record) < epochs,
                      seconds=time.perf_counter() - start,
                      settings={"epochs": epochs, "batch_size": batch_size,
                                "learning_rate": learning_rate, "weight_decay": weight_decay,
                                "patience": patience, "seed": seed,
                                "class_weight": class_weight if isinstance(class_weight, (str, type(None)))
                                else {str(k): float(v) for k, v in dict(class_weight).items()},
                                "sample_weight": sample_weight is not None,
                                **({"adversarial": adv.settings()} if adv is not None else {})})
    trained = finish(*parallel.local(best[2:]))
    metadata = {"training": history.to_dict(),
                "data": {"name": data.name, "fingerprint": data.fingerprint(),
                         "input_shape": list(data.input_shape),
                         "feature_names": list(data.feature_names) if data.kind == "tabular" else []}}
    size = 512 if data.kind == "image" else 2048
    if isinstance(trained, Model):
        if output != "logits":
            return Model.from_function(trained.apply, trained.params, input_shape=trained.input_shape,
                                       class_names=trained.class_names, output=output,
                                       metadata={**trained.metadata, **metadata}, batch_size=trained.batch_size)
        return trained.replace(metadata={**trained.metadata, **metadata})
    if isinstance(trained, tuple):  # a Linen module and its variables
        from audit.models._factory import linen_model

        return linen_model(trained[0], trained[1], input_shape=data.input_shape, class_names=data.class_names,
                           output=output, metadata=metadata, batch_size=size)
    return Model.from_nnx(trained, input_shape=data.input_shape, class_names=data.class_names,
                          output=output, metadata=metadata, batch_size=size)
