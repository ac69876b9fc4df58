"""SHAP for JAX models: input checks, method dispatch, `ShapResult` and global importance.

Interventional Shapley values (Lundberg & Lee 2017, "A unified approach to interpreting model
predictions"): exact enumeration, KernelSHAP, expected gradients, or the shap library's own
explainers, all explaining the same value function v(S) = E_b f(x_S, b_not S) over one
background set, with players that are raw columns (one-hot blocks together), inputs or
image patches.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Sequence

import numpy as np
import numpy.typing as npt

from audit.errors import AuditInputError
from audit.explain import _players
from audit.explain._attribution import check_seed
from audit.explain._expected_gradients import expected_gradients
from audit.explain._players import CHUNK_ROWS, OUTPUTS, Players, player_data
from audit.explain._saliency import explained_class
from audit.explain._shap_exact import MAX_PLAYERS, exact_shap
from audit.explain._shap_kernel import default_budget, kernel_shap, min_budget
from audit.results import Finding, Provenance, Result, timer

METHODS = ("auto", "exact", "kernel", "gradient", "permutation")
BACKENDS = ("native", "shap")
AUTO_EXACT_PLAYERS = 12  # 2^12 coalitions: about twice kernel SHAP's default budget; beyond, exact
# costs 4x-32x more model calls (16 image patches: 65536 coalitions) for a small error reduction
GRADIENT_SAMPLES = 200  # shap's GradientExplainer default
EFFICIENCY_TOLERANCE = 0.05  # relative gap above which expected gradients get a warning


@dataclasses.dataclass(frozen=True, eq=False)
class ShapResult(Result):
    """SHAP values of `n` examples over `P` players, for one class per example.

    `values` (n, P); `base_values` (n,) = E_b f(b); `data` (n, P) the players' values (raw
    column values with categoricals as codes, inputs, or mean patch values); `display_data`
    the same with category names (or None); `model_output` (n,) f(x) for the explained class;
    `class_index` (n,) the explained class per example (-1 where unknown); `output` is
    "probability" or "logit"; `players` says which inputs each player covers.
    """

    SCHEMA = "audit.explain.shap/1"
    LEGACY_SCHEMAS = (1,)  # same fields; files written before the codec read as they are

    values: np.ndarray
    base_values: np.ndarray
    data: np.ndarray
    feature_names: tuple[str, ...]
    class_index: npt.NDArray[np.int64]
    provenance: Provenance
    model_output: np.ndarray | None = None
    display_data: Any = None  # (n, P) object array: strings and numbers; JSON gives nested lists back
    class_names: tuple[str, ...] = ()
    output: str = "probability"
    players: Players | None = None

    def __post_init__(self) -> None:
        if self.display_data is not None and not (isinstance(self.display_data, np.ndarray)
                                                  and self.display_data.dtype == object):
            object.__setattr__(self, "display_data", _object_matrix(list(self.display_data),
                                                                    len(self.feature_names)))

    # ---- shap interop --------------------------------------------------------------------
    @classmethod
    def from_explanation(cls, explanation, provenance: Provenance, *, class_index: Any = None,
                         model_output: Any = None, class_names: tuple[str, ...] = (),
                         output: str | None = None, players: Players | None = None) -> "ShapResult":
        """Wrap a 2-D shap.Explanation (n, P). `class_index` defaults to the class id(s) recorded
        in `provenance.settings["target"]`, else -1 (unknown)."""
        values = np.asarray(explanation.values, np.float64)
        if values.ndim != 2:
            raise AuditInputError(f"expected an Explanation of shape (examples, features); got "
                                  f"{values.shape}. Select one output first, e.g. expl[..., 1].")
        n = len(values)
        if class_index is None:
            recorded = provenance.settings.get("target", provenance.settings.get("class_index"))
            class_index = -1 if recorded is None else recorded
        names = explanation.feature_names
        names = tuple(names) if names is not None else tuple(f"x{j}" for j in range(values.shape[1]))
        display = explanation.display_data
        return cls(values=values,
                   base_values=np.broadcast_to(np.asarray(explanation.base_values, np.float64), (n,)).copy(),
                   data=np.asarray(explanation.data, np.float64), feature_names=names,
                   class_index=np.broadcast_to(np.asarray(class_index, np.int64), (n,)).copy(),
                   provenance=provenance,
                   model_output=None if model_output is None else np.asarray(model_output, np.float64),
                   display_data=None if display is None else np.asarray(display, dtype=object),
                   class_names=tuple(class_names),
                   output=output or str(provenance.settings.get("output", "probability")),
                   players=players)

    def to_explanation(self):
        """A shap.Explanation (values, base_values, data, display_data, feature_names) that
        shap.plots.waterfall / beeswarm / bar accept."""
        import shap

        return shap.Explanation(values=self.values, base_values=self.base_values, data=self.data,
                                display_data=self.display_data, feature_names=list(self.feature_names),
                                compute_time=self.provenance.seconds)

    # ---- views ---------------------------------------------------------------------------
    def importance(self) -> dict[str, float]:
        """Mean |SHAP| per feature, largest first."""
        return _importance(self.values, self.feature_names)

    def input_attributions(self) -> np.ndarray:
        """Values spread over the model inputs, shape (n, *input_shape): each player's value is
        split evenly over its inputs (so sums are kept), e.g. to paint patches on an image."""
        if self.players is None:
            raise AuditInputError("this result does not record its players; it cannot be mapped "
                                  "back to model inputs.")
        out = np.zeros((len(self.values), self.players.n_inputs))
        for j, group in enumerate(self.players.groups):
            out[:, list(group)] = self.values[:, j:j + 1] / len(group)
        return out.reshape((len(self.values), *self.players.input_shape))

    @property
    def efficiency_gap(self) -> np.ndarray | None:
        """base + sum(values) - f(x) per example (None when f(x) is not recorded)."""
        if self.model_output is None:
            return None
        return self.base_values + self.values.sum(axis=1) - self.model_output

    def metrics(self) -> dict[str, float]:
        """shap.examples, shap.efficiency_gap (max |gap|), shap.top_feature_share (top feature's
        share of the total mean |SHAP|) and shap.importance.<feature> (mean |SHAP|)."""
        imp = self.importance()
        total = sum(imp.values())
        gap = self.efficiency_gap
        out = {"shap.examples": float(len(self.values)),
               "shap.efficiency_gap": float(np.abs(gap).max()) if gap is not None and gap.size else float("nan"),
               "shap.top_feature_share": float(max(imp.values()) / total) if total > 0 else float("nan")}
        out.update({f"shap.importance.{k}": v for k, v in imp.items()})
        return out

    @property
    def findings(self) -> tuple[Finding, ...]:
        """Sanity checks: efficiency (values add up to f(x) - base) and background size."""
        out = []
        gap = self.efficiency_gap
        if gap is not None and gap.size:
            scale = max(float(np.abs(self.model_output - self.base_values).mean()), 1e-6)
            rel = float(np.abs(gap).max()) / scale
            method = self.provenance.method
            ok = rel <= EFFICIENCY_TOLERANCE
            hint = " Raise n_samples." if method.endswith("gradient") else ""
            out.append(Finding(
                id="shap.efficiency", status="pass" if ok else "warn", title="SHAP values add up",
                message=(f"base value + sum of SHAP values differs from the model output by at most "
                         f"{rel:.2%} of the mean |f(x) - base|.{'' if ok else hint}"),
                metric="shap.efficiency_gap", value=float(np.abs(gap).max()),
                threshold=EFFICIENCY_TOLERANCE * scale))
        rows = self.provenance.settings.get("background_rows")
        if isinstance(rows, (int, np.integer)) and rows < 20:
            out.append(Finding(
                id="shap.background", status="warn", title="Small background",
                message=f"only {rows} background rows: base value and attributions are noisy; use 50-100."))
        return tuple(out)


def _object_matrix(rows: list, width: int) -> np.ndarray:
    out = np.empty((len(rows), width), dtype=object)
    for i, row in enumerate(rows):
        for j, v in enumerate(row):
            out[i, j] = np.nan if v is None else v
    return out


def _importance(values: np.ndarray, names) -> dict[str, float]:
    mean_abs = np.abs(np.asarray(values, np.float64)).mean(axis=0)
    order = np.argsort(-mean_abs, kind="stable")
    return {str(names[j]): float(mean_abs[j]) for j in order}


def global_importance(explanation) -> dict[str, float]:
    """Mean |SHAP| per feature over the explained examples, largest first (a shap.Explanation
    of shape (n, P) or a ShapResult)."""
    values = np.asarray(explanation.values)
    if values.ndim != 2:
        raise AuditInputError(f"global_importance needs values of shape (examples, features); got "
                              f"{values.shape}. Select one output first, e.g. expl[..., 1].")
    names = explanation.feature_names
    if names is None:
        names = [f"x{j}" for j in range(values.shape[1])]
    return _importance(values, list(names))


# ---- input checks ------------------------------------------------------------------------
def _from_frame(name: str, value: Any, data) -> Any:
    """A pandas DataFrame as model inputs: columns named like the model's inputs are put in
    their order; with `data` given, raw columns (strings for categoricals) are encoded as its
    encoding does. Anything else passes through unchanged."""
    import pandas as pd

    if not isinstance(value, pd.DataFrame):
        return value
    columns = [str(c) for c in value.columns]
    if len(set(columns)) != len(columns):
        raise AuditInputError(f"{name} has duplicated column names; each column must be named once.")
    if data is None:
        return value.to_numpy()
    encoding = getattr(data, "encoding", None)
    if list(data.feature_names) and set(columns) == set(data.feature_names):
        return value[list(data.feature_names)].to_numpy()
    if encoding is not None and set(columns) >= set(encoding.raw_names):
        return encoding.encode(encoding.raw_matrix(value[list(encoding.raw_names)]))
    raise AuditInputError(f"{name} has columns {columns[:8]}; expected the model's inputs "
                          f"{list(data.feature_names)[:8]} or the raw columns "
                          f"{list(encoding.raw_names) if encoding is not None else []}.")


def _as_rows(name: str, value: Any, model) -> np.ndarray:
    try:
        arr = np.asarray(value, dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise AuditInputError(f"{name} must be a numeric array of shape (n, "
                              f"{', '.join(map(str, model.input_shape))}): {exc}") from None
    if arr.shape[1:] != tuple(model.input_shape) or arr.ndim != len(model.input_shape) + 1:
        hint = " (one example? pass x[None])" if arr.shape == tuple(model.input_shape) else ""
        raise AuditInputError(f"{name} has shape {arr.shape}; this model takes (n, "
                              f"{', '.join(map(str, model.input_shape))}){hint}.")
    if len(arr) == 0:
        raise AuditInputError(f"{name} has no rows.")
    bad = np.flatnonzero(~np.isfinite(arr.reshape(len(arr), -1)).all(axis=1))
    if bad.size:
        raise AuditInputError(f"{name} has NaN or infinite values (first at row {int(bad[0])}).")
    return arr


def _choice(name: str, value: Any, options: tuple[str, ...]) -> str:
    if value not in options:
        raise AuditInputError(f"{name}={value!r}; choose one of {list(options)}.")
    return value


def _resolve_method(method: str, backend: str, model, n_players: int, n_samples: int | None) -> str:
    if method == "auto":
        method = "exact" if n_players <= AUTO_EXACT_PLAYERS and n_samples is None else "kernel"
    if backend == "native" and method == "permutation":
        raise AuditInputError("method='permutation' runs shap's PermutationExplainer; pass "
                              "backend='shap' (native methods: exact, kernel, gradient).")
    if backend == "shap" and method == "gradient":
        raise AuditInputError("shap's GradientExplainer does not support JAX models; use "
                              "backend='native' with method='gradient'.")
    if method == "gradient" and not model.differentiable:
        raise AuditInputError("method='gradient' needs gradients, but this model has "
                              "differentiable=False; use method='exact' or 'kernel'.")
    if method == "exact":
        if n_samples is not None:
            raise AuditInputError("method='exact' enumerates every coalition and takes no n_samples; "
                                  "drop n_samples or use method='kernel'.")
        if n_players > MAX_PLAYERS:
            raise AuditInputError(f"method='exact' with {n_players} players needs 2^{n_players} "
                                  f"coalitions; use at most {MAX_PLAYERS} players (e.g. a larger "
                                  "patch) or method='kernel'.")
    if n_samples is not None and (isinstance(n_samples, bool) or not isinstance(n_samples, (int, np.integer))
                                  or n_samples < 1):
        raise AuditInputError(f"n_samples={n_samples!r} must be a positive integer.")
    if method == "kernel" and n_samples is not None and n_samples < min_budget(n_players):
        raise AuditInputError(f"kernel SHAP with n_samples={n_samples} cannot determine {n_players} "
                              f"players' values; use n_samples >= {min_budget(n_players)} "
                              f"(default {default_budget(n_players)}).")
    if method == "permutation" and n_samples is not None and n_samples < 2 * n_players + 1:
        raise AuditInputError(f"shap's PermutationExplainer needs n_samples >= {2 * n_players + 1} "
                              f"(one forward and backward pass over {n_players} players).")
    return method


def _class_setting(target: Any, n: int, model) -> int | list[int] | None:
    """None, one class id for all rows, or one class id per row (returned as a list)."""
    if target is None:
        return None
    ids = np.asarray(target)
    ok = ids.dtype.kind in "iu" and ids.ndim in (0, 1) and (ids.ndim == 0 or ids.shape == (n,))
    if not ok or isinstance(target, bool) or (ids.size and not ((ids >= 0) & (ids < model.n_classes)).all()):
        raise AuditInputError(f"target={target!r} must be None, a class id in "
                              f"[0, {model.n_classes}) for classes {list(model.class_names)}, or one "
                              f"such id per row of X ({n}).")
    return int(ids) if ids.ndim == 0 else [int(c) for c in ids]


def compute_shap(model, X: Any, background: Any, *, method: str = "auto", backend: str = "native",
                 players: str | None = None, patch: int | None = None, n_samples: int | None = None,
                 target: int | Sequence[int] | None = None, output: str = "probability", seed: int = 0,
                 data=None) -> ShapResult:
    """SHAP values as a `ShapResult` (what `shap_values` returns, plus f(x), the explained class
    per example, the players and provenance). Arguments as for `shap_values`."""
    method = _choice("method", method, METHODS)
    backend = _choice("backend", backend, BACKENDS)
    output = _choice("output", output, OUTPUTS)
    seed = check_seed(seed)
    x = _as_rows("X", _from_frame("X", X, data), model)
    bg = _as_rows("background", _from_frame("background", background, data), model)
    requested = method if method != "auto" else None
    pl = _players.resolve(model, data, players, patch, requested or "auto")
    method = _resolve_method(method, backend, model, pl.n, n_samples)
    requested_class = _class_setting(target, len(x), model)
    with timer() as t:
        flat, bg_flat = x.reshape(len(x), -1), bg.reshape(len(bg), -1)
        if requested_class is not None:
            cls = np.broadcast_to(np.asarray(requested_class, np.int64), (len(x),)).copy()
        else:
            cls = explained_class(model, x).astype(np.int64)
        budget = n_samples
        if backend == "shap":
            from audit.explain._shap_backend import shap_library

            phi, base, fx = shap_library(model, flat, cls, bg_flat, pl, method=method,
                                         n_samples=n_samples, seed=int(seed), output=output)
        elif method == "exact":
            phi, base, fx = exact_shap(model, flat, cls, bg_flat, pl.owner(), pl.n, output=output,
                                       chunk_rows=CHUNK_ROWS)
        elif method == "kernel":
            budget = default_budget(pl.n) if n_samples is None else int(n_samples)
            phi, base, fx = kernel_shap(model, flat, cls, bg_flat, pl.owner(), pl.n, budget=budget,
                                        seed=int(seed), output=output, chunk_rows=CHUNK_ROWS)
        else:
            budget = GRADIENT_SAMPLES if n_samples is None else int(n_samples)
            attr = expected_gradients(model, flat, cls, bg_flat, n_samples=budget, seed=int(seed),
                                      output=output, chunk_rows=CHUNK_ROWS)
            phi = attr @ pl.matrix().T.astype(np.float64)
            v0, fx = _ends(model, flat, cls, bg_flat, output)
            base = v0
        values, display = player_data(pl, x, data)
    settings = {"backend": backend, "players": pl.kind, "n_players": pl.n, "n_samples": budget,
                "target": requested_class, "output": output, "background_rows": len(bg)}
    if pl.kind == "patches":
        settings["patch"] = int(patch) if patch is not None else _players.default_patch(pl.input_shape)
    name = {"exact": "shap.exact", "kernel": "shap.kernel", "gradient": "shap.expected_gradients",
            "permutation": "shap.permutation"}[method]
    return ShapResult(values=np.asarray(phi, np.float64), base_values=np.asarray(base, np.float64),
                      data=values, feature_names=pl.names, class_index=cls,
                      provenance=Provenance(method=name if backend == "native" else f"{name}[shap]",
                                            settings=settings, seed=int(seed), seconds=t[0]),
                      model_output=np.asarray(fx, np.float64), display_data=display,
                      class_names=tuple(model.class_names), output=output, players=pl)


def _ends(model, flat, cls, bg_flat, output) -> tuple[np.ndarray, np.ndarray]:
    """v(empty) = E_b f(b) and f(x) for the explained classes."""
    from audit.explain._players import coalition_values

    ends = np.zeros((2, 1), bool)
    ends[1] = True
    owner = np.zeros(flat.shape[1], np.int64)
    v = coalition_values(model, flat, cls, bg_flat, ends, owner, output=output, chunk_rows=CHUNK_ROWS)
    return v[:, 0], v[:, 1]


def shap_values(model, X: Any, background: Any, *, method: str = "auto", backend: str = "native",
                players: str | None = None, patch: int | None = None, n_samples: int | None = None,
                target: int | Sequence[int] | None = None, output: str = "probability", seed: int = 0,
                data=None):
    """Interventional SHAP values of `model` on rows `X` against `background`, as a shap.Explanation
    of shape (n, P) that shap.plots.waterfall / beeswarm / bar accept.

    method: "exact" (all 2^P coalitions; the "auto" choice up to 12 players without n_samples),
    "kernel" (KernelSHAP with `n_samples` coalitions, default 2P + 2048, drawn anew for every
    background row; "auto" beyond 12 players),
    "gradient" (expected gradients with `n_samples` draws, default 200; differentiable models), or
    "permutation" (backend="shap" only). backend="shap" runs shap's own explainers instead.
    players: "raw" (one per raw tabular column, one-hot blocks together; the default when `data`
    has a tabular encoding), "inputs" (one per input; the default for other tabular models and
    for images with method="gradient") or "patches" (square `patch`-pixel image patches over all
    channels, default a 4x4 grid; the default for images).
    target: the class explained (one id, or one id per row of X); None means the positive
    class (1) for two-class models and the predicted class of each example otherwise (the
    default of every explainer in audit.explain).
    output: "probability" (softmax, default) or "logit". Same seed, same values; an example gets
    the same values alone or in a batch. X and background may be pandas DataFrames: of the
    model's inputs (matched by column name), or, with `data`, of raw columns (encoded as `data`
    encodes them). For f(x), the explained classes and provenance, use
    `compute_shap`, which returns a ShapResult.
    """
    return compute_shap(model, X, background, method=method, backend=backend, players=players,
                        patch=patch, n_samples=n_samples, target=target, output=output,
                        seed=seed, data=data).to_explanation()
