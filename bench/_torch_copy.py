"""PyTorch copies of the zoo models (weights copied), shared by the benchmarks that time a torch peer."""

from __future__ import annotations

import numpy as np


def _np(v):
    return np.asarray(v.value if hasattr(v, "value") else v)


def torch_copy(model, kind: str):
    """A PyTorch module computing the same logits as the zoo model (weights copied)."""
    import torch
    from torch import nn

    p = model.params
    if kind == "cnn":
        c1, c2 = _np(p["conv1"]["kernel"]), _np(p["conv2"]["kernel"])

        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.conv1 = nn.Conv2d(c1.shape[2], c1.shape[3], 3, padding=1)
                self.conv2 = nn.Conv2d(c2.shape[2], c2.shape[3], 3, padding=1)
                self.dense = nn.Linear(*_np(p["dense"]["kernel"]).shape)
                self.head = nn.Linear(*_np(p["head"]["kernel"]).shape)

            def forward(self, x):  # NCHW in; flatten in NHWC order like the JAX model
                x = nn.functional.max_pool2d(torch.relu(self.conv1(x)), 2)
                x = nn.functional.max_pool2d(torch.relu(self.conv2(x)), 2)
                x = x.permute(0, 2, 3, 1).reshape(x.shape[0], -1)
                return self.head(torch.relu(self.dense(x)))

        net = Net()
        with torch.no_grad():
            for name in ("conv1", "conv2"):
                getattr(net, name).weight.copy_(torch.from_numpy(_np(p[name]["kernel"]).transpose(3, 2, 0, 1).copy()))
                getattr(net, name).bias.copy_(torch.from_numpy(_np(p[name]["bias"])))
            for name in ("dense", "head"):
                getattr(net, name).weight.copy_(torch.from_numpy(_np(p[name]["kernel"]).T.copy()))
                getattr(net, name).bias.copy_(torch.from_numpy(_np(p[name]["bias"])))
        return net.eval()
    layers = []
    for i in range(len(p["layers"])):
        k = _np(p["layers"][i]["kernel"])
        lin = nn.Linear(*k.shape)
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(k.T.copy()))
            lin.bias.copy_(torch.from_numpy(_np(p["layers"][i]["bias"])))
        layers += [lin, nn.ReLU()]
    head = nn.Linear(*_np(p["head"]["kernel"]).shape)
    with torch.no_grad():
        head.weight.copy_(torch.from_numpy(_np(p["head"]["kernel"]).T.copy()))
        head.bias.copy_(torch.from_numpy(_np(p["head"]["bias"])))
    return nn.Sequential(*layers, head).eval()
