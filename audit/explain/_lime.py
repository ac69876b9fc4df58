"""LIME through the `lime` package (Ribeiro et al. 2016, "Why should I trust you?").

`lime_tabular` runs `LimeTabularExplainer` on raw columns (categoricals as categoricals, mapped
to model inputs by the Dataset's encoding); `lime_image` runs `LimeImageExplainer` on
superpixels. Both hand lime the model's batched, jitted `predict_proba` (one call per
explanation) and convert lime's explanations to the common `Attribution`: one weight per raw
column or per superpixel, with the local fit score (weighted R^2), intercept and local prediction.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import jax.numpy as jnp
import numpy as np

from audit.errors import AuditInputError
from audit.explain._attribution import Attribution, check_seed, probabilities
from audit.results import Provenance, timer


def _bytes(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a).reshape(-1).view(np.uint8)


@dataclasses.dataclass(frozen=True, eq=False)
class RawSpace:
    """Raw columns of a tabular Dataset, their training statistics and the encoding to inputs.

    train: raw training rows (n, d); names: d column names; categorical: (d,) bool;
    categories: per column the category names (empty for numeric); enc_mean / enc_std: numeric
    scaling of the model encoding (identity when the data has no encoding).
    """

    train: np.ndarray
    names: tuple[str, ...]
    categorical: np.ndarray
    categories: tuple[tuple[str, ...], ...]
    enc_mean: np.ndarray
    enc_std: np.ndarray
    encoding: Any = None

    def _arrays(self) -> tuple[np.ndarray, ...]:
        return self.train, self.categorical, self.enc_mean, self.enc_std

    def __eq__(self, other: object) -> bool:
        """By content, so compiled explainers are reused across calls: the arrays' bytes (so NaN
        equals NaN), the names, categories and encoding."""
        if self is other:
            return True
        return (isinstance(other, RawSpace)
                and (self.names, self.categories, self.encoding) == (other.names, other.categories, other.encoding)
                and all(a.shape == b.shape and a.dtype == b.dtype and np.array_equal(_bytes(a), _bytes(b))
                        for a, b in zip(self._arrays(), other._arrays())))

    def __hash__(self) -> int:
        """From the shapes, names and a strided sample of about 1,000 training values (hashing all
        of them cost ~1 ms a call, 0.03 ms per LIME explanation); `__eq__` decides."""
        sample = np.ascontiguousarray(self.train).ravel()[::max(1, self.train.size // 1024)]
        return hash((self.train.shape, self.names, self.categories, self.encoding, sample.tobytes(),
                     *(np.ascontiguousarray(a).tobytes() for a in self._arrays()[1:])))

    @property
    def n_columns(self) -> int:
        return len(self.names)

    def encode(self, raw: np.ndarray) -> np.ndarray:
        """Raw rows -> model inputs (numpy)."""
        if self.encoding is not None:
            return self.encoding.encode(raw)
        return np.asarray(raw, np.float32)

    def encode_jax(self, raw: jnp.ndarray) -> jnp.ndarray:
        """Raw rows -> model inputs inside jitted code: the data's own encoding (audit.data), run
        with jax.numpy, so it is the same map as `encode`."""
        if self.encoding is not None:
            return self.encoding.encode(raw, xp=jnp)
        return jnp.asarray(raw, jnp.float32)

    def check_rows(self, raw: Any) -> np.ndarray:
        raw = np.asarray(raw, dtype=np.float64)
        if raw.ndim == 1:
            raw = raw[None]
        if raw.ndim != 2 or raw.shape[1] != self.n_columns or len(raw) == 0:
            raise AuditInputError(f"raw rows have shape {raw.shape}; expected (n, {self.n_columns}) "
                                  f"with columns {list(self.names)} (e.g. data.test.raw[:10]).")
        if not np.isfinite(raw).all():
            raise AuditInputError("raw rows contain NaN or infinite values.")
        for j in np.flatnonzero(self.categorical):
            codes = raw[:, j]
            if (codes != np.rint(codes)).any() or codes.min() < 0 or codes.max() >= len(self.categories[j]):
                raise AuditInputError(f"raw column {self.names[j]!r} must hold category codes in "
                                      f"[0, {len(self.categories[j])}).")
        return raw


def raw_space(model, data) -> RawSpace:
    """The raw view of a tabular Dataset (training rows from its "train" split)."""
    if getattr(data, "kind", None) != "tabular":
        raise AuditInputError("tabular LIME needs a tabular Dataset; use lime_image for images.")
    if tuple(data.input_shape) != tuple(model.input_shape):
        raise AuditInputError(f"the data has inputs of shape {data.input_shape} but the model takes "
                              f"{model.input_shape}; pass the Dataset the model was trained on.")
    rows = data.splits.get("train")
    rows = np.arange(len(data)) if rows is None or len(rows) == 0 else rows
    if data.encoding is None or data.raw is None:
        X = data.X.reshape(len(data), -1)[rows].astype(np.float64)
        d = X.shape[1]
        return RawSpace(train=X, names=tuple(data.feature_names), categorical=np.zeros(d, bool),
                        categories=((),) * d, enc_mean=np.zeros(d), enc_std=np.ones(d))
    cols = data.encoding.columns
    return RawSpace(train=np.asarray(data.raw, np.float64)[rows], names=data.encoding.raw_names,
                    categorical=np.array([c.kind == "categorical" for c in cols]),
                    categories=tuple(tuple(c.categories) for c in cols),
                    enc_mean=np.array([c.mean for c in cols]), enc_std=np.array([c.std for c in cols]),
                    encoding=data.encoding)


def _raw_targets(model, inputs: np.ndarray, target: Any) -> np.ndarray:
    from audit.explain._saliency import targets

    return targets(model, inputs, target)


def _row_seed(seed: int, row: np.ndarray) -> int:
    """A 32-bit seed from the call's seed and the row's values (numpy's SeedSequence)."""
    words = np.ascontiguousarray(row, np.float64).view(np.uint32)
    return int(np.random.SeedSequence(words, spawn_key=(int(seed),)).generate_state(1)[0])


def lime_tabular(model, data, raw: Any, *, target: Any = None, num_samples: int = 5000,
                 num_features: int | None = None, discretize_continuous: bool = False,
                 kernel_width: float | None = None, seed: int = 0,
                 predict_fn: Callable[[np.ndarray], np.ndarray] | None = None) -> Attribution:
    """Explain raw rows with lime's `LimeTabularExplainer`; one value per raw column.

    Values are the local surrogate's contributions at the row: lime's weight times the row's
    standardised value (lime's `scaled_row`; 1 for categorical and discretized indicators), so
    they rank features by their share of this prediction like SHAP; lime's own weights are in
    extras["weights"], with "intercept", "score" (weighted R^2), "local_prediction", "output".

    raw: (n, d) raw rows (numeric values, categorical codes), e.g. `data.test.raw[:10]`.
    discretize_continuous: lime's quartile mode (lime's own default is True); False (default)
        gives slopes on standardised columns, comparable with gradients and the native LIME.
    num_features: columns kept by lime's feature selection (default: all, no selection).
    predict_fn: the classifier function lime calls (default: the model's batched jitted
        `predict_proba` on encoded rows); for benchmarks.
    """
    from lime.lime_tabular import LimeTabularExplainer

    seed = check_seed(seed)
    space = raw_space(model, data)
    raw = space.check_rows(raw)
    inputs = space.encode(raw)
    t = _raw_targets(model, inputs, target)
    d = space.n_columns
    k = d if num_features is None else int(num_features)
    if not 1 <= k <= d:
        raise AuditInputError(f"num_features must be in [1, {d}], got {num_features}.")
    cat = [int(j) for j in np.flatnonzero(space.categorical)]
    explainer = LimeTabularExplainer(
        space.train, mode="classification", feature_names=list(space.names),
        categorical_features=cat, categorical_names={j: list(space.categories[j]) for j in cat},
        class_names=list(model.class_names), discretize_continuous=discretize_continuous,
        kernel_width=kernel_width, feature_selection="none" if k == d else "auto", random_state=seed)
    predict = predict_fn or (lambda rows: probabilities(model, space.encode(rows)))
    values, weights = np.zeros((len(raw), d)), np.zeros((len(raw), d))
    extras = {key: np.zeros(len(raw)) for key in ("intercept", "score", "local_prediction", "output")}
    with timer() as clock:
        for i, (row, label) in enumerate(zip(raw, t)):  # lime explains one row per call
            # lime's sampler, discretizer and fit share one RandomState: reseeded per row, so an
            # explanation depends on the seed and the row, not on which rows came before it
            explainer.random_state.seed(_row_seed(seed, row))
            exp = explainer.explain_instance(row, predict, labels=(int(label),), num_features=k,
                                             num_samples=num_samples)
            for j, w in exp.local_exp[int(label)]:
                weights[i, j] = w
            values[i] = weights[i] * np.asarray(exp.domain_mapper.scaled_row, np.float64)
            extras["intercept"][i] = exp.intercept[int(label)]
            extras["score"][i] = exp.score
            extras["local_prediction"][i] = np.ravel(exp.local_pred)[0]
            extras["output"][i] = exp.predict_proba[int(label)]
    extras["weights"] = weights
    settings = {"num_samples": num_samples, "num_features": k, "kernel_width": kernel_width,
                "discretize_continuous": discretize_continuous, "backend": "lime"}
    return Attribution(method="lime", values=values, target=t, level="raw", inputs=raw,
                       feature_names=space.names, extras=extras,
                       provenance=Provenance("lime", settings, seed, clock[0]))


# ---- images -----------------------------------------------------------------------------
def grid_segments(shape: tuple[int, int], cell: int) -> np.ndarray:
    """Superpixels as a grid of `cell` x `cell` squares: (H, W) integer labels from 0."""
    h, w = shape
    rows, cols = np.arange(h) // cell, np.arange(w) // cell
    return (rows[:, None] * (-(-w // cell)) + cols[None, :]).astype(np.int64)


def _segmenter(segmentation: Any, shape: tuple[int, ...], seed: int) -> Callable[[np.ndarray], np.ndarray]:
    h, w = shape[:2]
    if callable(segmentation):
        return segmentation
    if segmentation == "auto":
        segmentation = "quickshift" if min(h, w) >= 32 else "grid"
    if segmentation == "grid":
        cell = max(1, -(-min(h, w) // 6))  # about a 6 x 6 grid
        labels = grid_segments((h, w), cell)
        return lambda image: labels
    if segmentation == "quickshift":
        from lime.wrappers.scikit_image import SegmentationAlgorithm
        from skimage.color import gray2rgb

        algo = SegmentationAlgorithm("quickshift", kernel_size=4, max_dist=200, ratio=0.2, random_seed=seed)
        return lambda image: algo(gray2rgb(image[..., 0]) if image.shape[-1] == 1 else image)
    raise AuditInputError(f"segmentation {segmentation!r} must be 'auto', 'grid', 'quickshift' or a "
                          "function image -> (H, W) integer labels.")


NEIGHBOURHOOD_BYTES = 1 << 26  # perturbed images built and predicted at a time (64 MiB)


def _explain_image(explainer, image: np.ndarray, predict: Callable, label: int, hide_color: float,
                   num_samples: int, segments: np.ndarray) -> tuple:
    """`LimeImageExplainer.explain_instance` for one label and a given segmentation: the same
    random superpixel draws, cosine distances and ridge fit (lime's own `LimeBase`), with the
    perturbed images built by one vectorised mask per chunk and predicted per chunk (lime copies
    the image once per sample in Python). Returns (intercept, local_exp, score, local_pred)."""
    import sklearn.metrics

    k = int(segments.max()) + 1  # labels 0..k-1, every one present
    data = explainer.random_state.randint(0, 2, num_samples * k).reshape((num_samples, k))
    data[0, :] = 1
    chunk = max(1, NEIGHBOURHOOD_BYTES // (4 * image.size))
    labels = np.concatenate([np.asarray(predict(np.where((rows == 0)[:, segments][..., None], np.float32(hide_color),
                                                         image[None]).astype(np.float32)))
                             for rows in np.array_split(data, -(-num_samples // chunk))])
    distances = sklearn.metrics.pairwise_distances(data, data[0].reshape(1, -1), metric="cosine").ravel()
    return explainer.base.explain_instance_with_data(data, labels, distances, label, 100000,
                                                     feature_selection=explainer.feature_selection)


def lime_image(model, images: Any, *, target: Any = None, num_samples: int = 1000,
               segmentation: Any = "auto", hide_color: float = 0.0, seed: int = 0,
               predict_fn: Callable[[np.ndarray], np.ndarray] | None = None) -> Attribution:
    """Explain images with lime's `LimeImageExplainer` on superpixels: its random draws and its
    ridge fit, with the perturbed images built vectorised and predicted in large batches
    (`_explain_image`; the same numbers as `explain_instance`, tests/explain/test_lime.py).

    segmentation: "auto" (a grid of about 6 x 6 cells below 32 pixels, lime's quickshift above),
        "grid", "quickshift", or a function image -> (H, W) labels. Hidden superpixels take
        `hide_color`. Values are per pixel (each pixel carries its superpixel's weight);
        extras hold "segments" (n, H, W) and "segment_weights" (n, max segments, NaN padded).
    """
    from lime.lime_image import LimeImageExplainer

    from audit.explain._saliency import targets

    seed = check_seed(seed)
    X = np.asarray(images, dtype=np.float32)
    if X.ndim == len(model.input_shape):
        X = X[None]
    if X.shape[1:] != model.input_shape or len(model.input_shape) != 3 or len(X) == 0:
        raise AuditInputError(f"images have shape {X.shape}; lime_image needs (n, H, W, C) images "
                              f"matching the model's input {model.input_shape}.")
    t = targets(model, X, target)
    segment = _segmenter(segmentation, X.shape[1:], seed)
    explainer = LimeImageExplainer(random_state=seed)
    predict = predict_fn or (lambda images: probabilities(model, images))
    n, (h, w, _) = len(X), X.shape[1:]
    values, segments = np.zeros(X.shape, np.float32), np.zeros((n, h, w), np.int64)
    per_segment: list[np.ndarray] = []
    extras = {key: np.zeros(n) for key in ("intercept", "score", "local_prediction", "output")}
    with timer() as clock:
        for i, (image, label) in enumerate(zip(X, t)):  # lime explains one image per call
            seg = np.asarray(segment(image), np.int64)
            if seg.shape != (h, w):
                raise AuditInputError(f"segmentation returned shape {seg.shape}; expected {(h, w)}.")
            _, seg = np.unique(seg, return_inverse=True)  # labels 0..k-1 as lime assumes
            seg = seg.reshape(h, w)
            explainer.random_state.seed(_row_seed(seed, image.ravel()))  # as lime_tabular: per image
            intercept, local_exp, score, local_pred = _explain_image(explainer, image, predict, int(label),
                                                                     hide_color, num_samples, seg)
            weights = np.zeros(seg.max() + 1)
            for j, wgt in local_exp:
                weights[j] = wgt
            values[i] = weights[seg][..., None]
            segments[i] = seg
            per_segment.append(weights)
            extras["intercept"][i] = intercept
            extras["score"][i] = score
            extras["local_prediction"][i] = np.ravel(local_pred)[0]
    extras["output"] = probabilities(model, X)[np.arange(n), t]
    width = max(len(p) for p in per_segment)
    extras["segment_weights"] = np.array([np.pad(p, (0, width - len(p)), constant_values=np.nan)
                                          for p in per_segment])
    extras["segments"] = segments
    settings = {"num_samples": num_samples, "hide_color": hide_color, "backend": "lime",
                "segmentation": segmentation if isinstance(segmentation, str) else "custom"}
    return Attribution(method="lime", values=values, target=t, level="input", inputs=X, extras=extras,
                       provenance=Provenance("lime", settings, seed, clock[0]))
