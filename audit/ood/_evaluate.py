"""`evaluate`: fit OOD detectors on the training rows, score test rows and shifted copies of them."""

from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence

import numpy as np
from scipy.special import softmax

from audit.data import attribute_groups
from audit.errors import AuditInputError
from audit.ood._features import feature_function
from audit.ood._report import Abstention, OodReport, Separation
from audit.ood._scores import DETECTORS, fit_detectors
from audit.ood._shifts import IMAGE_SHIFTS, image_shifts, tabular_shifts
from audit.ood._stats import auroc, bootstrap_auroc, fpr_at_tpr, risk_coverage
from audit.ood._uncertainty import UNCERTAINTY, ensemble_members, entropy, mc_dropout_probs, mutual_information
from audit.imbalance import reliability
from audit.results import Finding, Provenance, timer

_SEPARATES = 0.7  # below this best-detector AUROC a shift is "not separated" (a finding)
_GAP = 0.1  # abstention gap across groups that earns a warning


def _check(model, data, detectors, shifts, n, k, n_bootstrap, confidence, coverage, min_group_size, max_train):
    allowed = [d for d in DETECTORS if not (d == "isolation_forest" and data.kind == "image")]
    unknown = [d for d in detectors if d not in allowed]
    if unknown:
        raise AuditInputError(f"ood detectors {unknown} are unknown for {data.kind} data; choose from {allowed}.")
    if data.kind == "image":
        bad = [s for s in shifts if s not in IMAGE_SHIFTS]
        if bad:
            raise AuditInputError(f"ood shifts {bad} are unknown for images; choose from {list(IMAGE_SHIFTS)}.")
    for name, value, low in (("n", n, 10), ("k", k, 1), ("n_bootstrap", n_bootstrap, 0),
                             ("min_group_size", min_group_size, 1), ("max_train", max_train, 20)):
        if not isinstance(value, int) or isinstance(value, bool) or value < low:
            raise AuditInputError(f"ood setting {name} must be an integer >= {low}, got {value!r}.")
    for name, value in (("confidence", confidence), ("coverage", coverage)):
        if not isinstance(value, (int, float)) or not 0 < value < 1:
            raise AuditInputError(f"ood setting {name} must be between 0 and 1 (exclusive), got {value!r}.")
    if len(data.train) < 20:
        raise AuditInputError(f"ood detectors need at least 20 training rows; {data.name} has {len(data.train)}.")


def evaluate(model, data, *, detectors: Sequence[str] | None = None, shifts: Sequence[str] | None = None,
             n: int = 1000, k: int = 10, autoencoder_epochs: int = 20, n_bootstrap: int = 200,
             confidence: float = 0.95, coverage: float = 0.8, min_group_size: int = 30, max_train: int = 5000,
             uncertainty: Sequence[str] = (), mc_samples: int = 20, ensemble_size: int = 3,
             ensemble_train_options: Mapping[str, Any] | None = None, features: str | Callable | None = None,
             seed: int = 0) -> OodReport:
    """Fit each detector on up to `max_train` training rows; score `n` test rows (inliers) and the same
    rows under each shift (outliers); AUROC / FPR95 per detector and shift with bootstrap intervals;
    selective prediction (risk-coverage, AURC) per detector and abstention per sensitive group.

    Detectors: msp, energy, mahalanobis, knn, autoencoder and (tabular) isolation_forest (all by
    default). Shifts: `audit.ood` makes them (see `_shifts`); images default to all image shifts,
    tabular data to every numeric column's covariate shift, shuffled columns and out-of-range values.
    `uncertainty`: "mc_dropout" (`mc_samples` passes with the model's dropout on) and / or
    "ensemble" (`ensemble_size` retrained copies) add predictive-entropy and mutual-information
    detectors (`<method>_entropy`, `<method>_mi`) and the calibration (ECE) of their mean prediction.
    `features`: what Mahalanobis and kNN read (see `feature_function`): by default the model's own
    `features:` method or function when its config names one, else its penultimate layer.
    """
    detectors = tuple(detectors) if detectors is not None else tuple(
        d for d in DETECTORS if not (d == "isolation_forest" and data.kind == "image"))
    _check(model, data, detectors, shifts or (), n, k, n_bootstrap, confidence, coverage, min_group_size, max_train)
    bad = [u for u in uncertainty if u not in UNCERTAINTY]
    if bad or len(set(uncertainty)) != len(tuple(uncertainty)):
        raise AuditInputError(f"ood uncertainty {list(uncertainty)} must name each of {list(UNCERTAINTY)} at most once.")
    for name, value in (("mc_samples", mc_samples), ("ensemble_size", ensemble_size)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 2:
            raise AuditInputError(f"ood setting {name} must be an integer >= 2, got {value!r}.")
    rng = np.random.default_rng(seed)
    with timer() as t:
        train, test = data.train, data.test
        train_rows = _training_rows(rng, len(train), max_train)
        test_rows = np.sort(rng.choice(len(test), size=min(n, len(test)), replace=False))
        x_train, y_train = train.X[train_rows], train.y[train_rows]
        x_test, y_test = test.X[test_rows], test.y[test_rows]
        feature_of, source = feature_function(model, features=features)
        fitted = fit_detectors(detectors, x_train=x_train, y_train=y_train, features_train=feature_of(x_train),
                               n_classes=model.n_classes, kind=data.kind, k=k, seed=seed,
                               ae_epochs=autoencoder_epochs)
        if data.kind == "image":
            shifted = image_shifts(x_test, name=data.name, low=float(train.X.min()), high=float(train.X.max()),
                                   seed=seed, shifts=tuple(shifts) if shifts else IMAGE_SHIFTS)
        else:
            shifted = tabular_shifts(test.raw[test_rows], data.encoding, train_raw=train.raw, seed=seed)
            if shifts:
                unknown = [s for s in shifts if s not in shifted]
                if unknown:
                    raise AuditInputError(f"ood shifts {unknown} are unknown here; choose from {sorted(shifted)}.")
                shifted = {s: shifted[s] for s in shifts}

        members, skipped = {}, {}
        if "mc_dropout" in uncertainty:
            try:
                mc_dropout_probs(model, x_test[:1], samples=2, seed=seed)
                members["mc_dropout"] = lambda x: mc_dropout_probs(model, x, samples=mc_samples, seed=seed)
            except AuditInputError as exc:
                skipped["mc_dropout"] = str(exc)
        if "ensemble" in uncertainty:
            try:
                copies = ensemble_members(model, data, size=ensemble_size, seed=seed,
                                          train_options=ensemble_train_options)
                members["ensemble"] = lambda x: np.stack([m.predict_proba(x) for m in copies]).astype(np.float64)
            except AuditInputError as exc:
                skipped["ensemble"] = str(exc)
        used = detectors + tuple(f"{u}_{kind}" for u in members for kind in ("entropy", "mi"))
        calibration: dict[str, float] = {}

        def scores_of(x, labels=None):
            logits, f = model.logits(x), feature_of(x)
            out = {d: fitted.score(d, x, logits, f) for d in detectors}
            for u, probs_of in members.items():
                probs = probs_of(x)
                out[f"{u}_entropy"], out[f"{u}_mi"] = entropy(probs.mean(axis=0)), mutual_information(probs)
                if labels is not None:
                    calibration[u] = reliability(labels, probs.mean(axis=0), n_bins=15).ece
            return out, logits

        inlier, logits = scores_of(x_test, y_test)
        calibration["model"] = reliability(y_test, softmax(logits.astype(np.float64), axis=1), n_bins=15).ece
        outlier, separations = {}, []
        for shift, xs in shifted.items():
            outlier[shift], _ = scores_of(xs)
            for d in used:
                a, b = inlier[d], outlier[shift][d]
                low, high = bootstrap_auroc(a, b, n_bootstrap=n_bootstrap, confidence=confidence, rng=rng) \
                    if n_bootstrap else (np.nan, np.nan)
                separations.append(Separation(d, shift, auroc(a, b), low, high, fpr_at_tpr(a, b)))
        error = (logits.argmax(axis=1) != y_test).astype(np.float64)
        full_rows = np.asarray(data.splits["test"])[test_rows] if len(data.splits.get("test", ())) else test_rows
        abstention = tuple(_abstention(d, inlier[d], error, data, full_rows, coverage) for d in used)
    report_findings = _findings(separations, tuple(shifted), abstention, coverage, min_group_size, source,
                                requested_logits=features == "logits")
    report_findings += tuple(Finding(f"uncertainty:{u}", "warn", f"{u} was not run", why) for u, why in skipped.items())
    return OodReport(detectors=used, calibration=calibration, shifts=tuple(shifted), features=source,
                     n_inliers=len(test_rows),
                     separations=tuple(separations), inlier_scores=inlier, outlier_scores=outlier,
                     abstention=abstention, coverage=float(coverage), min_group_size=min_group_size,
                     findings=report_findings,
                     provenance=Provenance("ood", {"detectors": list(detectors), "n": n, "k": k,
                                                   "autoencoder_epochs": autoencoder_epochs,
                                                   "n_bootstrap": n_bootstrap, "confidence": confidence,
                                                   "coverage": coverage, "max_train": max_train,
                                                   "uncertainty": list(uncertainty), "mc_samples": mc_samples,
                                                   "ensemble_size": ensemble_size,
                                                   "features": "callable" if callable(features) else features},
                                           seed=seed, seconds=t[0]))


def _training_rows(rng: np.random.Generator, n_train: int, max_train: int) -> np.ndarray:
    """The training rows the detectors are fitted on: the first draw of the run's generator."""
    return np.sort(rng.choice(n_train, size=min(max_train, n_train), replace=False))


LIVE_DETECTORS = ("msp", "energy", "mahalanobis", "knn")


def scorer(model, data, *, detectors: Sequence[str] = LIVE_DETECTORS, k: int = 10, max_train: int = 5000,
           features: str | Callable | None = None, seed: int = 0) -> Callable[[np.ndarray], dict[str, np.ndarray]]:
    """`x -> {detector: score}` for any inputs, with detectors fitted exactly as `evaluate` fits them
    with the same `k`, `max_train`, `features` and `seed`: a new input's scores compare directly
    with an audit's inlier scores (the dashboard's live score uses it). Cheap detectors only:
    msp, energy, mahalanobis, knn."""
    bad = [d for d in detectors if d not in LIVE_DETECTORS]
    if bad:
        raise AuditInputError(f"live OOD scores support {list(LIVE_DETECTORS)}; got {bad}.")
    rng = np.random.default_rng(seed)
    rows = _training_rows(rng, len(data.train), max_train)
    feature_of, _ = feature_function(model, features=features)
    needs_features = any(d in ("mahalanobis", "knn") for d in detectors)
    fitted = fit_detectors(detectors, x_train=data.train.X[rows], y_train=data.train.y[rows],
                           features_train=feature_of(data.train.X[rows]) if needs_features else None,
                           n_classes=model.n_classes, kind=data.kind, k=k, seed=seed, ae_epochs=0)

    def score(x: np.ndarray) -> dict[str, np.ndarray]:
        x = np.asarray(x, np.float32)
        logits, f = model.logits(x), feature_of(x) if needs_features else None
        return {d: fitted.score(d, x, logits, f) for d in detectors}

    return score


def _abstention(detector, score, error, data, rows, coverage) -> Abstention:
    """Risk-coverage of one score; per sensitive group (the data layer's grouping, as in every
    section) the share of `rows` rejected at `coverage`."""

    grid, risk, aurc = risk_coverage(score, error)
    threshold = np.quantile(score, coverage)
    rejected = score > threshold
    rates, sizes = {}, {}
    for attribute in data.sensitive:
        grouping = attribute_groups(data, attribute, rows)
        rates[attribute] = {g: float(rejected[grouping.codes == i].mean()) if np.any(grouping.codes == i) else float("nan")
                            for i, g in enumerate(grouping.labels)}
        sizes[attribute] = {g: int(s) for g, s in zip(grouping.labels, grouping.sizes)}
    return Abstention(detector, grid, risk, aurc, rates, sizes)


def _findings(separations, shifts, abstention, coverage, min_group_size, source,
              requested_logits=False) -> tuple[Finding, ...]:
    out = []
    if source == "logits" and not requested_logits:
        out.append(Finding("features", "warn", "Detectors read logits",
                           "The model's last layer is not a dense layer, so Mahalanobis and kNN use its logits "
                           "instead of its penultimate features; they are weaker there."))
    for shift in shifts:
        best = max((s for s in separations if s.shift == shift), key=lambda s: s.auroc)
        if best.auroc < _SEPARATES:
            out.append(Finding(f"unseparated:{shift}", "warn", f"No detector flags {shift}",
                               f"On {shift} the best detector ({best.detector}) reaches AUROC {best.auroc:.3f} "
                               f"(below {_SEPARATES}): the model will be silently wrong on such inputs.",
                               metric=f"best_auroc@{shift}", value=best.auroc, threshold=_SEPARATES))
    detectors = sorted({s.detector for s in separations})
    if detectors and shifts:
        mean = {d: float(np.mean([s.auroc for s in separations if s.detector == d])) for d in detectors}
        pick = max(mean, key=mean.get)
        out.append(Finding("deploy", "pass", f"Detector to deploy: {pick}",
                           f"{pick} has the highest mean AUROC over the {len(shifts)} shifts ({mean[pick]:.3f}); "
                           + ", ".join(f"{d} {v:.3f}" for d, v in sorted(mean.items(), key=lambda kv: -kv[1]))))
    for a in abstention:
        if a.detector != "msp":
            continue
        for attribute, rates in a.attribute_rejection.items():
            judged = {g: r for g, r in rates.items() if a.attribute_sizes[attribute][g] >= min_group_size}
            small = sorted(g for g in rates if g not in judged)
            if len(judged) < 2:
                continue
            hi, lo = max(judged, key=judged.get), min(judged, key=judged.get)
            gap = judged[hi] - judged[lo]
            note = f" Too small to judge (< {min_group_size} rows): {', '.join(small)}." if small else ""
            out.append(Finding(f"abstention:{attribute}", "warn" if gap > _GAP else "pass",
                               f"Abstention across {attribute} groups",
                               f"Abstaining on the least confident {1 - coverage:.0%} of rows (MSP) rejects "
                               f"{judged[hi]:.1%} of {attribute}={hi} and {judged[lo]:.1%} of {attribute}={lo} "
                               f"(gap {gap:.3f}; warn above {_GAP}).{note}",
                               metric=f"rejection_gap:{attribute}", value=gap, threshold=_GAP))
    return tuple(out)
