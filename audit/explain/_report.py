"""`ExplanationReport`: what `analyze()` (in `_analyze`) finds: local explanations, global
importance and their quality, as one frozen JSON-serialisable result that the HTML report and
the dashboard draw with `audit.render.figures`."""

from __future__ import annotations

import dataclasses
from typing import Mapping

import numpy as np

from audit.explain._attribution import Attribution
from audit.explain._importance import PermutationImportance
from audit.explain._quality import Agreement, Curves, Stability
from audit.explain._shap import ShapResult
from audit.explain._shap_interactions import InteractionResult
from audit.explain._surrogate import SurrogateResult
from audit.results import Finding, MetricSpec, Provenance, Result

DISAGREEMENT = 0.3  # mean Spearman below which two methods "disagree strongly"
UNSTABLE = 0.6  # mean Spearman between x and noisy x below which a method is "unstable"


@dataclasses.dataclass(frozen=True, eq=False)
class ExplanationReport(Result):
    """Explanations of a few test examples, global importance and explanation quality.

    rows: indices into the test split of the explained examples; labels / predictions / target
    (the explained class: the positive class for two-class models, else the prediction).
    attributions: method -> Attribution (raw columns for tabular data, pixels for images).
    shap: part A's ShapResult (None when SHAP was not run); permutation: PermutationImportance.
    curves / stability: per method; agreement: per "a~b" pair. skipped: method -> reason.
    """

    SCHEMA = "audit.explain/2"
    METRICS = (
        MetricSpec("explained_examples", "info", "Explained examples",
                   "Test rows explained."),
        MetricSpec("misclassified_examples", "info", "Misclassified explained examples",
                   "Explained rows the model gets wrong."),
        MetricSpec("ig_completeness_error", "lower", "IG completeness error",
                   "How far Integrated Gradients attributions miss summing to the output change (relative)."),
        MetricSpec("lime_local_fit", "higher", "LIME local fit",
                   "Mean weighted R^2 of LIME's local surrogate on the explained rows."),
        MetricSpec("deletion_auc:random", "info", "Deletion AUC, random order",
                   "Output area when features are deleted in random order: the baseline for deletion AUC."),
        MetricSpec("insertion_auc:random", "info", "Insertion AUC, random order",
                   "Output area when features are inserted in random order: the baseline for insertion AUC."),
        MetricSpec("deletion_auc:<method>", "lower", "Deletion AUC of <method>",
                   "How fast the output falls when <method>'s most important features are deleted first "
                   "(lower: more faithful)."),
        MetricSpec("insertion_auc:<method>", "higher", "Insertion AUC of <method>",
                   "How fast the output rises when <method>'s most important features are inserted first "
                   "(higher: more faithful)."),
        MetricSpec("stability:<method>", "higher", "Stability of <method>",
                   "Mean Spearman correlation of <method>'s attribution of x and of x with small noise."),
        MetricSpec("sensitivity:<method>", "lower", "Sensitivity of <method>",
                   "Mean relative L2 change of <method>'s attribution under small input noise."),
        MetricSpec("rank_agreement:<pair>", "higher", "Rank agreement <pair>",
                   "Mean Spearman correlation between the two methods' attributions."),
        MetricSpec("top_k_overlap:<pair>", "higher", "Top-k overlap <pair>",
                   "Mean overlap of the two methods' top-k features."),
        MetricSpec("shap.examples", "info", "SHAP examples",
                   "Rows explained with SHAP."),
        MetricSpec("shap.efficiency_gap", "lower", "SHAP efficiency gap",
                   "Largest |base + sum of SHAP values - model output| over the explained rows."),
        MetricSpec("shap.top_feature_share", "info", "Top feature's SHAP share",
                   "Share of the total mean |SHAP| that the most important feature holds."),
        MetricSpec("shap.importance.<feature>", "info", "Mean |SHAP| of <feature>",
                   "Mean absolute SHAP value of <feature> over the explained rows."),
        MetricSpec("permutation_importance:<feature>", "info", "Permutation importance of <feature>",
                   "Mean increase of the loss when <feature> is shuffled."),
        MetricSpec("permutation_baseline_score", "info", "Permutation baseline score",
                   "The model's score (the importance metric) on the unshuffled rows."),
    ) + InteractionResult.METRICS + SurrogateResult.METRICS  # their parts' metrics


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
    shap: ShapResult | None = None
    permutation: PermutationImportance | None = None
    skipped: Mapping[str, str] = dataclasses.field(default_factory=dict)
    display_rows: tuple[tuple[str, ...], ...] = ()  # tabular: each explained row's raw values as text
    interactions: InteractionResult | None = None  # SHAP interaction values on a few test rows (#18)
    surrogate: SurrogateResult | None = None  # rules of a tree fit to the model's predictions (#18)
    findings: tuple[Finding, ...] = None  # type: ignore[assignment]  # derived from the fields when not given

    def __post_init__(self) -> None:
        if self.findings is None:
            object.__setattr__(self, "findings", self._derive_findings())

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

    def _derive_findings(self) -> tuple[Finding, ...]:
        """The sanity checks: each method's own, faithfulness, agreement and stability."""
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
