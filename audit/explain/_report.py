"""`analyze()`: local explanations, global importance and their quality in one result.

Picks examples from the test split (seeded, including misclassified ones), explains them with
SHAP, LIME and gradient methods, adds global importance (mean |SHAP| and permutation
importance) and measures every explanation: deletion / insertion faithfulness, agreement
between methods and stability under small input noise. `ExplanationReport` is frozen and
JSON-serialisable; the HTML report and the dashboard draw it with `audit.render.figures`.
"""

from __future__ import annotations

import dataclasses
import itertools
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from audit.errors import AuditInputError
from audit.explain._attribution import Attribution
from audit.explain._importance import PermutationImportance, permutation_importance
from audit.explain._quality import Agreement, Curves, Stability, faithfulness_curves, rank_agreement, stability
from audit.results import Finding, Provenance, timer, to_jsonable

PROPAGATION_METHODS = ("lrp", "deeplift", "grad_cam", "grad_cam_pp")  # layers read from the jaxpr (#18)
GRADIENT_METHODS = ("gradient", "gradient_x_input", "integrated_gradients", "smoothgrad", *PROPAGATION_METHODS)
METHODS = ("shap", "lime", *GRADIENT_METHODS)
DEFAULT_METHODS = {"tabular": ("shap", "lime", "integrated_gradients", "deeplift"),
                   "image": ("shap", "lime", "gradient", "gradient_x_input", "integrated_gradients",
                             "smoothgrad", "lrp", "deeplift", "grad_cam", "grad_cam_pp")}
DISAGREEMENT = 0.3  # mean Spearman below which two methods "disagree strongly"
IMAGE_INTERACTION_EXAMPLES = 4  # images explained for interactions (~2.4k model rows each)
UNSTABLE = 0.6  # mean Spearman between x and noisy x below which a method is "unstable"


@dataclasses.dataclass(frozen=True, eq=False)
class ExplanationReport:
    """Explanations of a few test examples, global importance and explanation quality.

    rows: indices into the test split of the explained examples; labels / predictions / target
    (the explained class: the positive class for two-class models, else the prediction).
    attributions: method -> Attribution (raw columns for tabular data, pixels for images).
    shap: part A's ShapResult (None when SHAP was not run); permutation: PermutationImportance.
    curves / stability: per method; agreement: per "a~b" pair. skipped: method -> reason.
    """

    SCHEMA = 1

    kind: str
    rows: np.ndarray
    labels: np.ndarray
    predictions: np.ndarray
    target: np.ndarray
    class_names: tuple[str, ...]
    feature_names: tuple[str, ...]
    attributions: Mapping[str, Attribution]
    curves: Mapping[str, Curves]
    agreement: Mapping[str, Agreement]
    stability: Mapping[str, Stability]
    provenance: Provenance
    shap: Any = None
    permutation: PermutationImportance | None = None
    skipped: Mapping[str, str] = dataclasses.field(default_factory=dict)
    interactions: Any = None  # InteractionResult over `interaction_examples` test rows (#18)
    surrogate: Any = None  # SurrogateResult: rules of a tree fit to the model's predictions (#18)

    @property
    def methods(self) -> tuple[str, ...]:
        return tuple(self.attributions)

    @property
    def misclassified(self) -> np.ndarray:
        return self.labels != self.predictions

    def global_importance(self) -> dict[str, dict[str, float]]:
        """{"mean_abs_shap": {feature: value}, "permutation": {feature: mean increase}}."""
        out: dict[str, dict[str, float]] = {}
        if self.shap is not None and self.kind == "tabular":
            out["mean_abs_shap"] = dict(self.shap.importance())
        if self.permutation is not None:
            out["permutation"] = {k: float(v) for k, v in zip(self.permutation.feature_names, self.permutation.mean)}
        return out

    # ---- results contract --------------------------------------------------------------
    def metrics(self) -> dict[str, float]:
        """Flat metrics: explained_examples, misclassified_examples, ig_completeness_error
        (aggregate relative error), lime_local_fit (mean weighted R^2), deletion_auc:<method> /
        insertion_auc:<method> (mean over examples; deletion_auc:random / insertion_auc:random
        for a random order), stability:<method> (mean Spearman between the attribution of x and
        of noisy x; 1 = stable), sensitivity:<method> (mean relative L2 change under that noise),
        rank_agreement:<a>~<b> (mean Spearman), top_k_overlap:<a>~<b>, SHAP's own metrics
        (shap.*) and permutation_importance:<feature> / permutation_baseline_score."""
        out: dict[str, float] = {"explained_examples": float(len(self.rows)),
                                 "misclassified_examples": float(self.misclassified.sum())}
        ig = self.attributions.get("integrated_gradients")
        if ig is not None and ig.completeness_error() is not None:
            out["ig_completeness_error"] = float(ig.completeness_error())
        lime = self.attributions.get("lime")
        if lime is not None and "score" in lime.extras:
            out["lime_local_fit"] = float(np.nanmean(lime.extras["score"]))
        random = None
        for m, c in self.curves.items():
            out[f"deletion_auc:{m}"] = float(c.deletion_auc.mean())
            out[f"insertion_auc:{m}"] = float(c.insertion_auc.mean())
            random = c
        if random is not None:
            out["deletion_auc:random"] = float(random.deletion_auc_random.mean())
            out["insertion_auc:random"] = float(random.insertion_auc_random.mean())
        for m, s in self.stability.items():
            out[f"stability:{m}"] = float(np.nanmean(s.spearman))
            out[f"sensitivity:{m}"] = float(np.nanmean(s.relative_change))
        for pair, a in self.agreement.items():
            out[f"rank_agreement:{pair}"] = float(np.nanmean(a.spearman))
            out[f"top_k_overlap:{pair}"] = float(np.nanmean(a.top_k))
        if self.shap is not None:
            out.update(self.shap.metrics())
        if self.permutation is not None:
            out.update(self.permutation.metrics())
        for part in (self.interactions, self.surrogate):
            if part is not None:
                out.update(part.metrics())
        return out

    @property
    def findings(self) -> tuple[Finding, ...]:
        found: list[Finding] = []
        for a in self.attributions.values():
            found.extend(a.findings)
        if self.shap is not None:
            found.extend(self.shap.findings)
        for part in (self.interactions, self.surrogate):
            if part is not None:
                found.extend(part.findings)
        m = self.metrics()
        for method, c in self.curves.items():
            ours, rnd = float(c.deletion_auc.mean()), float(c.deletion_auc_random.mean())
            ok = ours < rnd
            found.append(Finding(
                id=f"explain.faithfulness.{method}", status="pass" if ok else "warn",
                title=f"{method}: faithfulness",
                message=(f"deleting features in {method}'s order lowers the model's confidence faster "
                         f"than a random order (deletion AUC {ours:.3f} vs {rnd:.3f})" if ok else
                         f"deleting features in {method}'s order is no faster than a random order "
                         f"(deletion AUC {ours:.3f} vs {rnd:.3f}): the attribution misses what the model uses"),
                metric=f"deletion_auc:{method}", value=ours, threshold=rnd))
        disagree = {p: m[f"rank_agreement:{p}"] for p in self.agreement if m[f"rank_agreement:{p}"] < DISAGREEMENT}
        if self.agreement:
            found.append(Finding(
                id="explain.agreement", status="warn" if disagree else "pass", title="Methods agree",
                message=("methods disagree strongly on the ranking of features: " +
                         ", ".join(f"{p} (Spearman {v:.2f})" for p, v in disagree.items()) if disagree else
                         f"every pair of methods ranks features alike (Spearman >= {DISAGREEMENT})"),
                metric=None, value=float(min(m[f"rank_agreement:{p}"] for p in self.agreement)),
                threshold=DISAGREEMENT))
        for method in self.stability:
            v = m[f"stability:{method}"]
            ok = not v < UNSTABLE
            found.append(Finding(
                id=f"explain.stability.{method}", status="pass" if ok else "warn",
                title=f"{method}: stability",
                message=(f"small input noise keeps {method}'s feature ranking (Spearman {v:.2f})" if ok else
                         f"{method}'s explanation is unstable: small input noise reorders its features "
                         f"(Spearman {v:.2f} < {UNSTABLE})"),
                metric=f"stability:{method}", value=v, threshold=UNSTABLE))
        return tuple(found)

    def to_dict(self) -> dict[str, Any]:
        return {"schema": self.SCHEMA, "kind": self.kind, "rows": self.rows.tolist(),
                "labels": self.labels.tolist(), "predictions": self.predictions.tolist(),
                "target": self.target.tolist(), "class_names": list(self.class_names),
                "feature_names": list(self.feature_names),
                "attributions": {k: v.to_dict() for k, v in self.attributions.items()},
                "curves": {k: v.to_dict() for k, v in self.curves.items()},
                "agreement": {k: v.to_dict() for k, v in self.agreement.items()},
                "stability": {k: v.to_dict() for k, v in self.stability.items()},
                "provenance": self.provenance.to_dict(),
                "shap": None if self.shap is None else self.shap.to_dict(),
                "permutation": None if self.permutation is None else self.permutation.to_dict(),
                "skipped": dict(self.skipped),
                "interactions": None if self.interactions is None else to_jsonable(self.interactions.to_dict()),
                "surrogate": None if self.surrogate is None else to_jsonable(self.surrogate.to_dict())}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "ExplanationReport":
        if d.get("schema") != cls.SCHEMA:
            raise AuditInputError(f"ExplanationReport schema {d.get('schema')!r} is not {cls.SCHEMA}; "
                                  "rerun the analysis with this version.")
        shap = None
        if d.get("shap") is not None:
            from audit.explain._shap import ShapResult

            shap = ShapResult.from_dict(d["shap"])
        ints = lambda v: np.asarray(v, np.int64)
        return cls(kind=d["kind"], rows=ints(d["rows"]), labels=ints(d["labels"]),
                   predictions=ints(d["predictions"]), target=ints(d["target"]),
                   class_names=tuple(d["class_names"]), feature_names=tuple(d["feature_names"]),
                   attributions={k: Attribution.from_dict(v) for k, v in d["attributions"].items()},
                   curves={k: Curves.from_dict(v) for k, v in d["curves"].items()},
                   agreement={k: Agreement.from_dict(v) for k, v in d["agreement"].items()},
                   stability={k: Stability.from_dict(v) for k, v in d["stability"].items()},
                   provenance=Provenance.from_dict(d["provenance"]), shap=shap,
                   permutation=None if d.get("permutation") is None else
                   PermutationImportance.from_dict(d["permutation"]),
                   skipped=dict(d.get("skipped") or {}), **_optional_parts(d))


def _optional_parts(d: Mapping[str, Any]) -> dict[str, Any]:
    """The interaction and surrogate parts of a stored report (absent in older files)."""
    from audit.explain._shap_interactions import InteractionResult
    from audit.explain._surrogate import SurrogateResult

    return {"interactions": None if d.get("interactions") is None else InteractionResult.from_dict(d["interactions"]),
            "surrogate": None if d.get("surrogate") is None else SurrogateResult.from_dict(d["surrogate"])}


# ---- analysis ---------------------------------------------------------------------------
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


def explained_class(model, X: np.ndarray) -> np.ndarray:
    """The positive class (1) for two-class models, else the predicted class (as SHAP does)."""
    return np.ones(len(X), np.int32) if model.n_classes == 2 else model.predict(X).astype(np.int32)


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
    default LRP / DeepLIFT / Grad-CAM on layers they cannot read is skipped with the reason). Tabular attributions are reported per raw
    column (one-hot blocks summed). Stability uses `stability_samples` noisy copies with noise
    std `noise` x the feature's training std (images: x the pixel range); LIME and SHAP
    re-explain the copies with a fresh seed, so their sampling noise counts.
    interactions: SHAP interaction values (`shap_interactions`) on `interaction_examples` test rows
    over the SHAP players (raw columns; image patches: at most 4 images, 10 background rows, one
    block of sampled orders each), for the top pairs, heatmap and dependence plots. surrogate (tabular data): rules of a depth-`surrogate_depth` tree fit to the model's
    predictions (`surrogate_tree`), with fidelity overall and per sensitive group.
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
        runner = _Runner(model, data, test, rows, t, seed=seed, steps=steps, lime_samples=lime_samples,
                         background_size=background_size, noise=noise)
        attributions: dict[str, Attribution] = {}
        stab: dict[str, Stability] = {}
        for m in chosen:
            bar.set_postfix_str(m)
            try:
                attributions[m] = runner.explain(m)
            except AuditInputError as exc:  # a default LRP/DeepLIFT on layers they cannot read
                if methods is not None or m not in PROPAGATION_METHODS:
                    raise
                skipped[m] = str(exc)
                bar.update()
                continue
            if stability_samples:
                stab[m] = stability(runner.explainer(m), runner.inputs(m), sigma=runner.sigma(m),
                                    n_samples=int(stability_samples), seed=seed + 1,
                                    reference=attributions[m].values)
            bar.update()
        bar.set_postfix_str("faithfulness")
        curves = {m: faithfulness_curves(model, X, a.values, target=t, baseline=runner.deletion_baseline,
                                         groups=runner.groups if a.level == "raw" else None, seed=seed)
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
            from audit.explain._surrogate import surrogate_tree

            rules = surrogate_tree(model, data, max_depth=int(surrogate_depth), seed=seed)
    bar.close()
    names = data.raw_feature_names if data.kind == "tabular" else ()
    settings = {"n_examples": int(n_examples), "methods": list(chosen), "steps": steps,
                "lime_samples": runner.lime_samples, "background_size": background_size,
                "stability_samples": stability_samples, "noise": noise,
                "permutation_repeats": permutation_repeats, "interactions": bool(interactions),
                "interaction_examples": int(interaction_examples), "surrogate": bool(surrogate),
                "surrogate_depth": int(surrogate_depth)}
    return ExplanationReport(kind=data.kind, rows=rows, labels=y.astype(np.int64),
                             predictions=model.predict(X).astype(np.int64), target=t.astype(np.int64),
                             class_names=tuple(model.class_names), feature_names=tuple(names),
                             attributions=attributions, curves=curves, agreement=agreement, stability=stab,
                             provenance=Provenance("explain.analyze", settings, seed, clock[0]),
                             shap=runner.shap_result, permutation=permutation, skipped=skipped,
                             interactions=inter, surrogate=rules)


def _interactions(model, data, test, *, seed: int, n_examples: int, background_size: int):
    """SHAP interaction values on `n_examples` seeded test rows (exact up to 12 players)."""
    from audit.explain._background import background
    from audit.explain._shap_interactions import shap_interactions

    from audit.explain._interaction_designs import min_budget
    from audit.explain._players import resolve

    budget = None
    if data.kind == "image":  # 16 patches, sampled: one block of orders per background row
        n_examples, background_size = min(n_examples, IMAGE_INTERACTION_EXAMPLES), min(background_size, 10)
        budget = min_budget(resolve(model, data, None, None, "exact").n)
    rows = np.sort(np.random.default_rng(seed).choice(len(test), size=min(n_examples, len(test)), replace=False))
    bg = background(data, size=background_size, seed=seed)
    return shap_interactions(model, test.X[rows], bg, data=data, seed=seed, n_samples=budget,
                             method="auto" if budget is None else "sampled")


class _Runner:
    """Runs each method on the chosen examples (and on noisy copies for stability)."""

    def __init__(self, model, data, test, rows, t, *, seed, steps, lime_samples, background_size, noise):
        self.model, self.data, self.seed, self.steps, self.noise = model, data, seed, steps, noise
        self.t = t
        self.batch = len(rows)  # the same chunk for examples and their noisy copies: one compilation
        self.X = test.X[rows]
        self.tabular = data.kind == "tabular"
        self.raw = test.raw[rows] if self.tabular and test.raw is not None else self.X.reshape(len(rows), -1)
        self.groups = data.feature_groups if self.tabular else None
        train = data.part("train").X if len(data.splits.get("train", ())) else data.X
        self.mean_input = train.mean(axis=0)
        self.input_std = train.std(axis=0)
        self.pixel_range = float(train.max() - train.min()) or 1.0
        self.lime_samples = lime_samples or (5000 if self.tabular else 1000)
        self.background_size = background_size
        self.deletion_baseline = self.mean_input if self.tabular else np.zeros(model.input_shape, np.float32)
        self.shap_result = None
        if self.tabular:
            from audit.explain._lime import raw_space

            space = raw_space(model, data)
            self.raw_sigma = np.where(space.categorical, 0.0, noise * space.train.std(axis=0))
            self.input_sigma = np.where(data.encoding.categorical_mask, 0.0, noise * self.input_std) \
                if data.encoding is not None else noise * self.input_std

    def inputs(self, method: str) -> np.ndarray:
        return self.raw if self.tabular and method == "lime" else self.X

    def sigma(self, method: str):
        if not self.tabular:
            return self.noise * self.pixel_range
        return self.raw_sigma if method == "lime" else self.input_sigma

    def explain(self, method: str) -> Attribution:
        return self.explainer(method, seed=self.seed)(self.inputs(method), full=True)

    def explainer(self, method: str, *, seed: int | None = None) -> Callable:
        """rows -> attributions (the repeated targets of the noisy copies are inferred by count)."""
        from audit.explain import _lime, _lime_native, _saliency

        seed = self.seed + 1 if seed is None else seed
        model, data = self.model, self.data

        def targets_for(rows):
            return np.repeat(self.t, len(rows) // len(self.t))

        def run(rows, full: bool = False):
            t = targets_for(rows)
            if method == "lime":
                if self.tabular:
                    a = _lime_native.lime_native(model, data, rows, target=t, num_samples=self.lime_samples, seed=seed)
                else:
                    a = _lime.lime_image(model, rows, target=t, num_samples=self.lime_samples, seed=seed)
            elif method == "shap":
                a = self._shap(rows, t, seed, keep=full)
            elif method == "integrated_gradients":
                a = _saliency.integrated_gradients(model, rows, target=t, steps=self.steps,
                                                   baseline=self.mean_input if self.tabular else None,
                                                   batch_size=self.batch)
            elif method in PROPAGATION_METHODS:
                from audit.explain import _lrp

                from audit.explain._gradcam import grad_cam

                if method == "lrp":
                    a = _lrp.lrp(model, rows, target=t, batch_size=self.batch)
                elif method in ("grad_cam", "grad_cam_pp"):
                    a = grad_cam(model, rows, target=t, method="gradcam" if method == "grad_cam" else "gradcam++",
                                 batch_size=self.batch)
                else:
                    a = _lrp.deeplift(model, rows, target=t, baseline=self.mean_input if self.tabular else None,
                                      batch_size=self.batch)
            elif method == "smoothgrad":
                a = _saliency.smoothgrad(model, rows, target=t, seed=seed, batch_size=self.batch)
            else:
                a = getattr(_saliency, method)(model, rows, target=t, batch_size=self.batch)
            if self.tabular and a.level == "input":
                a = a.grouped(self.groups, data.raw_feature_names)
            return a if full else a.values

        return run

    def _shap(self, rows, t, seed, *, keep: bool) -> Attribution:
        from audit.explain._background import background
        from audit.explain._shap import compute_shap

        bg = background(self.data, size=self.background_size, seed=self.seed)
        kw = {} if self.tabular else {"method": "gradient", "players": "inputs"}
        res = compute_shap(self.model, rows, bg, data=self.data, seed=seed, class_index=t.tolist(), **kw)
        if keep:
            self.shap_result = res
        values = res.values if self.tabular else res.input_attributions()
        extras = {"base_value": res.base_values}
        if res.model_output is not None:
            extras["output"] = res.model_output
        return Attribution(method="shap", values=values, target=t, level="raw" if self.tabular else "input",
                           inputs=None if self.tabular else rows, feature_names=res.feature_names if self.tabular else (),
                           extras=extras, provenance=res.provenance)

