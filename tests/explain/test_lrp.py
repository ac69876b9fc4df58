"""LRP and DeepLIFT: conservation, closed forms, batch norm merged, and Captum on a PyTorch copy."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from audit import explain
from audit.errors import AuditInputError
from audit.models import Model, max_pool


class SmallCNN(nn.Module):
    """conv-ReLU-maxpool, conv-ReLU-avgpool, dense-ReLU, dense (Linen: any Flax model works)."""

    bias: bool = True
    first_pool: str = "max"

    @nn.compact
    def __call__(self, x):
        x = nn.relu(nn.Conv(4, (3, 3), use_bias=self.bias)(x))
        x = max_pool(x) if self.first_pool == "max" else nn.avg_pool(x, (2, 2), strides=(2, 2))
        x = nn.relu(nn.Conv(6, (3, 3), use_bias=self.bias)(x))
        x = nn.avg_pool(x, (2, 2), strides=(2, 2))
        x = x.reshape(x.shape[0], -1)
        x = nn.relu(nn.Dense(10, use_bias=self.bias)(x))
        return nn.Dense(3, use_bias=self.bias)(x)


def cnn(bias: bool = True, seed: int = 0, first_pool: str = "max") -> tuple[Model, dict]:
    module = SmallCNN(bias=bias, first_pool=first_pool)
    variables = module.init(jax.random.PRNGKey(seed), jnp.zeros((1, 8, 8, 2)))
    # positive-leaning biases so that ReLUs are neither all on nor all off
    variables = jax.tree_util.tree_map(lambda v: v + 0.05 if v.ndim == 1 else v, variables)
    return Model.from_linen(module, variables, input_shape=(8, 8, 2), class_names=("a", "b", "c")), variables


def images(n: int = 5, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0, 1, size=(n, 8, 8, 2)).astype(np.float32)


def test_walker_finds_the_layers_of_a_linen_cnn():
    model, _ = cnn()
    res = explain.lrp(model, images(2))
    assert res.provenance.settings["layers"] == ["conv", "conv", "pool", "dense", "dense"]


def test_lrp0_conserves_relevance_without_biases_and_equals_gradient_x_input():
    model, _ = cnn(bias=False)
    X = images()
    res = explain.lrp(model, X, rule="epsilon", epsilon=0.0)
    np.testing.assert_allclose(res.extras["relevance_sum"], res.extras["output"], rtol=1e-4, atol=1e-6)
    # LRP-0 on a ReLU network is Gradient x Input (Ancona et al. 2018)
    gxi = explain.gradient_x_input(model, X, target=res.target)
    np.testing.assert_allclose(res.values, gxi.values, atol=1e-5)


def test_zplus_and_gamma_conserve_without_biases_and_zplus_is_non_negative():
    model, _ = cnn(bias=False)
    X = images()
    for rule in ("zplus", "gamma"):
        r = explain.lrp(model, X, rule=rule)
        np.testing.assert_allclose(r.extras["relevance_sum"], r.extras["output"], rtol=1e-4)
    zp = explain.lrp(model, X, rule="zplus", target=0)
    pos = zp.extras["output"] > 0
    assert (zp.values[pos] >= -1e-7).all()  # positive relevance from positive inputs only


def test_alpha_beta_reduces_to_zplus_and_scales_with_alpha_on_positive_networks():
    """On non-negative inputs with no bias, alpha=1, beta=0 is the z+ rule; alpha=2, beta=1 keeps
    the positive part doubled minus the negative part (zennit's AlphaBeta)."""
    model, _ = cnn(bias=False)
    X = images()
    layers = {"conv": "alpha_beta", "dense": "alpha_beta", "pool": "epsilon"}
    ab = explain.lrp(model, X, rule=layers, alpha=1.0, beta=0.0)
    zp = explain.lrp(model, X, rule={"conv": "zplus", "dense": "zplus", "pool": "epsilon"})
    np.testing.assert_allclose(ab.values, zp.values, rtol=1e-5, atol=1e-8)
    two = explain.lrp(model, X, rule=layers, alpha=2.0, beta=1.0)
    assert np.isfinite(two.values).all() and not np.allclose(two.values, zp.values)


def test_batch_norm_is_merged_into_the_dense_layer_before_it():
    rng = np.random.default_rng(0)
    w, b = rng.normal(size=(4, 5)).astype(np.float32), rng.normal(size=5).astype(np.float32)
    scale, shift = rng.uniform(0.5, 2, 5).astype(np.float32) * np.sign(rng.normal(size=5)).astype(np.float32), \
        rng.normal(size=5).astype(np.float32)
    w2 = rng.normal(size=(5, 2)).astype(np.float32)
    mean, var = rng.normal(size=5).astype(np.float32), rng.uniform(0.5, 2, 5).astype(np.float32)

    def bn_net(p, x):
        z = x @ p["w"] + p["b"]
        z = (z - p["mean"]) / jnp.sqrt(p["var"] + 1e-5) * p["scale"] + p["shift"]
        return jax.nn.relu(z) @ p["w2"]

    s = scale / np.sqrt(var + 1e-5)
    merged = {"w": w * s, "b": (b - mean) * s + shift, "w2": w2}
    params = {"w": w, "b": b, "mean": mean, "var": var, "scale": scale, "shift": shift, "w2": w2}
    a = Model.from_function(bn_net, params, input_shape=(4,), class_names=("x", "y"))
    m = Model.from_function(lambda p, x: jax.nn.relu(x @ p["w"] + p["b"]) @ p["w2"], merged, input_shape=(4,),
                            class_names=("x", "y"))
    X = rng.normal(size=(6, 4)).astype(np.float32)
    for rule in ("epsilon", "gamma", "zplus", "alpha_beta"):
        ra = explain.lrp(a, X, rule=rule, target=1, epsilon=0.01)
        rm = explain.lrp(m, X, rule=rule, target=1, epsilon=0.01)
        np.testing.assert_allclose(ra.values, rm.values, rtol=2e-4, atol=2e-5, err_msg=rule)


def test_deeplift_is_complete_and_exact_on_a_linear_model(linear_model):
    model, _ = cnn()
    X = images()
    base = np.full((8, 8, 2), 0.3, np.float32)
    d = explain.deeplift(model, X, baseline=base)
    np.testing.assert_allclose(d.extras["completeness_error"], 0.0, atol=2e-5)
    assert d.completeness_error() < 1e-4
    Xl = np.random.default_rng(0).normal(size=(4, 5)).astype(np.float32)
    dl = explain.deeplift(linear_model, Xl, target=1)
    np.testing.assert_allclose(dl.values, Xl * np.array([1.5, -2.0, 0.5, 0.0, 3.0]), rtol=1e-5, atol=1e-6)


def test_batched_equals_one_at_a_time_and_bad_input():
    model, _ = cnn()
    X = images(5)
    whole = explain.lrp(model, X, rule="gamma", batch_size=2)
    for i in range(5):
        np.testing.assert_allclose(explain.lrp(model, X[i:i + 1], rule="gamma", target=whole.target[i:i + 1]).values[0],
                                   whole.values[i], atol=1e-6)
    with pytest.raises(AuditInputError, match="unknown LRP rule"):
        explain.lrp(model, X, rule="magic")
    with pytest.raises(AuditInputError, match="layer kinds"):
        explain.lrp(model, X, rule={"lstm": "epsilon"})
    attention = Model.from_function(lambda p, x: (x * x) @ p, jnp.ones((3, 2)), input_shape=(3,),
                                    class_names=("a", "b"))
    with pytest.raises(AuditInputError, match="mul"):
        explain.lrp(attention, np.ones((2, 3), np.float32))


# ---- Captum on a PyTorch copy of the same weights -------------------------------------------
torch = pytest.importorskip("torch")
captum_attr = pytest.importorskip("captum.attr")


def torch_copy(variables, first_pool: str = "max"):
    from torch import nn as tnn

    p = variables["params"]

    class Net(tnn.Module):
        def __init__(self):
            super().__init__()
            self.conv1, self.relu1 = tnn.Conv2d(2, 4, 3, padding=1), tnn.ReLU()
            self.pool1 = tnn.MaxPool2d(2) if first_pool == "max" else tnn.AvgPool2d(2)
            self.conv2, self.relu2, self.pool2 = tnn.Conv2d(4, 6, 3, padding=1), tnn.ReLU(), tnn.AvgPool2d(2)
            self.fc1, self.relu3, self.fc2 = tnn.Linear(24, 10), tnn.ReLU(), tnn.Linear(10, 3)

        def forward(self, x):
            x = self.pool1(self.relu1(self.conv1(x)))
            x = self.pool2(self.relu2(self.conv2(x)))
            x = x.permute(0, 2, 3, 1).reshape(x.shape[0], -1)  # NHWC flattening, as in JAX
            return self.fc2(self.relu3(self.fc1(x)))

    net = Net().double()
    t = lambda a: torch.tensor(np.asarray(a, np.float64))
    with torch.no_grad():
        for name, conv in (("Conv_0", net.conv1), ("Conv_1", net.conv2)):
            conv.weight.copy_(t(p[name]["kernel"]).permute(3, 2, 0, 1))
            conv.bias.copy_(t(p[name]["bias"]))
        for name, fc in (("Dense_0", net.fc1), ("Dense_1", net.fc2)):
            fc.weight.copy_(t(p[name]["kernel"]).T)
            fc.bias.copy_(t(p[name]["bias"]))
    return net.eval()


def to_torch(X):
    return torch.tensor(X.astype(np.float64)).permute(0, 3, 1, 2)


def from_torch(a):
    return a.detach().permute(0, 2, 3, 1).numpy()


@pytest.mark.parametrize("rule, captum_rule", [("epsilon", "EpsilonRule"), ("gamma", "GammaRule"),
                                               ("zplus", "Alpha1_Beta0_Rule")])
def test_lrp_equals_captum(rule, captum_rule):
    from captum.attr._utils import lrp_rules

    model, variables = cnn()
    net = torch_copy(variables)
    X = images(4)
    t = np.array([0, 1, 2, 1])
    for layer in (net.conv1, net.conv2, net.fc1, net.fc2):
        layer.rule = getattr(lrp_rules, captum_rule)()
    ours = explain.lrp(model, X, target=t, rule={"conv": rule, "dense": rule, "pool": "epsilon"})
    theirs = from_torch(captum_attr.LRP(net).attribute(to_torch(X), target=torch.tensor(t)))
    np.testing.assert_allclose(ours.values, theirs, atol=1e-5, rtol=1e-4)


def test_deeplift_equals_captum():
    """Without max pooling (Captum's max-pool rule drops the reference-side term and is not
    complete: on the max-pool net its attributions miss f(x) - f(ref) by ~1e-3, ours by 1e-8)."""
    model, variables = cnn(first_pool="avg")
    net = torch_copy(variables, "avg")
    X = images(4)
    base = np.full((4, 8, 8, 2), 0.2, np.float32)
    t = np.array([2, 0, 1, 1])
    ours = explain.deeplift(model, X, target=t, baseline=base[0])
    theirs = from_torch(captum_attr.DeepLift(net).attribute(to_torch(X), baselines=to_torch(base),
                                                            target=torch.tensor(t)))
    np.testing.assert_allclose(ours.values, theirs, atol=1e-5, rtol=1e-4)


def test_zoo_nnx_cnn_with_dropout_and_the_custom_max_pool():
    from audit.models import zoo

    module = zoo.build("cnn", {"input_shape": (8, 8, 1), "n_classes": 3, "channels": (3, 4), "hidden": 6})
    model = Model.from_nnx(module, input_shape=(8, 8, 1), class_names=("a", "b", "c"))
    X = np.random.default_rng(0).uniform(0, 1, size=(3, 8, 8, 1)).astype(np.float32)
    from audit.explain._jaxpr_layers import trace

    assert trace(model.apply, model.params, model.input_shape, batch=3).kinds() == ["conv", "conv", "dense", "dense"]
    d = explain.deeplift(model, X)  # one compilation: the walker read NNX, dropout and the custom pool
    np.testing.assert_allclose(d.extras["completeness_error"], 0.0, atol=1e-5)
