"""Inputs unlike the training data, made from the test rows: what each detector must tell apart.

Images (values in the data's range): `gaussian_noise` and `uniform_noise` (pure noise images),
`blur` (a 5x5 box blur applied twice), `contrast` (pulled 80% toward the mean), `inverted`,
`rotated` (90 degrees), and `other_digits` (the other bundled digit set resized, when shapes allow).
Tabular (in raw column space, then encoded as the model sees it): `shift:<column>` (a numeric
column moved by 3 of its training standard deviations), `shuffled` (every column permuted on its
own: each value is plausible, their combination is not) and `out_of_range` (one numeric column per
row set 3 ranges past the training maximum).
"""

from __future__ import annotations

from typing import Callable

import numpy as np

IMAGE_SHIFTS = ("gaussian_noise", "uniform_noise", "blur", "contrast", "inverted", "rotated", "other_digits")


def _box_blur(x: np.ndarray, k: int = 5) -> np.ndarray:
    pad = k // 2
    padded = np.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)), mode="edge")
    c = padded.cumsum(axis=1).cumsum(axis=2)
    c = np.pad(c, ((0, 0), (1, 0), (1, 0), (0, 0)))
    h, w = x.shape[1:3]
    s = c[:, k:k + h, k:k + w] - c[:, :h, k:k + w] - c[:, k:k + h, :w] + c[:, :h, :w]
    return s / (k * k)


def _other_digits(x: np.ndarray, name: str, rng: np.random.Generator) -> np.ndarray | None:
    """Digits from the other bundled set, resized to this data's image size (nearest neighbour)."""
    from audit import datasets

    other = {"mnist": "digits", "digits": "mnist"}.get(name)
    if other is None or x.shape[-1] != 1:
        return None
    images = datasets.load(other, seed=0).X
    rows = rng.choice(len(images), size=len(x), replace=len(images) < len(x))
    h, w = x.shape[1:3]
    ih, iw = images.shape[1:3]
    yy = (np.arange(h) * ih // h)
    xx = (np.arange(w) * iw // w)
    return images[rows][:, yy][:, :, xx].astype(np.float32)


def image_shifts(x: np.ndarray, *, name: str, low: float, high: float, seed: int,
                 shifts=IMAGE_SHIFTS) -> dict[str, np.ndarray]:
    """Shifted copies of the test images `x` (same count), clipped to [low, high]."""
    rng = np.random.default_rng(seed)
    mid, span = (low + high) / 2, high - low
    makers: dict[str, Callable[[], np.ndarray | None]] = {
        "gaussian_noise": lambda: mid + span / 4 * rng.standard_normal(x.shape),
        "uniform_noise": lambda: rng.uniform(low, high, x.shape),
        "blur": lambda: _box_blur(_box_blur(x)),
        "contrast": lambda: x.mean(axis=(1, 2, 3), keepdims=True) + 0.2 * (x - x.mean(axis=(1, 2, 3), keepdims=True)),
        "inverted": lambda: high + low - x,
        "rotated": lambda: np.rot90(x, k=1, axes=(1, 2)) if x.shape[1] == x.shape[2] else None,
        "other_digits": lambda: _other_digits(x, name, rng),
    }
    out = {}
    for shift in shifts:
        made = makers[shift]()
        if made is not None:
            out[shift] = np.clip(made, low, high).astype(np.float32)
    return out


def tabular_shifts(raw: np.ndarray, encoding, *, train_raw: np.ndarray, seed: int) -> dict[str, np.ndarray]:
    """Shifted copies of the raw test rows, encoded as model inputs."""
    rng = np.random.default_rng(seed)
    numeric = [j for j, c in enumerate(encoding.columns) if c.kind == "numeric"]
    out = {}
    std = train_raw.std(axis=0)
    for j in numeric:
        moved = raw.copy()
        moved[:, j] = moved[:, j] + 3.0 * (std[j] if std[j] > 0 else 1.0)
        out[f"shift:{encoding.columns[j].name}"] = moved
    shuffled = raw.copy()
    for j in range(raw.shape[1]):
        shuffled[:, j] = shuffled[rng.permutation(len(raw)), j]
    out["shuffled"] = shuffled
    if numeric:
        far = raw.copy()
        lo, hi = train_raw.min(axis=0), train_raw.max(axis=0)
        pick = rng.choice(numeric, size=len(raw))
        far[np.arange(len(raw)), pick] = hi[pick] + 3.0 * np.maximum(hi[pick] - lo[pick], 1.0)
        out["out_of_range"] = far
    return {k: encoding.encode(v).astype(np.float32) for k, v in out.items()}
