"""`analyze()`: local explanations, global importance and their quality in one `ExplanationReport`.

Picks examples from the test split (seeded, including misclassified ones), explains them with
SHAP, LIME and gradient methods, adds global importance (mean |SHAP| and permutation
importance) and measures every explanation: deletion / insertion faithfulness, agreement
between methods and stability under small input noise.

Methods are a table (`EXPLAINERS`, as `robustness.ATTACKS` is for attacks): each entry maps
(setup, rows, targets, seed) to an Attribution of those rows, so the examples and their noisy
copies (for stability) go through the same function.
"""

from __future__ import annotations

import dataclasses
import itertools
from typing import Any, Callable, Sequence

import numpy as np

from audit.data._encoding import format_value
from audit.errors import AuditInputError
from audit.explain import _lime, _lime_native, _lrp, _saliency
from audit.explain._attribution import Attribution
from audit.explain._background import background
from audit.explain._gradcam import grad_cam
from audit.explain._importance import permutation_importance
from audit.explain._quality import Stability, faithfulness_curves, rank_agreement, stability
from audit.explain._report import ExplanationReport
from audit.explain._saliency import explained_class
from audit.explain._interaction_designs import min_budget
from audit.explain._players import resolve
from audit.explain._shap import ShapResult, compute_shap
from audit.explain._shap_interactions import shap_interactions
from audit.explain._surrogate import surrogate_tree
from audit.results import Provenance, timer


@dataclasses.dataclass(frozen=True)
class Setup:
    """What every method needs to explain rows of one data set: the model, the data, the
    settings, and the training statistics (baselines and noise scales)."""

    model: Any
    data: Any
    steps: int
    lime_samples: int
    background_size: int
    batch: int  # the same chunk for the examples and their noisy copies: one compilation
    seed: int

    @property
    def tabular(self) -> bool:
        return self.data.kind == "tabular"

    @property
    def train(self) -> np.ndarray:
        return self.data.part("train").X if len(self.data.splits.get("train", ())) else self.data.X

    @property
    def mean_input(self) -> np.ndarray:
        return self.train.mean(axis=0)

    def per_raw_column(self, a: Attribution) -> Attribution:
        """Tabular attributions of model inputs summed per raw column (one-hot blocks together)."""
        if self.tabular and a.level == "input":
            return a.grouped(self.data.feature_groups, self.data.raw_feature_names)
        return a


Explainer = Callable[[Setup, np.ndarray, np.ndarray, int], Attribution]


@dataclasses.dataclass(frozen=True)
class Method:
    """One row of the method table: `explain(setup, rows, targets, seed)`, and its capabilities.
    `raw_rows`: explains tabular rows in raw-column space (LIME), not model inputs."""

    explain: Explainer
    needs_gradients: bool = False
    raw_rows: bool = False


def shap_result(s: Setup, rows: np.ndarray, t: np.ndarray, seed: int) -> ShapResult:
    """Part A's SHAP: exact over raw columns for tabular data, expected gradients per pixel for images."""
    bg = background(s.data, size=s.background_size, seed=s.seed)
    kw = {} if s.tabular else {"method": "gradient", "players": "inputs"}
    return compute_shap(s.model, rows, bg, data=s.data, seed=seed, target=t.tolist(), **kw)


def shap_attribution(s: Setup, res: ShapResult, rows: np.ndarray, t: np.ndarray) -> Attribution:
    extras = {"base_value": res.base_values}
    if res.model_output is not None:
        extras["output"] = res.model_output
    return Attribution(method="shap", values=res.values if s.tabular else res.input_attributions(), target=t,
                       level="raw" if s.tabular else "input", inputs=None if s.tabular else rows,
                       feature_names=res.feature_names if s.tabular else (), extras=extras, provenance=res.provenance)


def _shap(s: Setup, rows: np.ndarray, t: np.ndarray, seed: int) -> Attribution:
    return shap_attribution(s, shap_result(s, rows, t, seed), rows, t)


def _lime_method(s: Setup, rows: np.ndarray, t: np.ndarray, seed: int) -> Attribution:
    if s.tabular:
        return s.per_raw_column(_lime_native.lime_native(s.model, s.data, rows, target=t,
                                                         num_samples=s.lime_samples, seed=seed))
    return _lime.lime_image(s.model, rows, target=t, num_samples=s.lime_samples, seed=seed)


def _integrated_gradients(s: Setup, rows: np.ndarray, t: np.ndarray, seed: int) -> Attribution:
    return s.per_raw_column(_saliency.integrated_gradients(
        s.model, rows, target=t, steps=s.steps, baseline=s.mean_input if s.tabular else None, batch_size=s.batch))


def _smoothgrad(s: Setup, rows: np.ndarray, t: np.ndarray, seed: int) -> Attribution:
    return s.per_raw_column(_saliency.smoothgrad(s.model, rows, target=t, seed=seed, batch_size=s.batch))


def _gradient(s: Setup, rows: np.ndarray, t: np.ndarray, seed: int) -> Attribution:
    return s.per_raw_column(_saliency.gradient(s.model, rows, target=t, batch_size=s.batch))


def _gradient_x_input(s: Setup, rows: np.ndarray, t: np.ndarray, seed: int) -> Attribution:
    return s.per_raw_column(_saliency.gradient_x_input(s.model, rows, target=t, batch_size=s.batch))


def _lrp_method(s: Setup, rows: np.ndarray, t: np.ndarray, seed: int) -> Attribution:
    return s.per_raw_column(_lrp.lrp(s.model, rows, target=t, batch_size=s.batch))


def _deeplift(s: Setup, rows: np.ndarray, t: np.ndarray, seed: int) -> Attribution:
    return s.per_raw_column(_lrp.deeplift(s.model, rows, target=t, baseline=s.mean_input if s.tabular else None,
                                          batch_size=s.batch))


def _grad_cam(s: Setup, rows: np.ndarray, t: np.ndarray, seed: int) -> Attribution:
    return grad_cam(s.model, rows, target=t, method="gradcam", batch_size=s.batch)


def _grad_cam_pp(s: Setup, rows: np.ndarray, t: np.ndarray, seed: int) -> Attribution:
    return grad_cam(s.model, rows, target=t, method="gradcam++", batch_size=s.batch)


EXPLAINERS: dict[str, Method] = {
    "shap": Method(_shap),
    "lime": Method(_lime_method, raw_rows=True),
    "gradient": Method(_gradient, needs_gradients=True),
    "gradient_x_input": Method(_gradient_x_input, needs_gradients=True),
    "integrated_gradients": Method(_integrated_gradients, needs_gradients=True),
    "smoothgrad": Method(_smoothgrad, needs_gradients=True),
    # relevance propagation and class activation maps: layers read from the model's jaxpr (#18)
    "lrp": Method(_lrp_method, needs_gradients=True),
    "deeplift": Method(_deeplift, needs_gradients=True),
    "grad_cam": Method(_grad_cam, needs_gradients=True),
    "grad_cam_pp": Method(_grad_cam_pp, needs_gradients=True),
}
METHODS = tuple(EXPLAINERS)
GRADIENT_METHODS = tuple(m for m, spec in EXPLAINERS.items() if spec.needs_gradients)
PROPAGATION_METHODS = ("lrp", "deeplift", "grad_cam", "grad_cam_pp")
DEFAULT_METHODS = {"tabular": ("shap", "lime", "integrated_gradients", "deeplift"),
                   "image": ("shap", "lime", "gradient", "gradient_x_input", "integrated_gradients",
                             "smoothgrad", "lrp", "deeplift", "grad_cam", "grad_cam_pp")}
IMAGE_INTERACTION_EXAMPLES = 4  # images explained for interactions (~2.4k model rows each)


def pick_examples(model, test, *, n_examples: int, seed: int) -> np.ndarray:
    """Seeded rows of `test`: up to a quarter (at least one when any exist) misclassified."""
    pred = model.predict(test.X)
    wrong, right = np.flatnonzero(pred != test.y), np.flatnonzero(pred == test.y)
    rng = np.random.default_rng(seed)
    n_wrong = min(len(wrong), max(1, n_examples // 4)) if len(wrong) else 0
    n_right = min(len(right), n_examples - n_wrong)
    n_wrong = min(len(wrong), n_examples - n_right)
    rows = np.concatenate([rng.choice(wrong, n_wrong, replace=False), rng.choice(right, n_right, replace=False)])
    return np.sort(rows).astype(np.int64)


def _methods(model, kind: str, methods: Sequence[str] | None) -> tuple[tuple[str, ...], dict[str, str]]:
    skipped: dict[str, str] = {}
    if methods is None:
        chosen = DEFAULT_METHODS[kind]
        if not model.differentiable:
            skipped = {m: "the model is not differentiable" for m in chosen if m in GRADIENT_METHODS}
            chosen = tuple(m for m in chosen if m not in GRADIENT_METHODS)
        return chosen, skipped
    chosen = tuple(methods)
    unknown = [m for m in chosen if m not in METHODS]
    if unknown or not chosen:
        raise AuditInputError(f"unknown explanation methods {unknown or '[]'}; choose from {list(METHODS)}.")
    if not model.differentiable and any(m in GRADIENT_METHODS for m in chosen):
        raise AuditInputError(f"methods {[m for m in chosen if m in GRADIENT_METHODS]} need gradients but "
                              "the model is marked differentiable=False; drop them or use shap / lime.")
    return chosen, skipped


def _noise_scales(s: Setup, noise: float) -> dict[str, Any]:
    """Stability noise std per input space: `noise` x the training std of each model input
    ("inputs") and raw column ("raw"; categorical columns and one-hots are not perturbed), or x
    the pixel range for images."""
    if not s.tabular:
        return {"inputs": noise * (float(s.train.max() - s.train.min()) or 1.0)}
    space = _lime.raw_space(s.model, s.data)
    std = s.train.std(axis=0)
    return {"raw": np.where(space.categorical, 0.0, noise * space.train.std(axis=0)),
            "inputs": np.where(s.data.encoding.categorical_mask, 0.0, noise * std)
            if s.data.encoding is not None else noise * std}


def analyze(model, data, *, n_examples: int = 8, methods: Sequence[str] | None = None, seed: int = 0,
            progress: bool = False, steps: int = 50, lime_samples: int | None = None,
            background_size: int = 50, stability_samples: int = 3, noise: float = 0.05,
            permutation_repeats: int = 10, interactions: bool = True, interaction_examples: int = 64,
            surrogate: bool = True, surrogate_depth: int = 3) -> ExplanationReport:
    """Explain `n_examples` test examples of `data` with several methods and measure the explanations.

    methods: any of "shap" (part A's SHAP, exact over raw columns for tabular data, expected
    gradients per pixel for images), "lime" (native JAX LIME for tabular data, the lime package
    on superpixels for images), "gradient", "gradient_x_input", "integrated_gradients"
    (`steps`, trapezoid rule; tabular baseline: the training mean), "smoothgrad", "lrp" (epsilon
    rule), "deeplift" (rescale; baseline as for IG), "grad_cam" and "grad_cam_pp" (last conv
    layer; images); default shap + lime + IG + DeepLIFT for tabular data, all for images (a
    default LRP / DeepLIFT / Grad-CAM on layers they cannot read is skipped with the reason).
    Tabular attributions are reported per raw column (one-hot blocks summed). Stability uses
    `stability_samples` noisy copies with noise std `noise` x the feature's training std
    (images: x the pixel range); LIME and SHAP re-explain the copies with a fresh seed, so their
    sampling noise counts. interactions: SHAP interaction values (`shap_interactions`) on
    `interaction_examples` test rows over the SHAP players (raw columns; image patches: at most 4
    images, 10 background rows, one block of sampled orders each), for the top pairs, heatmap
    and dependence plots. surrogate (tabular data): rules of a depth-`surrogate_depth` tree fit
    to the model's predictions (`surrogate_tree`), with fidelity overall and per sensitive group.
    """
    if data.kind not in DEFAULT_METHODS:
        raise AuditInputError(f"data kind {data.kind!r} must be 'tabular' or 'image'.")
    if tuple(data.input_shape) != tuple(model.input_shape):
        raise AuditInputError(f"the data has inputs {data.input_shape} but the model takes {model.input_shape}.")
    if int(n_examples) < 2:
        raise AuditInputError(f"n_examples must be >= 2 (agreement and stability need a few), got {n_examples}.")
    for name, value in (("interaction_examples", interaction_examples), ("surrogate_depth", surrogate_depth)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise AuditInputError(f"{name}={value!r} must be a positive integer.")
    chosen, skipped = _methods(model, data.kind, methods)
    test = data.part("test") if len(data.splits.get("test", ())) else data
    from tqdm.auto import tqdm

    bar = tqdm(total=len(chosen) + 3, desc="explain", disable=not progress)
    with timer() as clock:
        rows = pick_examples(model, test, n_examples=int(n_examples), seed=seed)
        X, y = test.X[rows], test.y[rows]
        t = explained_class(model, X)
        tabular = data.kind == "tabular"
        setup = Setup(model=model, data=data, steps=steps, lime_samples=lime_samples or (5000 if tabular else 1000),
                      background_size=background_size, batch=len(rows), seed=seed)
        raw = test.raw[rows] if tabular and test.raw is not None else X.reshape(len(rows), -1)
        sigma = _noise_scales(setup, noise)
        attributions: dict[str, Attribution] = {}
        stab: dict[str, Stability] = {}
        shap = None
        for m in chosen:
            bar.set_postfix_str(m)
            spec = EXPLAINERS[m]
            inputs = raw if tabular and spec.raw_rows else X
            if m == "shap":  # the full ShapResult goes into the report too
                shap = shap_result(setup, inputs, t, seed)
                attributions[m] = shap_attribution(setup, shap, inputs, t)
            else:
                try:
                    attributions[m] = spec.explain(setup, inputs, t, seed)
                except AuditInputError as exc:  # a default LRP/DeepLIFT/Grad-CAM on layers it cannot read
                    if methods is not None or m not in PROPAGATION_METHODS:
                        raise
                    skipped[m] = str(exc)
                    bar.update()
                    continue
            if stability_samples:
                def noisy(copies, _spec=spec):  # the copies' targets repeat the examples'
                    return _spec.explain(setup, copies, np.repeat(t, len(copies) // len(t)), seed + 1).values
                stab[m] = stability(noisy, inputs, sigma=sigma["raw" if tabular and spec.raw_rows else "inputs"],
                                    n_samples=int(stability_samples), seed=seed + 1,
                                    reference=attributions[m].values)
            bar.update()
        bar.set_postfix_str("faithfulness")
        deletion_baseline = setup.mean_input if tabular else np.zeros(model.input_shape, np.float32)
        curves = {m: faithfulness_curves(model, X, a.values, target=t, baseline=deletion_baseline,
                                         groups=data.feature_groups if a.level == "raw" else None, seed=seed)
                  for m, a in attributions.items()}
        bar.update()
        agreement = {f"{a}~{b}": rank_agreement(attributions[a].values, attributions[b].values)
                     for a, b in itertools.combinations(attributions, 2)}
        bar.update()
        permutation = None
        if data.kind == "tabular":
            bar.set_postfix_str("permutation")
            permutation = permutation_importance(model, test.X, test.y, groups=data.feature_groups,
                                                 feature_names=data.raw_feature_names,
                                                 n_repeats=permutation_repeats, seed=seed)
        bar.update()
        inter = _interactions(model, data, test, seed=seed, n_examples=int(interaction_examples),
                              background_size=background_size) if interactions else None
        rules = None
        if surrogate and data.kind == "tabular" and all(len(data.splits.get(k, ())) for k in ("train", "test")):
            rules = surrogate_tree(model, data, max_depth=int(surrogate_depth), seed=seed)
    bar.close()
    names = data.raw_feature_names if data.kind == "tabular" else ()
    display_rows = ()
    if data.kind == "tabular" and data.encoding is not None and test.raw is not None:
        display_rows = tuple(tuple(format_value(v) for v in row) for row in data.encoding.display(test.raw[rows]))
    settings = {"n_examples": int(n_examples), "methods": list(chosen), "steps": steps,
                "lime_samples": setup.lime_samples, "background_size": background_size,
                "stability_samples": stability_samples, "noise": noise,
                "permutation_repeats": permutation_repeats, "interactions": bool(interactions),
                "interaction_examples": int(interaction_examples), "surrogate": bool(surrogate),
                "surrogate_depth": int(surrogate_depth)}
    return ExplanationReport(kind=data.kind, rows=rows, labels=y.astype(np.int64),
                             predictions=model.predict(X).astype(np.int64), target=t.astype(np.int64),
                             class_names=tuple(model.class_names), feature_names=tuple(names),
                             attributions=attributions, curves=curves, agreement=agreement, stability=stab,
                             provenance=Provenance("explain.analyze", settings, seed, clock[0]),
                             shap=shap, permutation=permutation, skipped=skipped, display_rows=display_rows,
                             interactions=inter, surrogate=rules)


def _interactions(model, data, test, *, seed: int, n_examples: int, background_size: int):
    """SHAP interaction values on `n_examples` seeded test rows (exact up to 12 players)."""
    budget = None
    if data.kind == "image":  # 16 patches, sampled: one block of orders per background row
        n_examples, background_size = min(n_examples, IMAGE_INTERACTION_EXAMPLES), min(background_size, 10)
        budget = min_budget(resolve(model, data, None, None, "exact").n)
    rows = np.sort(np.random.default_rng(seed).choice(len(test), size=min(n_examples, len(test)), replace=False))
    bg = background(data, size=background_size, seed=seed)
    return shap_interactions(model, test.X[rows], bg, data=data, seed=seed, n_samples=budget,
                             method="auto" if budget is None else "sampled")
