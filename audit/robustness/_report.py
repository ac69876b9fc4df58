"""`RobustnessReport`: robust-accuracy curves with intervals, minimal perturbations, baselines,
adversarial examples and the attack sanity checks, as one frozen JSON-safe result."""

from __future__ import annotations

import dataclasses
from typing import Mapping

import numpy as np
import numpy.typing as npt

from audit.results import Finding, MetricSpec, Provenance, Result

CURVE_KINDS = ("attack", "baseline", "class", "group")
MIN_GROUP_SIZE = 30  # groups with fewer sampled rows are shown but never realise the gap (as in fairness)


def eps_name(eps: float) -> str:
    """The stable spelling of an eps in metric names: `format(eps, "g")` ("0.3", "0.0313725")."""
    return format(float(eps), "g")


@dataclasses.dataclass(frozen=True, eq=False)
class Curve(Result):
    """Accuracy against eps with a bootstrap interval (`low`, `high`) over `n` examples.

    kind "attack": one attack or "ensemble" (worst case over attacks); "baseline": random noise;
    "class": the ensemble on one true class; "group": the ensemble on one sensitive group.
    """

    kind: str
    name: str
    accuracy: np.ndarray
    low: np.ndarray
    high: np.ndarray
    n: int
    attribute: str | None = None


@dataclasses.dataclass(frozen=True, eq=False)
class AdversarialExample(Result):
    """One attacked example: `original` and `adversarial` inputs (perturbation = their
    difference), the true label, and both predictions with their confidences."""

    eps: float
    attack: str
    row: int
    label: int
    original: npt.NDArray[np.float32]
    adversarial: npt.NDArray[np.float32]
    clean_prediction: int
    clean_confidence: float
    adversarial_prediction: int
    adversarial_confidence: float

    @property
    def perturbation(self) -> np.ndarray:
        return self.adversarial - self.original


@dataclasses.dataclass(frozen=True, eq=False)
class RobustnessReport(Result):
    """Result of `audit.robustness.evaluate`.

    `curves` hold every robust-accuracy curve over `eps` (per attack, the "ensemble" worst
    case, noise baselines, per class and per sensitive group). `min_distance` / `min_found`:
    per-example minimal perturbation (PGD bisection) on the first examples of the sample.
    `imputation`: accuracy after replacing the k most important raw columns by their training
    mean (tabular only), ranked by `importance`. `findings` are the attack sanity checks.
    `autoattack_share`: when AutoAttack ran, per stage (apgd-ce, apgd-t, fab-t, square) the share
    of the correctly classified rows it broke first, per eps. `cw_distance`: when C&W ran, each
    sampled row's L2 distance to C&W's closest adversarial (0: already misclassified; NaN: none
    found). `labels`: the true class of each sampled row (for per-class distances).
    """

    SCHEMA = "audit.robustness/1"
    LEGACY_SCHEMAS = (1,)  # same fields; files written before the codec read as they are
    METRICS = (
        MetricSpec("clean_accuracy", "higher", "Clean accuracy",
                   "Share of the sampled test rows classified correctly without attack."),
        MetricSpec("robust_accuracy@<eps>", "higher", "Robust accuracy at eps <eps>",
                   "Share of the sampled rows still classified correctly under the strongest of the attacks "
                   "at budget <eps>."),
        MetricSpec("attack_success_rate@<eps>", "lower", "Attack success rate at eps <eps>",
                   "Share of the correctly classified sampled rows that some attack flips at budget <eps>."),
        MetricSpec("robust_accuracy:class=<class>@<eps>", "higher", "Robust accuracy of <class> at eps <eps>",
                   "Worst-case robust accuracy on the sampled rows of true class <class>."),
        MetricSpec("robust_accuracy:<attack>@<eps>", "higher", "Robust accuracy, <attack> at eps <eps>",
                   "Share of the sampled rows still classified correctly under <attack> (or noise baseline) "
                   "at budget <eps>."),
        MetricSpec("attack_success_rate:<attack>@<eps>", "lower", "Success rate of <attack> at eps <eps>",
                   "Share of the correctly classified sampled rows that <attack> flips at budget <eps>."),
        MetricSpec("robust_accuracy_gap:<attribute>@<eps>", "lower",
                   "Robust accuracy gap by <attribute> at eps <eps>",
                   "Best minus worst group's worst-case robust accuracy among the sampled rows, over groups "
                   "with at least 30 sampled rows."),
        MetricSpec("median_min_perturbation", "higher", "Median distance to an adversarial example",
                   "Median smallest perturbation that flips a sampled row (censored at the largest budget)."),
        MetricSpec("min_perturbation_found_rate", "lower", "Share with an adversarial example",
                   "Share of searched rows for which an adversarial example was found within the largest "
                   "budget."),
        MetricSpec("autoattack_share:<stage>@<eps>", "info", "AutoAttack's <stage> share at eps <eps>",
                   "Share of the correctly classified sampled rows that AutoAttack's <stage> stage broke first "
                   "at budget <eps> (stages run in order on the rows still robust; a large square share "
                   "after the gradient stages hints at gradient masking)."),
        MetricSpec("median_cw_distance", "higher", "Median C&W L2 distance to an adversarial example",
                   "Median L2 distance from a sampled row to C&W's closest adversarial (0 for rows already "
                   "misclassified; rows with none found count as infinitely far)."),
        MetricSpec("cw_found_rate", "lower", "Share with a C&W adversarial example",
                   "Share of the sampled rows for which C&W found an adversarial example (or that are already "
                   "misclassified)."),
        MetricSpec("accuracy_imputed:<k>", "higher", "Accuracy with <k> columns imputed",
                   "Accuracy on the sampled rows when the most important columns are replaced by their "
                   "training means."),
    )

    norm: str
    eps: np.ndarray
    attacks: tuple[str, ...]
    n: int
    clean_accuracy: float
    curves: tuple[Curve, ...]
    min_distance: np.ndarray
    min_found: npt.NDArray[np.bool_]
    min_eps_max: float
    imputation: Mapping[str, float]
    importance: tuple[str, ...]
    examples: tuple[AdversarialExample, ...]
    kind: str
    input_shape: tuple[int, ...]
    feature_names: tuple[str, ...]
    class_names: tuple[str, ...]
    checks: Mapping[str, float]
    findings: tuple[Finding, ...]
    provenance: Provenance
    autoattack_share: Mapping[str, np.ndarray] = dataclasses.field(default_factory=dict)
    cw_distance: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(0))
    labels: npt.NDArray[np.int64] = dataclasses.field(default_factory=lambda: np.zeros(0, np.int64))

    # ---- lookups -----------------------------------------------------------------------
    def curve(self, name: str, *, kind: str = "attack", attribute: str | None = None) -> Curve:
        for c in self.curves:
            if c.kind == kind and c.name == name and c.attribute == attribute:
                return c
        raise KeyError(f"no {kind} curve {name!r}" + (f" for {attribute!r}" if attribute else ""))

    def curves_of(self, kind: str, *, attribute: str | None = None) -> tuple[Curve, ...]:
        return tuple(c for c in self.curves if c.kind == kind and (attribute is None or c.attribute == attribute))

    @property
    def attributes(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(c.attribute for c in self.curves if c.kind == "group"))

    @property
    def median_min_perturbation(self) -> float:
        """Median distance to the boundary (censored examples count as `min_eps_max`, so a
        median among censored ones is a lower bound)."""
        return float(np.median(self.min_distance)) if self.min_distance.size else float("nan")

    @property
    def median_cw_distance(self) -> float:
        """Median C&W L2 distance over the sampled rows (rows with none found count as inf)."""
        d = np.nan_to_num(np.asarray(self.cw_distance, np.float64), nan=np.inf)
        return float(np.median(d)) if d.size else float("nan")

    # ---- metrics -----------------------------------------------------------------------
    def metrics(self) -> dict[str, float]:
        out = {"clean_accuracy": float(self.clean_accuracy)}
        ens = self.curve("ensemble")
        for j, e in enumerate(self.eps):
            tag = eps_name(e)
            out[f"robust_accuracy@{tag}"] = float(ens.accuracy[j])
            out[f"attack_success_rate@{tag}"] = _success(self.clean_accuracy, ens.accuracy[j])
            for c in self.curves_of("attack") + self.curves_of("baseline"):
                if c.name != "ensemble":
                    out[f"robust_accuracy:{c.name}@{tag}"] = float(c.accuracy[j])
                    if c.kind == "attack":
                        out[f"attack_success_rate:{c.name}@{tag}"] = _success(self.clean_accuracy, c.accuracy[j])
            for c in self.curves_of("class"):
                out[f"robust_accuracy:class={c.name}@{tag}"] = float(c.accuracy[j])
            for attr in self.attributes:
                values = [c.accuracy[j] for c in self.curves_of("group", attribute=attr)
                          if np.isfinite(c.accuracy[j]) and c.n >= MIN_GROUP_SIZE]
                if len(values) >= 2:
                    out[f"robust_accuracy_gap:{attr}@{tag}"] = float(max(values) - min(values))
        for stage, share in self.autoattack_share.items():
            for j, e in enumerate(self.eps):
                out[f"autoattack_share:{stage}@{eps_name(e)}"] = float(share[j])
        if self.cw_distance.size:
            out["median_cw_distance"] = self.median_cw_distance
            out["cw_found_rate"] = float(np.mean(np.isfinite(self.cw_distance)))
        if self.min_distance.size:
            out["median_min_perturbation"] = self.median_min_perturbation
            out["min_perturbation_found_rate"] = float(np.mean(self.min_found))
        for k, v in self.imputation.items():
            out[f"accuracy_imputed:{k}"] = float(v)
        return out


def _success(clean: float, robust: float) -> float:
    """Attack success rate: the share of correctly classified examples the attack flips."""
    return float(1.0 - robust / clean) if clean > 0 else float("nan")
