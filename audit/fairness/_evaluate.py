"""`evaluate(model, data)`: the fairness audit of a model on one split of a Dataset."""

from __future__ import annotations

import itertools
from typing import Mapping, Sequence

import numpy as np

from audit.data._checks import check_model_data
from audit.errors import AuditInputError
from audit.fairness import _findings
from audit.fairness._assess import assess, check_predictions
from audit.data._groups import attribute_groups, make_grouping
from audit.fairness._proxy import proxies as proxy_analysis
from audit.fairness._report import FairnessReport
from audit.results import Provenance, timer


def _requested(data, attributes, intersections: bool) -> list[tuple[str, ...]]:
    if attributes is None:
        names = sorted(data.sensitive)
        if not names:
            raise AuditInputError(f"{data.name} has no sensitive attributes; build it with "
                                  "sensitive=[...] or pass attributes=[...].")
        out = [(n,) for n in names]
        return out + (list(itertools.combinations(names, 2)) if intersections else [])
    out = []
    for a in attributes:
        key = (a,) if isinstance(a, str) else tuple(a)
        if not 1 <= len(key) <= 2:
            raise AuditInputError(f"attribute {a!r}: give a name or a pair of names to intersect.")
        for name in key:
            if name not in data.sensitive:
                raise AuditInputError(f"{data.name} has no sensitive attribute {name!r}; it has "
                                      f"{sorted(data.sensitive)}.")
        out.append(key)
    return out


def evaluate(model, data, *, attributes: Sequence[str | Sequence[str]] | None = None,
             intersections: bool = True, split: str = "test", n_bootstrap: int = 500,
             confidence: float = 0.95, seed: int = 0, classes: Sequence[int | str] | None = None,
             favorable_class: int | str | None = None, bins: Mapping[str, Sequence[float]] | None = None,
             n_bins: int = 4, calibration_bins: int = 10, min_group_size: int = 30, min_count: int = 10,
             max_difference: float = 0.1, proxies: bool = True,
             attribution: str = "permutation") -> FairnessReport:
    """Group metrics, disparities with bootstrap intervals and proxies for each sensitive attribute.

    `attributes` lists attribute names and pairs to intersect (default: every attribute of the
    data and, with `intersections`, every pair). Continuous attributes are binned (`bins` gives
    interior edges per attribute, else `n_bins` quantile bins; see `audit.fairness.make_grouping`).
    Groups smaller than `min_group_size`, or with fewer than `min_count` rows in a metric's
    denominator, are flagged as too small to judge. Disparities larger than `max_difference`
    whose interval excludes zero fail; the disparate impact ratio fails the four-fifths rule below
    0.8. `attribution` ("permutation" or "shap") measures a sensitive input's share of the model's
    attributions when the attribute is itself an input. Methods: Hardt et al. 2016 (equalized
    odds), Feldman et al. 2015 (disparate impact), stratified percentile bootstrap intervals
    (Efron & Tibshirani 1993).
    """
    if attribution not in ("permutation", "shap"):
        raise AuditInputError(f"attribution {attribution!r} must be 'permutation' or 'shap'.")
    with timer() as t:
        rows = check_model_data(model, data, split)
        keys = _requested(data, attributes, intersections)
        part = data.select(rows)
        proba = model.predict_proba(part.X).astype(np.float64)
        y_true, y_pred, proba = check_predictions(part.y, proba.argmax(-1), proba, model.n_classes,
                                                  f"{data.name}[{split}]")
        bins = dict(bins or {})
        full = {n: make_grouping(data.sensitive[n], n, edges=bins.get(n), n_bins=n_bins)
                for n in {n for k in keys for n in k}}
        results = []
        for key in keys:
            grouping = attribute_groups(data, "&".join(key), rows, edges=bins, n_bins=n_bins)
            results.append(assess(y_true, y_pred, grouping, scores=proba, class_names=model.class_names,
                                  classes=classes, favorable_class=favorable_class, name=grouping.name,
                                  n_bootstrap=n_bootstrap, confidence=confidence, seed=seed,
                                  n_bins=calibration_bins, min_group_size=min_group_size,
                                  min_count=min_count))
        proxy_results = []
        if proxies and data.kind == "tabular" and data.encoding is not None and data.raw is not None:
            fit_rows = data.splits.get("train", np.arange(0))
            memo: dict = {}  # one attribution per raw column, shared by every attribute's proxy analysis
            for key in keys:
                if len(key) == 1:
                    proxy_results.append(proxy_analysis(
                        model, data, fit_rows, rows,
                        attribute_groups(data, key[0], fit_rows, edges=bins, n_bins=n_bins),
                        attribute_groups(data, key[0], rows, edges=bins, n_bins=n_bins),
                        seed=seed, attribution=attribution, memo=memo))
        findings = _findings.fairness_findings(results, proxy_results, max_difference=max_difference)
    settings = {"attributes": ["&".join(k) for k in keys], "n_bootstrap": n_bootstrap,
                "confidence": confidence, "classes": None if classes is None else [str(c) for c in classes],
                "favorable_class": None if favorable_class is None else str(favorable_class),
                "bins": {k: [float(e) for e in v] for k, v in bins.items()}, "n_bins": n_bins,
                "calibration_bins": calibration_bins, "min_group_size": min_group_size,
                "min_count": min_count, "max_difference": max_difference, "proxies": proxies,
                "attribution": attribution,
                "binning": {n: g.rule for n, g in full.items()}}
    analysed = tuple(t.class_name for t in results[0].tables)
    favorable = next(d.class_name for d in results[0].disparities if d.name == "disparate_impact")
    return FairnessReport(attributes=tuple(results), proxies=tuple(proxy_results),
                          class_names=tuple(model.class_names), classes=analysed,
                          favorable_class=favorable, split=split, n_rows=len(rows),
                          findings=findings,
                          provenance=Provenance(method="fairness.evaluate", settings=settings, seed=seed,
                                                seconds=t[0]))
