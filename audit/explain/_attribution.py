"""`Attribution`: the common result of local explanation methods (LIME, saliency, SHAP views).

One array of values per explained example, aligned with the model inputs (pixels, input
columns) or with raw tabular columns, plus per-example extras (LIME's local fit score and
intercept, Integrated Gradients' completeness error, ...). Quality metrics, reports and
figures consume only this type.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping, Sequence

import numpy as np
import numpy.typing as npt

from audit.errors import AuditInputError
from audit.results import Finding, Provenance, Result


def check_seed(seed: Any) -> int:
    """A seed as a non-negative int (numpy's generators take no negative seeds)."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise AuditInputError(f"seed={seed!r} must be a non-negative integer.")
    return int(seed)

LEVELS = ("input", "raw")
COMPLETENESS_TOLERANCE = 0.01  # relative IG completeness error above which a result warns
LOW_FIT_SCORE = 0.3  # LIME local R^2 below which a result warns


def probabilities(model, X: Any) -> np.ndarray:
    """Class probabilities from the model's batched logits, softmax on the host (numpy).

    Unlike an eager jax softmax this compiles nothing new for each new number of rows.
    """
    z = np.asarray(model.logits(X), np.float64)
    z = np.exp(z - z.max(axis=-1, keepdims=True))
    return z / z.sum(axis=-1, keepdims=True)


@dataclasses.dataclass(frozen=True, eq=False)
class Attribution(Result):
    """Attributions of `n` examples towards one class each.

    values: (n, *feature_shape). `level` is "input" when feature_shape is the model input shape
        (pixels or encoded columns) and "raw" when it is one value per raw tabular column.
    target: (n,) class index explained for each example.
    inputs: (n, ...) the explained examples (model inputs, or raw rows for level "raw"), kept
        so that figures never need the model.
    feature_names: one name per feature for tabular data (empty for images).
    extras: per-example arrays, e.g. "intercept", "score" (LIME local R^2), "local_prediction",
        "output" / "baseline_output" (explained model output at x and at the baseline),
        "completeness_error" (IG: sum of attributions minus output difference), "segments"
        (LIME image superpixel ids, (n, H, W)).
    """

    SCHEMA = "audit.explain.attribution/2"

    method: str
    values: np.ndarray
    target: np.ndarray
    level: str = "input"
    inputs: npt.NDArray[np.float32] | None = None
    feature_names: tuple[str, ...] = ()
    extras: Mapping[str, np.ndarray] = dataclasses.field(default_factory=dict)
    provenance: Provenance = dataclasses.field(default_factory=lambda: Provenance("attribution"))

    def __post_init__(self) -> None:
        values = np.asarray(self.values, dtype=np.float32)
        target = np.asarray(self.target, dtype=np.int32).reshape(-1)
        if values.ndim < 2 or len(target) != len(values):
            raise ValueError(f"attribution values {values.shape} need shape (n, ...) with n = "
                             f"{len(target)} targets")
        if self.level not in LEVELS:
            raise ValueError(f"level {self.level!r} must be one of {LEVELS}")
        extras = {str(k): np.asarray(v) for k, v in dict(self.extras).items()}
        for key, v in extras.items():
            if v.ndim == 0 or len(v) != len(values):
                raise ValueError(f"extra {key!r} has shape {v.shape}; expected one entry per example")
        object.__setattr__(self, "values", values)
        object.__setattr__(self, "target", target)
        object.__setattr__(self, "feature_names", tuple(str(f) for f in self.feature_names))
        object.__setattr__(self, "extras", extras)
        if self.inputs is not None:
            object.__setattr__(self, "inputs", np.asarray(self.inputs, dtype=np.float32))

    # ---- views -------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.values)

    @property
    def flat(self) -> np.ndarray:
        """Values as (n, n_features)."""
        return self.values.reshape(len(self.values), -1)

    def completeness_error(self) -> float | None:
        """Aggregate relative completeness error: sum_i |err_i| / sum_i |output_i - baseline_i|.

        Aggregating over examples keeps the number meaningful when one example's output
        difference is close to zero. None when the method does not claim completeness.
        """
        if "completeness_error" not in self.extras:
            return None
        err = np.abs(self.extras["completeness_error"]).sum()
        delta = np.abs(self.extras["output"] - self.extras["baseline_output"]).sum()
        return float(err / max(delta, 1e-12))

    def grouped(self, groups: Sequence[Sequence[int]], names: Sequence[str] | None = None) -> "Attribution":
        """Sum input-level values over groups of inputs (e.g. one-hot blocks -> raw columns).

        Completeness is kept: group sums add up to the same total.
        """
        if self.level != "input":
            raise ValueError("only input-level attributions can be grouped")
        flat = self.flat
        values = np.stack([flat[:, list(g)].sum(axis=1) for g in groups], axis=1)
        return dataclasses.replace(self, values=values, level="raw", inputs=None,
                                   feature_names=tuple(names or ()))

    # ---- results contract --------------------------------------------------------------
    def metrics(self) -> dict[str, float]:
        out: dict[str, float] = {}
        err = self.completeness_error()
        if err is not None:
            out[f"completeness_error:{self.method}"] = err
        if "score" in self.extras:
            out[f"local_fit_score:{self.method}"] = float(np.nanmean(self.extras["score"]))
        out[f"mean_abs_attribution:{self.method}"] = float(np.abs(self.flat).sum(axis=1).mean())
        return out

    @property
    def findings(self) -> tuple[Finding, ...]:
        found = []
        err = self.completeness_error()
        if err is not None:
            ok = err <= COMPLETENESS_TOLERANCE
            found.append(Finding(
                id=f"explain.completeness.{self.method}", status="pass" if ok else "warn",
                title=f"{self.method}: completeness",
                message=(f"attributions sum to the output difference within {err:.2%}" if ok else
                         f"attributions miss the output difference by {err:.2%} "
                         f"(> {COMPLETENESS_TOLERANCE:.0%}); raise the number of steps"),
                metric=f"completeness_error:{self.method}", value=err, threshold=COMPLETENESS_TOLERANCE))
        if "score" in self.extras:
            score = float(np.nanmean(self.extras["score"]))
            ok = score >= LOW_FIT_SCORE
            found.append(Finding(
                id=f"explain.local_fit.{self.method}", status="pass" if ok else "warn",
                title=f"{self.method}: local surrogate fit",
                message=(f"the local linear surrogate explains R^2 = {score:.2f} of the model's "
                         "output around the examples" + ("" if ok else "; its weights describe "
                                                           "the model poorly there")),
                metric=f"local_fit_score:{self.method}", value=score, threshold=LOW_FIT_SCORE))
        return tuple(found)
