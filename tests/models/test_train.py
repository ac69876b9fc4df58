import jax
import numpy as np
import optax
import pytest

from audit import AuditInputError, datasets
from audit.data import Dataset, stratified_split
from audit.models import History, Model, train


def test_credit_mlp_beats_the_majority_rate(credit_small, credit_model):
    test = credit_small.test
    majority = 1 - test.y.mean()
    assert credit_model.accuracy(test.X, test.y) > majority + 0.02
    history = History.from_dict(credit_model.metadata["training"])
    assert 1 <= history.best_epoch <= len(history.epochs)
    assert {"train_loss", "val_loss", "val_accuracy"} <= set(history.epochs[0])


def test_digits_cnn_learns(digits, digits_cnn):
    assert digits_cnn.accuracy(digits.test.X, digits.test.y) > 0.85


def test_same_seed_same_weights_and_other_seed_differs(credit_small):
    runs = [train("mlp", credit_small, epochs=2, seed=s, progress=False) for s in (3, 3, 4)]
    same = jax.tree.leaves(runs[0].params), jax.tree.leaves(runs[1].params)
    assert all(np.array_equal(a, b) for a, b in zip(*same))
    assert runs[0].fingerprint() != runs[2].fingerprint()


def test_early_stopping_restores_the_best_epoch(credit_small):
    model = train("mlp", credit_small, epochs=40, patience=2, learning_rate=0.05, progress=False)
    history = model.metadata["training"]
    losses = [e["val_loss"] for e in history["epochs"]]
    assert history["stopped_early"] and history["best_epoch"] == int(np.argmin(losses)) + 1
    val = credit_small.val
    ce = optax.softmax_cross_entropy_with_integer_labels(model.logits(val.X), val.y).mean()
    assert abs(float(ce) - min(losses)) < 1e-4


def test_class_weights_raise_minority_recall(credit_small):
    test = credit_small.test
    plain = train("mlp", credit_small, epochs=6, progress=False)
    weighted = train("mlp", credit_small, epochs=6, class_weight="balanced", progress=False)
    recall = lambda m: (m.predict(test.X)[test.y == 1] == 1).mean()
    assert recall(weighted) > recall(plain) + 0.05


def test_zero_sample_weights_ignore_rows(credit_small):
    n = len(credit_small.splits["train"])
    weights = np.ones(n)
    weights[: n // 2] = 0
    a = train("mlp", credit_small, epochs=1, sample_weight=weights, progress=False)
    assert a.metadata["training"]["settings"]["sample_weight"] is True
    with pytest.raises(AuditInputError, match="sample_weight needs"):
        train("mlp", credit_small, epochs=1, sample_weight=np.ones(3), progress=False)


def test_training_a_function_model(linear_model):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 5)).astype(np.float32)
    y = (X @ np.array([-1, 1, 0, 2, 0]) > 0).astype(int)
    ds = Dataset(X=X, y=y, feature_names=tuple("abcde"), class_names=("neg", "pos"),
                 splits=stratified_split(y, seed=0))
    trained = train(linear_model, ds, epochs=30, batch_size=16, learning_rate=0.05, progress=False)
    assert isinstance(trained, Model)
    assert trained.accuracy(ds.test.X, ds.test.y) > 0.9 > linear_model.accuracy(ds.test.X, ds.test.y)


def test_bad_settings():
    data = datasets.load("credit", n=300)
    with pytest.raises(AuditInputError, match="must be positive"):
        train("mlp", data, epochs=0)
    with pytest.raises(AuditInputError, match="class_weight 'equal'"):
        train("mlp", data, class_weight="equal")
    with pytest.raises(AuditInputError, match="unknown keys"):
        train("mlp", data, depth=3)


def _stateful_linen(n_classes):
    import flax.linen as nn

    class Net(nn.Module):  # batch statistics and dropout: state and keys carried through the loop
        @nn.compact
        def __call__(self, x, train: bool = False):
            x = nn.BatchNorm(use_running_average=not train)(nn.Dense(8)(x))
            return nn.Dense(n_classes)(nn.Dropout(0.2, deterministic=not train)(nn.relu(x)))

    return Net()


def _dropout_nnx(d, n_classes):
    from flax import nnx

    class Net(nnx.Module):
        def __init__(self, rngs):
            self.a, self.b = nnx.Linear(d, 8, rngs=rngs), nnx.Linear(8, n_classes, rngs=rngs)
            self.drop = nnx.Dropout(0.2, rngs=rngs)

        def __call__(self, x):
            return self.b(self.drop(jax.nn.relu(self.a(x))))

    return Net(nnx.Rngs(0))


@pytest.mark.parametrize("kind", ["zoo", "linen", "nnx", "adversarial"])
def test_compiled_loop_of_steps_trains_bit_for_bit_as_the_host_loop(credit_small, monkeypatch, kind):
    """Flat inputs train blocks of steps in one compiled loop (padded blocks, a dynamic count); the
    weights and losses must be exactly those of the host loop over the jitted step, for the zoo MLP,
    user modules that carry state and dropout keys, and adversarial training (each step's key and
    eps warm-up progress)."""
    from audit import parallel
    from audit.robustness import AdversarialTraining

    d, k = credit_small.input_shape[0], credit_small.n_classes
    make = {"linen": lambda: _stateful_linen(k), "nnx": lambda: _dropout_nnx(d, k)}.get(kind, lambda: "mlp")
    options = dict(epochs=3, seed=0, progress=False, batch_size=16,
                   **({"widths": (8,)} if kind in ("zoo", "adversarial") else {}),
                   **({"adversarial": AdversarialTraining("fgsm", eps=0.2, warmup=0.5)}
                      if kind == "adversarial" else {}))
    a = train(make(), credit_small, **options)
    monkeypatch.setattr(parallel, "count", lambda: 2)  # any second device turns the compiled loop off
    monkeypatch.setattr(parallel, "shard_rows", lambda rows: rows)
    monkeypatch.setattr(parallel, "replicate", lambda tree: tree)
    monkeypatch.setattr(parallel, "local", lambda tree: tree)
    b = train(make(), credit_small, **options)
    leaves_a, leaves_b = jax.tree.leaves(a.params), jax.tree.leaves(b.params)
    assert leaves_a and len(leaves_a) == len(leaves_b)
    for u, v in zip(leaves_a, leaves_b):
        np.testing.assert_array_equal(np.asarray(u), np.asarray(v))
    assert a.metadata["training"]["epochs"] == b.metadata["training"]["epochs"]


def test_traced_schedule_is_optax_schedule_bit_for_bit():
    """The training step takes the schedule's step counts as arguments; its learning rates must be
    the values optax's compiled warmup-cosine schedule gives."""
    import jax.numpy as jnp

    from audit.models._train import _warmup_cosine

    ours = jax.jit(lambda c, w, t: jax.vmap(_warmup_cosine(3e-3, w, t))(c))
    for warmup, total in ((1, 2), (46, 1395), (93, 2790), (7, 40), (500, 2101)):
        counts = jnp.arange(total + 3)
        ref = jax.jit(jax.vmap(optax.warmup_cosine_decay_schedule(0.0, 3e-3, warmup, total)))(counts)
        np.testing.assert_array_equal(np.asarray(ours(counts, np.int32(warmup), np.int32(total))), np.asarray(ref))


def test_retraining_other_sizes_and_epochs_reuses_the_compiled_step(credit_small):
    """Retrains of one architecture and optimizer (the mitigations' resampled data, other epochs)
    share one compiled training step; different seeds still give different weights."""
    from audit.models import _train

    _train._STEPS.clear()
    small = credit_small.select(np.arange(len(credit_small.X) // 2))  # other rows, steps and schedule
    a = train("mlp", credit_small, epochs=2, seed=0, progress=False, widths=(8,))
    train("mlp", small, epochs=3, seed=0, progress=False, widths=(8,))
    assert len(_train._STEPS) == 1
    step, steps, _ = next(iter(_train._STEPS.values()))
    assert steps._cache_size() == 1  # flat inputs: blocks of steps in one compiled loop, one length
    assert step._cache_size() == 0
    b = train("mlp", credit_small, epochs=2, seed=1, progress=False, widths=(8,))
    assert not np.array_equal(np.asarray(jax.tree.leaves(a.params)[0]), np.asarray(jax.tree.leaves(b.params)[0]))
