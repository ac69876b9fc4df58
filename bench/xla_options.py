"""The gradient rewrites and compile options behind audit/models/_xla.py, measured on this machine.

    python bench/xla_options.py [--rounds 7]

For each model (the zoo MNIST CNN, a Linen CNN written as users write it, the zoo credit MLP), one
jitted forward pass and one jitted input gradient of the cross-entropy, batches of 64 images or
512 rows, interleaved in rotating order (best of the rounds), microseconds per row:
- *as written*: the user's apply, no jaxpr rewrite (`fast_gradients=False`), XLA's defaults;
- *rewritten*: `Model`'s apply (pool and few-channel convolution VJPs), XLA's defaults;
- *rewritten + audit options*: what the audit runs (`_xla.options_for(model)`, per kind);
- *rewritten + YNNPACK off*: every YNNPACK fusion off, the other candidate.
Gradients of every variant are compared with the as-written one (max relative difference).
The load average is printed: quote ratios from one run.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import sys

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

from audit import Model  # noqa: E402
from audit.models import _xla, zoo  # noqa: E402
from user_models import UserCNN, load, race  # noqa: E402


def models() -> list[tuple[str, Model, int]]:
    classes = [str(i) for i in range(10)]
    cnn = Model.from_nnx(zoo.build("cnn", {"input_shape": [28, 28, 1], "n_classes": 10}),
                         input_shape=(28, 28, 1), class_names=classes)
    module = UserCNN()
    variables = module.init(jax.random.key(0), jnp.zeros((2, 28, 28, 1)))
    linen = Model.from_linen(module, variables, input_shape=(28, 28, 1), class_names=classes)
    mlp = Model.from_nnx(zoo.build("mlp", {"in_features": 30, "n_classes": 2, "widths": [64, 32]}),
                         input_shape=(30,), class_names=("no", "yes"))
    return [("zoo CNN (MNIST)", cnn, 64), ("user Linen CNN (nn.max_pool, BatchNorm)", linen, 64),
            ("zoo MLP (64, 32)", mlp, 512)]


def variants(model: Model) -> dict[str, tuple[Model, dict, dict]]:
    """label -> (model, forward options, gradient options)."""
    off, audit = {_xla.FUSION_FLAG: ""}, _xla.options_for(model)
    return {"as written": (model.replace(fast_gradients=False), {}, {}), "rewritten": (model, {}, {}),
            "rewritten + audit options": (model, audit["forward"], audit["gradient"]),
            "rewritten + YNNPACK off": (model, off, off)}


def _kw(options: dict) -> dict:
    return {"compiler_options": options} if options else {}


def _shown(options: dict) -> str:
    """YNNPACK fusion types of `options` in short: defaults, none, or the types kept."""
    if not options:
        return "defaults"
    return options[_xla.FUSION_FLAG].replace("LIBRARY_FUSION_TYPE_", "").lower() or "none"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=7)
    args = ap.parse_args(argv)
    print(f"{load()}, {os.cpu_count()} cores, jax {jax.__version__}, backend {jax.default_backend()}")
    print("| model | variant | YNNPACK fusions forward / gradient | forward us/row | gradient us/row | max rel. gradient diff |")
    print("|---|---|---|---:|---:|---:|")
    for name, model, batch in models():
        x = jnp.asarray(np.random.default_rng(0).uniform(size=(batch, *model.input_shape)), jnp.float32)
        y = jnp.asarray(np.arange(batch) % model.n_classes, jnp.int32)
        fns, grads = {}, {}
        for label, (m, fwd_options, grad_options) in variants(model).items():
            def loss(v, m=m):
                logits = m.apply(m.params, v)
                return -jnp.sum(jnp.take_along_axis(jax.nn.log_softmax(logits), y[:, None], 1))
            fwd = jax.jit(lambda v, m=m: m.apply(m.params, v), **_kw(fwd_options))
            grad = jax.jit(jax.grad(loss), **_kw(grad_options))
            fns[(label, "forward")] = lambda f=fwd: f(x)
            fns[(label, "gradient")] = lambda f=grad: f(x)
            grads[label] = np.asarray(grad(x))
        best = race(fns, args.rounds)
        ref = grads["as written"]
        for label, (_, fwd_options, grad_options) in variants(model).items():
            diff = float(np.abs(grads[label] - ref).max() / max(np.abs(ref).max(), 1e-30))
            shown = f"{_shown(fwd_options)} / {_shown(grad_options)}"
            print(f"| {name} | {label} | {shown} | {1e6 * best[(label, 'forward')] / batch:.1f} | "
                  f"{1e6 * best[(label, 'gradient')] / batch:.1f} | {diff:.1e} |")
    print(load())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
