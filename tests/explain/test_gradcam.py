"""Grad-CAM and Grad-CAM++: closed forms on a linear head, Captum's LayerGradCam on a PyTorch copy."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from audit import explain
from audit.errors import AuditInputError
from audit.models import Model


class ConvGap(nn.Module):
    """conv (the explained layer) -> global average pool -> dense: the score is linear in A."""

    @nn.compact
    def __call__(self, x):
        a = nn.Conv(3, (3, 3))(x)
        return nn.Dense(2)(a.mean(axis=(1, 2)))


def test_closed_forms_on_a_linear_head():
    module = ConvGap()
    variables = module.init(jax.random.PRNGKey(0), jnp.zeros((1, 6, 6, 2)))
    model = Model.from_linen(module, variables, input_shape=(6, 6, 2), class_names=("a", "b"))
    X = np.random.default_rng(0).uniform(0, 1, size=(4, 6, 6, 2)).astype(np.float32)
    p = variables["params"]
    acts = np.asarray(nn.Conv(3, (3, 3)).apply({"params": p["Conv_0"]}, X), np.float64)
    c = np.asarray(p["Dense_0"]["kernel"], np.float64)[:, 1] / 36.0  # d score / d A_k at every position
    cam = explain.grad_cam(model, X, target=1)
    expected = np.maximum(np.einsum("nhwk,k->nhw", acts, c), 0.0)
    np.testing.assert_allclose(cam.extras["cam"], expected, rtol=1e-4, atol=1e-6)
    assert cam.values.shape == X.shape and cam.method == "grad_cam"
    pp = explain.grad_cam(model, X, target=1, method="gradcam++")
    s = acts.sum(axis=(1, 2))  # (n, k)
    alpha = c ** 2 / (2 * c ** 2 + s * c ** 3 + 1e-7)
    w = 36.0 * np.maximum(c, 0) * alpha
    np.testing.assert_allclose(pp.extras["cam"], np.maximum(np.einsum("nhwk,nk->nhw", acts, w), 0.0),
                               rtol=1e-4, atol=1e-6)


def test_bad_input():
    dense = Model.from_function(lambda p, x: x.reshape(len(x), -1) @ p, jnp.ones((8, 2)), input_shape=(2, 2, 2),
                                class_names=("a", "b"))
    X = np.ones((1, 2, 2, 2), np.float32)
    with pytest.raises(AuditInputError, match="convolutional"):
        explain.grad_cam(dense, X)
    with pytest.raises(AuditInputError, match="method"):
        explain.grad_cam(dense, X, method="cam")


torch = pytest.importorskip("torch")
captum_attr = pytest.importorskip("captum.attr")


def test_grad_cam_equals_captum_layer_grad_cam():
    from tests.explain.test_lrp import cnn, images, to_torch, torch_copy

    model, variables = cnn()
    net = torch_copy(variables)
    X = images(4)
    t = np.array([0, 2, 1, 1])
    ours = explain.grad_cam(model, X, target=t, layer=-1)
    theirs = captum_attr.LayerGradCam(net, net.conv2).attribute(to_torch(X), target=torch.tensor(t),
                                                                relu_attributions=True)
    np.testing.assert_allclose(ours.extras["cam"], theirs.detach().numpy()[:, 0], atol=1e-5, rtol=1e-4)
    with pytest.raises(AuditInputError, match="conv layers"):
        explain.grad_cam(model, X, layer=2)
