"""Train the two example models with plain Optax and save them with Orbax, as a user would.

    python examples/user_model/train.py [--epochs 10] [--out examples/user_model/checkpoints]

Then audit them from YAML (the configs name the factories in models.py and these checkpoints):

    audit run examples/user_model/digits_cnn.yaml
    audit run examples/user_model/credit_mlp.yaml
"""

from __future__ import annotations

import argparse
import os
import sys

import jax
import jax.numpy as jnp
import numpy as np
import optax
import orbax.checkpoint as ocp
from flax import nnx

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from models import make_cnn, make_mlp  # noqa: E402

from audit import datasets  # noqa: E402  (only to get the bundled data as arrays)


def batches(n: int, size: int, rng: np.random.Generator):
    order = rng.permutation(n)
    for start in range(0, n - size + 1, size):
        yield order[start:start + size]


def train_cnn(epochs: int, out: str, seed: int = 0) -> None:
    """Linen: params trained with AdamW, batch_stats updated, dropout keyed; saved per epoch by a
    CheckpointManager (step folders), the audit reads the latest."""
    data = datasets.load("digits", seed=seed)
    train = data.part("train")
    module = make_cnn(data.n_classes)
    variables = module.init(jax.random.key(seed), jnp.zeros((1, *data.input_shape)))
    params, batch_stats = variables["params"], variables["batch_stats"]
    tx = optax.adamw(3e-3, weight_decay=1e-4)
    opt_state = tx.init(params)

    @jax.jit
    def step(params, batch_stats, opt_state, x, y, key):
        def loss_fn(p):
            logits, updates = module.apply({"params": p, "batch_stats": batch_stats}, x, train=True,
                                           rngs={"dropout": key}, mutable=["batch_stats"])
            return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean(), updates
        (loss, updates), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
        changes, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, changes), updates["batch_stats"], opt_state, loss

    manager = ocp.CheckpointManager(os.path.abspath(os.path.join(out, "digits_cnn")),
                                    options=ocp.CheckpointManagerOptions(max_to_keep=2))
    rng, key = np.random.default_rng(seed), jax.random.key(seed + 1)
    for epoch in range(1, epochs + 1):
        for rows in batches(len(train.y), 64, rng):
            key, sub = jax.random.split(key)
            params, batch_stats, opt_state, loss = step(params, batch_stats, opt_state, train.X[rows],
                                                        train.y[rows], sub)
        manager.save(epoch, args=ocp.args.StandardSave({"params": params, "batch_stats": batch_stats}))
    manager.wait_until_finished()
    test = data.part("test")
    logits = module.apply({"params": params, "batch_stats": batch_stats}, test.X)
    print(f"digits CNN: test accuracy {float((logits.argmax(-1) == test.y).mean()):.3f}")


def train_mlp(epochs: int, out: str, seed: int = 0) -> None:
    """NNX: a residual MLP with one sigmoid logit, trained with nnx.Optimizer; its parameters are
    saved with a StandardCheckpointer."""
    data = datasets.load("credit", n=4000, seed=seed, include_sensitive=True)
    train = data.part("train")
    model = make_mlp(data.input_shape, nnx.Rngs(params=seed, dropout=seed + 1))
    optimizer = nnx.Optimizer(model, optax.adamw(3e-3, weight_decay=1e-4), wrt=nnx.Param)

    @nnx.jit
    def step(model, optimizer, x, y):
        def loss_fn(model):
            return optax.sigmoid_binary_cross_entropy(model(x), y.astype(jnp.float32)).mean()
        loss, grads = nnx.value_and_grad(loss_fn)(model)
        optimizer.update(model, grads)
        return loss

    rng = np.random.default_rng(seed)
    model.train()
    for _ in range(epochs):
        for rows in batches(len(train.y), 128, rng):
            step(model, optimizer, jnp.asarray(train.X[rows]), jnp.asarray(train.y[rows]))
    model.eval()
    test = data.part("test")
    accuracy = float(((model(jnp.asarray(test.X)) > 0) == test.y).mean())
    print(f"credit residual MLP: test accuracy {accuracy:.3f}")
    path = os.path.abspath(os.path.join(out, "credit_mlp"))
    checkpointer = ocp.StandardCheckpointer()
    checkpointer.save(path, nnx.state(model, nnx.Param), force=True)
    checkpointer.wait_until_finished()


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "checkpoints"))
    args = parser.parse_args(argv)
    train_cnn(args.epochs, args.out)
    train_mlp(args.epochs, args.out)


if __name__ == "__main__":
    main()
