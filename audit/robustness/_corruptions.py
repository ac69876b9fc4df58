"""Common corruptions: accuracy under natural (not adversarial) input damage, five severities.

Images follow Hendrycks & Dietterich, "Benchmarking neural network robustness to common
corruptions and perturbations" (ICLR 2019): Gaussian, shot (Poisson) and impulse (salt and
pepper) noise, Gaussian blur, contrast, brightness, and the geometric shifts of MNIST-C (Mu &
Gilmer 2019), rotation and translation. Tabular data get noise on each numeric input scaled to
its training spread, and categorical values swapped to another level (one-hot blocks stay
valid). Severity 0 is the identity; severities 1-5 use the parameter tables below. Every
corruption is one jitted, vectorised function of (x, key, level); batches are padded to one
fixed size, so each corruption compiles once.
"""

from __future__ import annotations

import functools
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from audit.errors import AuditInputError

# severity 1..5 parameters (images in their domain's range; blur in pixels, angles in degrees,
# shifts as a fraction of the image side, noise in units of the pixel range)
IMAGE_LEVELS: dict[str, tuple[float, ...]] = {
    "gaussian_noise": (0.08, 0.12, 0.18, 0.26, 0.38),    # std
    "shot_noise": (60.0, 25.0, 12.0, 5.0, 3.0),          # photons per unit intensity (fewer: noisier)
    "impulse_noise": (0.03, 0.06, 0.09, 0.17, 0.27),     # share of pixels set to black or white
    "blur": (0.5, 0.75, 1.0, 1.5, 2.0),                  # Gaussian sigma in pixels
    "contrast": (0.4, 0.3, 0.2, 0.1, 0.05),              # kept share of the deviation from the mean
    "brightness": (0.1, 0.2, 0.3, 0.4, 0.5),             # added share of the range
    "rotation": (6.0, 12.0, 18.0, 24.0, 30.0),           # degrees, random sign per image
    "translation": (0.04, 0.08, 0.12, 0.16, 0.2),        # share of the side, random direction
}
TABULAR_LEVELS: dict[str, tuple[float, ...]] = {
    "numeric_noise": (0.1, 0.2, 0.3, 0.5, 0.8),          # std in training standard deviations
    "category_swap": (0.05, 0.1, 0.2, 0.35, 0.5),        # share of categorical values swapped
}
IMAGE_CORRUPTIONS = tuple(IMAGE_LEVELS)
TABULAR_CORRUPTIONS = tuple(TABULAR_LEVELS)


def levels(kind: str) -> dict[str, tuple[float, ...]]:
    return IMAGE_LEVELS if kind == "image" else TABULAR_LEVELS


def _bcast(v, x):
    return v.reshape((x.shape[0],) + (1,) * (x.ndim - 1))


# ---- images: (n, H, W, C) in [lower, upper] ------------------------------------------------------
def _gaussian_noise(x, key, level, lo, hi):
    return x + level * (hi - lo) * jax.random.normal(key, x.shape, x.dtype)


def _shot_noise(x, key, level, lo, hi):
    unit = (x - lo) / (hi - lo)
    counts = jax.random.poisson(key, jnp.clip(unit, 0.0, 1.0) * level, x.shape).astype(x.dtype)
    return lo + counts / level * (hi - lo)


def _impulse_noise(x, key, level, lo, hi):
    k1, k2 = jax.random.split(key)
    hit = jax.random.uniform(k1, x.shape) < level
    salt = jax.random.bernoulli(k2, 0.5, x.shape)
    return jnp.where(hit, jnp.where(salt, hi, lo), x)


def _blur_matrix(size: int, sigma):
    """(size, size) row-stochastic Gaussian smoothing matrix (edges renormalised)."""
    i = jnp.arange(size, dtype=jnp.float32)
    w = jnp.exp(-0.5 * ((i[:, None] - i[None, :]) / sigma) ** 2)
    return w / jnp.sum(w, axis=1, keepdims=True)


def _blur(x, key, level, lo, hi):
    kh, kw = _blur_matrix(x.shape[1], level), _blur_matrix(x.shape[2], level)
    return jnp.einsum("ij,njkc,lk->nilc", kh, x, kw)


def _contrast(x, key, level, lo, hi):
    mean = jnp.mean(x, axis=(1, 2, 3), keepdims=True)
    return mean + (x - mean) * level


def _brightness(x, key, level, lo, hi):
    return x + level * (hi - lo)


def _warp(x, angle, shift, fill):
    """Rotate each image by `angle` (radians, per image) about its centre, then shift it by
    `shift` (pixels, (n, 2)); bilinear, uncovered pixels take `fill`."""
    h, w = x.shape[1], x.shape[2]
    rr, cc = jnp.meshgrid(jnp.arange(h, dtype=jnp.float32), jnp.arange(w, dtype=jnp.float32), indexing="ij")
    cr, ccen = (h - 1) / 2.0, (w - 1) / 2.0

    def one(img, a, s):
        r, c = rr - cr - s[0], cc - ccen - s[1]  # inverse map: output pixel -> source pixel
        src_r = jnp.cos(a) * r + jnp.sin(a) * c + cr
        src_c = -jnp.sin(a) * r + jnp.cos(a) * c + ccen
        chan = lambda ch: fill + jax.scipy.ndimage.map_coordinates(ch - fill, [src_r, src_c], order=1,
                                                                   mode="constant", cval=0.0)
        return jax.vmap(chan, in_axes=2, out_axes=2)(img)

    return jax.vmap(one)(x, angle, shift)


def _rotation(x, key, level, lo, hi):
    sign = jax.random.rademacher(key, (x.shape[0],), jnp.float32)
    return _warp(x, sign * jnp.deg2rad(level), jnp.zeros((x.shape[0], 2)), lo)


def _translation(x, key, level, lo, hi):
    theta = jax.random.uniform(key, (x.shape[0],), minval=0.0, maxval=2 * jnp.pi)
    side = jnp.asarray([x.shape[1], x.shape[2]], jnp.float32)
    shift = level * side[None, :] * jnp.stack([jnp.sin(theta), jnp.cos(theta)], axis=1)
    return _warp(x, jnp.zeros(x.shape[0]), shift, lo)


_IMAGE_FNS: dict[str, Callable] = {
    "gaussian_noise": _gaussian_noise, "shot_noise": _shot_noise, "impulse_noise": _impulse_noise,
    "blur": _blur, "contrast": _contrast, "brightness": _brightness, "rotation": _rotation,
    "translation": _translation,
}


@functools.partial(jax.jit, static_argnums=(0,))
def _image(name: str, x, key, level, lo, hi):
    return jnp.clip(_IMAGE_FNS[name](x, key, level, lo, hi), lo, hi)


# ---- tabular: (n, d) model inputs ----------------------------------------------------------------
@jax.jit
def _numeric_noise(x, key, level, spread, numeric):
    return x + level * spread * numeric * jax.random.normal(key, x.shape, x.dtype)


@functools.partial(jax.jit, static_argnums=(0,))
def _category_swap(blocks: tuple[tuple[int, ...], ...], x, key, level):
    """Per one-hot block, a share `level` of rows moves to a uniformly chosen other level."""
    for b, idx in enumerate(blocks):
        kb = jax.random.fold_in(key, b)
        k1, k2 = jax.random.split(kb)
        cols = jnp.asarray(idx)
        block = x[:, cols]
        m = len(idx)
        cur = jnp.argmax(block, axis=1)
        hot = jnp.max(block, axis=1) > 0.5  # rows with a valid one-hot (others stay as they are)
        new = (cur + jax.random.randint(k2, cur.shape, 1, m)) % m
        swap = hot & (jax.random.uniform(k1, cur.shape) < level)
        lo, hi = jnp.min(block), jnp.max(block)
        onehot = jnp.where(jax.nn.one_hot(new, m, dtype=bool), hi, lo)
        x = x.at[:, cols].set(jnp.where(swap[:, None], onehot, block))
    return x


class Corrupter:
    """The corruptions of one data set: `apply(name, severity, x, key)` with severity 0..5."""

    def __init__(self, data, *, train_X: np.ndarray, domain_lower: float | None = None,
                 domain_upper: float | None = None, skip_columns: tuple[str, ...] = ()):
        self.kind = data.kind
        if self.kind == "image":
            if len(data.input_shape) != 3:
                raise AuditInputError(f"image corruptions need inputs of shape (H, W, C); the data has "
                                      f"{data.input_shape}.")
            self.lo = jnp.float32(domain_lower)
            self.hi = jnp.float32(domain_upper)
            self.names = IMAGE_CORRUPTIONS
            return
        flat = train_X.reshape(len(train_X), -1)
        d = flat.shape[1]
        numeric = np.ones(d, np.float32)
        blocks = []
        enc = data.encoding
        if enc is not None:
            for col, group in zip(enc.columns, data.feature_groups):
                if col.kind == "categorical":
                    numeric[list(group)] = 0.0
                    if len(group) > 1 and col.name not in skip_columns:
                        blocks.append(tuple(int(i) for i in group))
        self.numeric = jnp.asarray(numeric)
        self.spread = jnp.asarray(flat.std(axis=0), jnp.float32)
        self.blocks = tuple(blocks)
        self.names = ("numeric_noise",) * bool(numeric.any()) + ("category_swap",) * bool(blocks)

    def level(self, name: str, severity: int) -> float:
        return 0.0 if severity == 0 else levels(self.kind)[name][severity - 1]

    def apply(self, name: str, severity: int, x, key) -> jax.Array:
        """Corrupt the batch `x` (severity 0 returns it unchanged)."""
        x = jnp.asarray(x, jnp.float32)
        if severity == 0:
            return x
        level = jnp.float32(self.level(name, severity))
        if self.kind == "image":
            return _image(name, x, key, level, self.lo, self.hi)
        shape = x.shape
        flat = x.reshape(shape[0], -1)
        if name == "numeric_noise":
            return _numeric_noise(flat, key, level, self.spread, self.numeric).reshape(shape)
        return _category_swap(self.blocks, flat, key, level).reshape(shape)
