"""Grad-CAM and Grad-CAM++ for convolutional JAX models, from the model's own jaxpr.

Grad-CAM (Selvaraju et al. 2017): the class score's gradient with respect to a conv layer's
output A (n, h, w, k), averaged over positions, weights the layer's channels; the map is
ReLU(sum_k w_k A_k), upsampled (bilinear) to the input. Grad-CAM++ (Chattopadhyay et al. 2018)
weights each position's positive gradient by alpha = g^2 / (2 g^2 + sum_ab A g^3), as
pytorch-grad-cam does. The layer is found by walking the jaxpr (`_jaxpr_layers`), so any Flax
model works; `layer` picks a conv layer by its position (default the last one).
"""

from __future__ import annotations

import functools
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

from audit.errors import AuditInputError
from audit.explain._attribution import Attribution
from audit.explain._jaxpr_layers import Program, apply_layer, run
from audit.explain._lrp import BATCH, _batched, _get_program
from audit.explain._saliency import check_inputs, targets
from audit.results import Provenance, timer
from audit.models._xla import jit as xla_jit

METHODS = ("gradcam", "gradcam++")


@functools.lru_cache(maxsize=16)
def _cam_fn(prog: Program, layer: int, method: str, input_hw: tuple[int, int]) -> Callable:
    conv = [L for L in prog.layers.values() if L.kind == "conv"][layer]

    def cam(x, t):
        record: dict = {}
        run(prog, x, record=record)
        acts = record[conv.out]

        def score(delta):
            hook = lambda L, a: apply_layer(prog, L, a) + (delta if L is conv else 0.0)
            out = run(prog, x, layer=hook)
            return jnp.take_along_axis(out, t[:, None], axis=1).sum()

        g = jax.grad(score)(jnp.zeros_like(acts))  # (n, h, w, k): NHWC as the model computes
        if method == "gradcam":
            w = g.mean(axis=(1, 2))
        else:
            g2, g3 = g ** 2, g ** 3
            alpha = g2 / (2 * g2 + acts.sum(axis=(1, 2), keepdims=True) * g3 + 1e-7)
            alpha = jnp.where(g != 0, alpha, 0.0)
            w = (jnp.maximum(g, 0) * alpha).sum(axis=(1, 2))
        maps = jax.nn.relu(jnp.einsum("nhwk,nk->nhw", acts, w))
        up = jax.image.resize(maps, (maps.shape[0], *input_hw), "bilinear")
        return up, maps

    return xla_jit(cam)


def grad_cam(model, X: Any, *, target: Any = None, layer: int = -1, method: str = "gradcam",
             batch_size: int = BATCH) -> Attribution:
    """Grad-CAM ("gradcam") or Grad-CAM++ ("gradcam++") maps of images X for the explained class
    (default: the predicted one), at conv layer number `layer` (default the last), upsampled to
    the input and repeated over its channels; `extras["cam"]` keeps the layer-resolution map."""
    X = check_inputs(model, X)
    if method not in METHODS:
        raise AuditInputError(f"method={method!r}; choose one of {list(METHODS)}.")
    if X.ndim != 4:
        raise AuditInputError(f"Grad-CAM needs images (n, height, width, channels); got inputs of shape "
                              f"{X.shape[1:]}.")
    t = targets(model, X, target)
    batch = max(1, min(int(batch_size), len(X)))
    with timer() as clock:
        prog = _get_program(model, batch)
        n_conv = sum(L.kind == "conv" for L in prog.layers.values())
        if n_conv == 0:
            raise AuditInputError("Grad-CAM needs a convolutional layer; this model has none (use "
                                  "saliency, LRP or SHAP).")
        if isinstance(layer, bool) or not isinstance(layer, (int, np.integer)) or not -n_conv <= layer < n_conv:
            raise AuditInputError(f"layer={layer!r} must pick one of the model's {n_conv} conv layers "
                                  f"(0..{n_conv - 1}, or negative from the end).")
        fn = _cam_fn(prog, int(layer), method, tuple(X.shape[1:3]))
        up, cams = _batched(fn, [X, t], batch)
    values = np.repeat(up[..., None], X.shape[-1], axis=-1)
    name = "grad_cam" if method == "gradcam" else "grad_cam_pp"
    return Attribution(method=name, values=values, target=t, inputs=X, extras={"cam": cams},
                       provenance=Provenance(name, {"layer": int(layer), "method": method}, None, clock[0]))
