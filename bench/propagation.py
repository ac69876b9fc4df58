"""LRP, DeepLIFT and Grad-CAM for a JAX CNN against Captum on a PyTorch copy of the same weights.

    python bench/propagation.py [--images 256] [--batch 64]

Model: an MNIST-sized CNN (conv 32 - ReLU - max pool, conv 64 - ReLU - max pool, dense 128 -
ReLU, dense 10), random weights (the timing does not depend on training), 28x28 images in
[0, 1]. Both sides explain the same images in batches of `--batch`, float32, on the CPU; the
native side is compiled once before timing. Reported: milliseconds per image (best of 3) and
the largest difference between the two attributions. DeepLIFT is compared on the same net with
average pooling (Captum's max-pool rule drops a term and is not complete; see _lrp.py).
"""

from __future__ import annotations

import argparse
import pathlib
import sys
import time

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from audit import explain  # noqa: E402
from audit.models import Model, max_pool  # noqa: E402


class CNN(nn.Module):
    pool: str = "max"

    @nn.compact
    def __call__(self, x):
        pool = max_pool if self.pool == "max" else (lambda v: nn.avg_pool(v, (2, 2), strides=(2, 2)))
        x = pool(nn.relu(nn.Conv(32, (3, 3))(x)))
        x = pool(nn.relu(nn.Conv(64, (3, 3))(x)))
        x = nn.relu(nn.Dense(128)(x.reshape(x.shape[0], -1)))
        return nn.Dense(10)(x)


def torch_copy(params, pool: str):
    import torch
    from torch import nn as tnn

    class Net(tnn.Module):
        def __init__(self):
            super().__init__()
            P = tnn.MaxPool2d if pool == "max" else tnn.AvgPool2d
            self.conv1, self.relu1, self.pool1 = tnn.Conv2d(1, 32, 3, padding=1), tnn.ReLU(), P(2)
            self.conv2, self.relu2, self.pool2 = tnn.Conv2d(32, 64, 3, padding=1), tnn.ReLU(), P(2)
            self.fc1, self.relu3, self.fc2 = tnn.Linear(7 * 7 * 64, 128), tnn.ReLU(), tnn.Linear(128, 10)

        def forward(self, x):
            x = self.pool1(self.relu1(self.conv1(x)))
            x = self.pool2(self.relu2(self.conv2(x)))
            x = x.permute(0, 2, 3, 1).reshape(x.shape[0], -1)
            return self.fc2(self.relu3(self.fc1(x)))

    net = Net()
    t = lambda a: torch.tensor(np.asarray(a, np.float32))
    with torch.no_grad():
        for name, conv in (("Conv_0", net.conv1), ("Conv_1", net.conv2)):
            conv.weight.copy_(t(params[name]["kernel"]).permute(3, 2, 0, 1))
            conv.bias.copy_(t(params[name]["bias"]))
        for name, fc in (("Dense_0", net.fc1), ("Dense_1", net.fc2)):
            fc.weight.copy_(t(params[name]["kernel"]).T)
            fc.bias.copy_(t(params[name]["bias"]))
    return net.eval()


def best_of(fn, repeats: int = 3) -> float:
    fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main(argv=None) -> list[dict]:
    import torch
    from captum.attr import LRP, DeepLift, LayerGradCam

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=256)
    ap.add_argument("--batch", type=int, default=64)
    args = ap.parse_args(argv)
    torch.set_num_threads(max(1, torch.get_num_threads()))
    X = np.random.default_rng(0).uniform(0, 1, size=(args.images, 28, 28, 1)).astype(np.float32)
    Xt = torch.tensor(X).permute(0, 3, 1, 2).contiguous()
    rows = []
    for pool in ("max", "avg"):
        module = CNN(pool=pool)
        variables = module.init(jax.random.PRNGKey(0), jnp.zeros((1, 28, 28, 1)))
        model = Model.from_linen(module, variables, input_shape=(28, 28, 1), class_names=tuple("0123456789"))
        net = torch_copy(variables["params"], pool)
        t = model.predict(X).astype(np.int64)
        tt = torch.tensor(t)
        chunks = [slice(s, s + args.batch) for s in range(0, len(X), args.batch)]
        tasks = {}
        if pool == "max":
            tasks["LRP (epsilon)"] = (
                lambda: explain.lrp(model, X, target=t, batch_size=args.batch).values,
                lambda: np.concatenate([LRP(net).attribute(Xt[c], target=tt[c]).detach().permute(0, 2, 3, 1).numpy()
                                        for c in chunks]))
            tasks["Grad-CAM (last conv)"] = (
                lambda: explain.grad_cam(model, X, target=t, batch_size=args.batch).extras["cam"],
                lambda: np.concatenate([LayerGradCam(net, net.conv2).attribute(Xt[c], target=tt[c],
                                                                               relu_attributions=True)
                                        .detach().numpy()[:, 0] for c in chunks]))
        else:
            tasks["DeepLIFT (zero baseline)"] = (
                lambda: explain.deeplift(model, X, target=t, batch_size=args.batch).values,
                lambda: np.concatenate([DeepLift(net).attribute(Xt[c], baselines=torch.zeros_like(Xt[c]),
                                                                target=tt[c]).detach().permute(0, 2, 3, 1).numpy()
                                        for c in chunks]))
        for name, (ours, theirs) in tasks.items():
            diff = float(np.abs(ours() - theirs()).max())
            t_ours, t_theirs = best_of(ours), best_of(theirs)
            rows.append({"method": name, "pool": pool, "ours_ms": 1e3 * t_ours / len(X),
                         "captum_ms": 1e3 * t_theirs / len(X), "speedup": t_theirs / t_ours, "max_diff": diff})
            print(rows[-1], flush=True)
    print("\n| method | net pooling | native ms/image | Captum ms/image | speed-up | max |diff| |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['method']} | {r['pool']} | {r['ours_ms']:.2f} | {r['captum_ms']:.2f} | {r['speedup']:.1f}x | "
              f"{r['max_diff']:.1e} |")
    return rows


if __name__ == "__main__":
    main()
