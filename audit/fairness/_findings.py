"""Findings the fairness analysis raises: disparities, the four-fifths rule, small groups, proxies."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from audit.fairness._report import AttributeResult, ProxyResult
from audit.results import Finding

FOUR_FIFTHS = 0.8
PROXY_NMI = 0.05
PROXY_AUC = 0.7
ATTRIBUTION_SHARE = 0.05


RATE_NAMES = {"selection_rate": "selection rate", "tpr": "true-positive rate (TPR)",
              "fpr": "false-positive rate (FPR)", "precision": "precision",
              "calibration_error": "calibration error"}


def _worst(a: AttributeResult, name: str):
    """The worst judged disparity `name` over the analysed classes (None if none is defined)."""
    ds = [d for d in a.disparities if d.name == name and np.isfinite(d.value)]
    if not ds:
        return None
    return (max if ds[0].kind == "difference" else min)(ds, key=lambda d: d.value)


def _rate(a: AttributeResult, class_name: str, metric: str, group: str | None) -> str:
    """"0.452 for 'A'" (the group's rate from the table of `class_name`, when there is one)."""
    try:
        table = a.table(class_name)
        return f"{table.metric(metric)[group]:.3f} for {group!r}"
    except KeyError:
        return f"{group!r}"


def _too_small(groups) -> str:
    return f" Too small to judge (not compared): {sorted(groups)}." if groups else ""


def _gap_text(a: AttributeResult, d) -> str:
    """Which rate realises the gap, between which groups; for equalized odds both gaps."""
    lead = next((g for g in d.gaps if g.metric == d.metric), None)
    head = (f"{RATE_NAMES.get(d.metric, d.metric)} {_rate(a, d.class_name, d.metric, d.high_group)} "
            f"vs {_rate(a, d.class_name, d.metric, d.low_group)}: a gap of {d.value:.3f} "
            f"(class {d.class_name!r}; interval {d.ci_low:.3f} to {d.ci_high:.3f}"
            + ("" if d.significant else ", which includes zero: it may be chance") + ")")
    others = [g for g in d.gaps if g is not lead]
    for g in others:
        if np.isfinite(g.value):
            head += (f"; the {RATE_NAMES.get(g.metric, g.metric)} gap is {g.value:.3f} "
                     f"({_rate(a, d.class_name, g.metric, g.high_group)} vs "
                     f"{_rate(a, d.class_name, g.metric, g.low_group)})")
        else:
            head += f"; the {RATE_NAMES.get(g.metric, g.metric)} gap cannot be judged (fewer than two large groups)"
    return head + "."


def _attribute(a: AttributeResult, max_difference: float) -> list[Finding]:
    out = []
    small = sorted({g for d in a.disparities for g in d.small_groups})
    di = _worst(a, "disparate_impact")
    if di is not None:
        fails = di.value < FOUR_FIFTHS
        out.append(Finding(
            id=f"fairness.four_fifths:{a.name}", status="fail" if fails else "pass",
            title=f"Disparate impact by {a.name}",
            message=(f"Group {di.low_group!r} is predicted {di.class_name!r} at {di.value:.2f} times the rate "
                     f"of {di.high_group!r} (interval {di.ci_low:.2f} to {di.ci_high:.2f}); the "
                     f"four-fifths rule asks for at least {FOUR_FIFTHS} when {di.class_name!r} is the "
                     "favourable outcome (set favorable_class if it is not)." + _too_small(di.small_groups)),
            metric=f"disparate_impact:{a.name}", value=di.value, threshold=FOUR_FIFTHS))
    flagged = False
    for name in ("demographic_parity_difference", "equal_opportunity_difference",
                 "equalized_odds_difference", "predictive_parity_difference", "calibration_gap"):
        d = _worst(a, name)
        if d is None or d.value <= max_difference:
            continue
        flagged = True
        label = name.replace("_", " ")
        out.append(Finding(
            id=f"fairness.{name}:{a.name}", status="fail" if d.significant else "warn",
            title=f"{label.capitalize()} by {a.name}",
            message=(f"{label.capitalize()} {d.value:.3f} exceeds {max_difference}, realised by the "
                     + _gap_text(a, d) + _too_small(d.small_groups)),
            metric=f"{name}:{a.name}", value=d.value, threshold=max_difference))
    if not flagged:
        out.append(Finding(id=f"fairness.disparities:{a.name}", status="pass",
                           title=f"Disparities by {a.name}",
                           message=f"No disparity between groups of {a.name} large enough to judge exceeds "
                                   f"{max_difference}." + _too_small(small)))
    if small:
        out.append(Finding(id=f"fairness.small_groups:{a.name}", status="warn",
                           title=f"Groups too small to judge ({a.name})",
                           message=f"Groups {small} have fewer rows than min_group_size, or fewer than "
                                   "min_count rows in some metric's denominator (positives for TPR, "
                                   "negatives for FPR, predicted positives for precision); they are "
                                   "listed but never realise a headline disparity. The all-groups "
                                   "values are the '<disparity>:<attribute>:all_groups' metrics.",
                           metric=f"min_group_size:{a.name}", value=float(np.min(a.sizes))))
    undefined = sorted({g for d in a.disparities for g in d.undefined_groups})
    if undefined:
        out.append(Finding(id=f"fairness.undefined:{a.name}", status="warn",
                           title=f"Undefined group metrics ({a.name})",
                           message=f"Groups {undefined} have no positives, negatives or predicted "
                                   "positives for some metric; those metrics are left out of the "
                                   "disparities (NaN in the table)."))
    if a.empty_groups:
        out.append(Finding(id=f"fairness.empty_intersection:{a.name}", status="warn",
                           title=f"Empty intersections ({a.name})",
                           message=f"No audited rows fall in {list(a.empty_groups)}; these groups "
                                   "cannot be assessed."))
    return out


def _proxy(p: ProxyResult) -> list[Finding]:
    out = []
    top = [(c, v) for c, v in p.ranked() if v >= PROXY_NMI]
    if top or (np.isfinite(p.probe_auc) and p.probe_auc >= PROXY_AUC):
        names = ", ".join(f"{c} ({v:.2f})" for c, v in top[:3]) or "no single column"
        out.append(Finding(
            id=f"fairness.proxy:{p.attribute}", status="warn", title=f"Proxies for {p.attribute}",
            message=(f"The inputs carry {p.attribute}: a probe recovers it with ROC-AUC "
                     f"{p.probe_auc:.2f}; strongest proxies by normalised mutual information: {names}."),
            metric=f"proxy_probe_auc:{p.attribute}", value=p.probe_auc, threshold=PROXY_AUC))
    else:
        out.append(Finding(id=f"fairness.proxy:{p.attribute}", status="pass", title=f"Proxies for {p.attribute}",
                           message=f"No input predicts {p.attribute} (probe ROC-AUC {p.probe_auc:.2f})."))
    if p.attribution_share is not None:
        uses = p.attribution_share >= ATTRIBUTION_SHARE
        out.append(Finding(
            id=f"fairness.sensitive_input:{p.attribute}", status="warn" if uses else "pass",
            title=f"{p.attribute} used as an input",
            message=f"{p.attribute} is a model input and gets {p.attribution_share:.1%} of the "
                    f"model's attribution ({'mean |SHAP|' if (p.attribution_method or '').startswith('shap') else 'permutation importance'}).",
            metric=f"sensitive_attribution_share:{p.attribute}", value=p.attribution_share,
            threshold=ATTRIBUTION_SHARE))
    return out


def fairness_findings(attributes: Sequence[AttributeResult], proxies: Sequence[ProxyResult], *,
                      max_difference: float) -> tuple[Finding, ...]:
    out = [f for a in attributes for f in _attribute(a, max_difference)]
    out += [f for p in proxies for f in _proxy(p)]
    return tuple(out)
