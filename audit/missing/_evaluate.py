"""`evaluate(model, data)`: audit missing values (Little & Rubin, "Statistical Analysis with Missing
Data"; the MCAR / MAR / MNAR taxonomy).

Profile, over all rows of the data (`Dataset.missing_mask`, before imputation): the missing rate
of every column, per group of each sensitive attribute with Wilson intervals, and the ROC AUC of
each column's missingness mask for the minority class. A gap between groups whose intervals do
not overlap, or a mask that predicts the label, is a finding: such values are not missing
completely at random, and imputation hides who is affected.

Robustness at prediction time: on the split's rows, a share `rate` of the imputable (numeric)
values is blanked (seeded) in each scenario: completely at random ("mcar"); concentrated on the
columns the model relies on most ("important": ranked by permutation importance on up to
`importance_rows` split rows, the top third of the columns take the share first); or only in one
group's rows ("group": per sensitive attribute, the group named in `groups`, by default the group
the profile found missing most often, else the smallest judged one). The blanks are filled by each
imputation strategy (fitted on the training rows only) and re-encoded; accuracy, minority-class
recall and the fairness gaps (`audit.fairness`'s demographic parity and equalized odds
differences) are reported per rate, overall and per group with intervals. "multiple" is multiple
imputation: `draws` IterativeImputer fits with `sample_posterior=True`, each draw's estimates
pooled by Rubin's rules (`audit.missing._rubin`), whose intervals widen by what the draws disagree on.

Rows are processed in chunks of `CHUNK` (the injected matrices never exceed a chunk), with one
uniform draw per value shared by every rate, scenario and strategy (common random numbers: a value
blanked at 0.1 is blanked at 0.2 too): uniforms for chunk c come from
`np.random.default_rng((seed, c))`.
"""

from __future__ import annotations

import dataclasses
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from audit.data import attribute_groups
from audit.data._missing import Imputation
from audit.errors import AuditInputError
from audit.intervals import wilson_interval as wilson
from audit.missing._report import (AttributeMissingness, ColumnImportance, ColumnProfile, Curve, FairnessGap,
                                   GroupPoint, GroupRate, MissingReport, RatePoint)
from audit.missing._rubin import rubin
from audit.results import Finding, Provenance, timer


def _rate(label: str, hits: np.ndarray, *, confidence: float, min_size: int) -> GroupRate:
    n, count = int(hits.size), int(hits.sum())
    lo, hi = wilson(count, n, confidence=confidence)
    return GroupRate(label=label, n=n, count=count, rate=count / n if n else float("nan"),
                     ci_low=float(lo), ci_high=float(hi), too_small=n < min_size)


def _apart(a: GroupRate, b: GroupRate) -> bool:
    return bool(a.ci_low > b.ci_high or b.ci_low > a.ci_high)


def _mask_auc(mask: np.ndarray, positive: np.ndarray) -> float:
    """ROC AUC of a 0/1 score, in closed form from two rates (no sort, no copy of the rows): a
    positive outranks a negative when only it is missing, ties count half, so AUC = 0.5 +
    (P(missing | positive) - P(missing | negative)) / 2, which equals scikit-learn's roc_auc_score."""
    n_pos = int(positive.sum())
    if n_pos in (0, positive.size):
        return float("nan")
    both = int(np.count_nonzero(mask & positive))
    return 0.5 + 0.5 * (both / n_pos - (int(np.count_nonzero(mask)) - both) / (positive.size - n_pos))


def _profile(data, mask, columns, groupings, minority, *, confidence, min_group_size, min_gap, auc_margin):
    positive = data.y == minority
    profiles, per_attribute = [], []
    for j in columns:
        name = data.raw_feature_names[j]
        m = mask[:, j]
        inside = _rate("minority", m[positive], confidence=confidence, min_size=min_group_size)
        rest = _rate("rest", m[~positive], confidence=confidence, min_size=min_group_size)
        auc = _mask_auc(m, positive)
        informative = (not inside.too_small and not rest.too_small and _apart(inside, rest)
                       and abs(auc - 0.5) >= auc_margin)
        profiles.append(ColumnProfile(column=name, n_missing=int(m.sum()), rate=float(m.mean()), mask_auc=auc,
                                      minority=inside, rest=rest, informative=bool(informative)))
        for attribute, grouping in groupings.items():
            groups = tuple(_rate(label, m[grouping.codes == g], confidence=confidence, min_size=min_group_size)
                           for g, label in enumerate(grouping.labels))
            judged = [g for g in groups if not g.too_small]
            if len(judged) < 2:
                per_attribute.append(AttributeMissingness(
                    attribute=attribute, column=name, rule=grouping.rule, groups=groups, rate_gap=float("nan"),
                    high_group=None, low_group=None, unequal=False))
                continue
            high, low = max(judged, key=lambda g: g.rate), min(judged, key=lambda g: g.rate)
            gap = high.rate - low.rate
            per_attribute.append(AttributeMissingness(
                attribute=attribute, column=name, rule=grouping.rule, groups=groups, rate_gap=float(gap),
                high_group=high.label, low_group=low.label, unequal=bool(gap >= min_gap and _apart(high, low))))
    return tuple(profiles), tuple(per_attribute)


CHUNK = 65_536  # rows per injected block: bounds memory at any data size
STRATEGIES = ("data", "mean", "median", "most_frequent", "knn", "iterative", "multiple")
SCENARIOS = ("mcar", "important", "group")


def _imputing_encoding(data):
    """The data's encoding with an imputer: its own, or a mean imputer fitted on the training rows."""
    enc = data.encoding
    if enc.imputation is not None:
        return enc, f"{enc.imputation.strategy} (the data's imputer, fitted on the training rows)"
    return dataclasses.replace(enc, imputation=_fit(data, "mean")), \
        "mean (the data has no imputer: fitted here on the training rows)"


def _fit(data, strategy: str, **options) -> Imputation:
    """`strategy`'s imputation fitted on the training rows: the data's own with another fill (its
    indicator inputs kept), or a new one over the numeric columns when the data has none."""
    enc = data.encoding
    if enc.imputation is not None:
        return dataclasses.replace(enc.imputation, strategy=strategy, **options)
    numeric = [j for j, c in enumerate(enc.columns) if c.kind == "numeric"]
    frame = pd.DataFrame(data.raw[data.splits["train"]][:, numeric], columns=[enc.columns[j].name for j in numeric])
    return dataclasses.replace(Imputation.fit(frame, strategy=strategy, indicators=False), **options)


def strategy_encodings(data, strategy: str, *, draws: int = 5, seed: int = 0) -> list:
    """The encodings that fill values by `strategy`, all fitted on the training rows: one, or
    `draws` posterior draws of IterativeImputer for "multiple" (seeds seed, seed + 1, ...)."""
    if strategy == "data":
        return [_imputing_encoding(data)[0]]
    if strategy == "multiple":
        return [dataclasses.replace(data.encoding, imputation=_fit(data, "iterative", seed=seed + k, posterior=True))
                for k in range(draws)]
    return [dataclasses.replace(data.encoding, imputation=_fit(data, strategy))]


def _share(label: str, hits: np.ndarray, *, confidence: float, min_size: int) -> GroupRate:
    """A share over draws (draws, n): Wilson for one draw, Rubin's rules over several."""
    if hits.shape[0] == 1:
        return _rate(label, hits[0], confidence=confidence, min_size=min_size)
    n = hits.shape[1]
    if n == 0:
        return GroupRate(label=label, n=0, count=0, rate=float("nan"), ci_low=float("nan"), ci_high=float("nan"),
                         too_small=min_size > 0)
    p = hits.mean(axis=1)
    mean, _, lo, hi = rubin(p, p * (1 - p) / n, confidence=confidence)
    return GroupRate(label=label, n=n, count=int(round(mean * n)), rate=mean, ci_low=float(max(lo, 0.0)),
                     ci_high=float(min(hi, 1.0)), too_small=n < min_size)


def _gaps(pred, y, groupings, minority, *, min_group_size) -> tuple[FairnessGap, ...]:
    """Demographic parity and equalized odds differences over the judged groups (fairlearn's
    between-groups differences of `audit.fairness.by_group`'s selection rate, TPR and FPR; one
    table per draw), averaged over imputation draws (Rubin's pooled estimate)."""
    from audit.fairness import by_group

    out = []
    for attribute, grouping in groupings.items():
        keep = grouping.sizes[grouping.codes] >= min_group_size
        if len(np.unique(grouping.codes[keep])) < 2:
            out.append(FairnessGap(attribute=attribute, demographic_parity=float("nan"), equalized_odds=float("nan")))
            continue
        codes, truth = grouping.codes[keep], y[keep]
        dp, eo = [], []
        for p in pred:
            table = by_group(truth, p[keep], sensitive_features=codes, pos_label=minority)
            spread = {m: float(np.nanmax(table[m]) - np.nanmin(table[m])) if table[m].notna().any() else float("nan")
                      for m in ("selection_rate", "true_positive_rate", "false_positive_rate")}
            dp.append(spread["selection_rate"])
            eo.append(max(spread["true_positive_rate"], spread["false_positive_rate"]))
        out.append(FairnessGap(attribute=attribute, demographic_parity=float(np.mean(dp)),
                               equalized_odds=float(np.mean(eo))))
    return tuple(out)


def _point(rate, pred, y, minority, groupings, *, confidence, min_group_size) -> RatePoint:
    """One curve point from the predictions of every draw, `pred` (draws, n)."""
    correct, positive = pred == y[None], y == minority
    groups = []
    for attribute, grouping in groupings.items():
        for g, label in enumerate(grouping.labels):
            mine = grouping.codes == g
            groups.append(GroupPoint(
                attribute=attribute,
                accuracy=_share(label, correct[:, mine], confidence=confidence, min_size=min_group_size),
                minority_recall=_share(label, correct[:, mine & positive], confidence=confidence,
                                       min_size=min_group_size)))
    return RatePoint(rate=float(rate), accuracy=_share("all", correct, confidence=confidence, min_size=0),
                     minority_recall=_share("all", correct[:, positive], confidence=confidence, min_size=0),
                     groups=tuple(groups), gaps=_gaps(pred, y, groupings, minority, min_group_size=min_group_size))


def _importance(model, data, encoding, rows, mask, numeric, *, n_rows, seed) -> np.ndarray:
    """Permutation importance (accuracy lost) of each numeric raw column on up to `n_rows` rows;
    every permuted copy goes through the model in one batched call."""
    rng = np.random.default_rng((seed, 1 << 20))
    pick = np.sort(rng.choice(rows, size=min(n_rows, len(rows)), replace=False))
    raw = np.where(mask[pick], np.nan, data.raw[pick])
    copies = np.repeat(raw[None], len(numeric), axis=0)
    for k, j in enumerate(numeric):
        copies[k][:, j] = rng.permutation(raw[:, j])
    y = data.y[pick]
    base = np.mean(model.predict(encoding.encode(raw)) == y)
    pred = model.predict(encoding.encode(copies.reshape(-1, raw.shape[1]))).reshape(len(numeric), -1)
    return base - (pred == y[None]).mean(axis=1)


def _column_shares(rate: float, order: np.ndarray, top: int) -> np.ndarray:
    """Per-column blank probabilities averaging `rate`: the `top` columns first in `order` take the
    share up to 1, the rest spread evenly over the other columns."""
    n = len(order)
    q = min(1.0, rate * n / top)
    rest = (rate * n - top * q) / (n - top) if n > top else 0.0
    out = np.full(n, rest)
    out[order[:top]] = q
    return out


def _scenario_group(data, grouping, attribute, named, per_attribute, min_group_size) -> str:
    if named is not None:
        if str(named) not in grouping.labels:
            raise AuditInputError(f"groups: {attribute} has no group {named!r}; its groups are {list(grouping.labels)}.")
        return str(named)
    unequal = [a for a in per_attribute if a.attribute == attribute and a.unequal]
    if unequal:
        return max(unequal, key=lambda a: a.rate_gap).high_group
    sizes = grouping.sizes
    judged = [g for g in range(len(grouping.labels)) if sizes[g] >= min_group_size] or list(range(len(sizes)))
    return grouping.labels[min(judged, key=lambda g: sizes[g])]


def _predict_curves(model, data, rows, mask, specs, encodings, rates, *, seed) -> dict:
    """Predictions (draws, n) per (strategy, scenario, rate index; index 0 is rate 0), computed chunk
    by chunk: the injected raw matrices never exceed CHUNK rows."""
    numeric = np.array([c.kind == "numeric" for c in data.encoding.columns])
    n_numeric = int(numeric.sum())
    dtype = np.int8 if data.n_classes < 128 else np.int32
    out = {(t, s, i): np.empty((len(encs), len(rows)), dtype) for t, encs in encodings.items()
           for s, _, _ in specs for i in range(len(rates) + 1)}
    for c, start in enumerate(range(0, len(rows), CHUNK)):
        r = rows[start:start + CHUNK]
        stop = start + len(r)
        raw = np.where(mask[r], np.nan, data.raw[r])
        u = np.random.default_rng((seed, c)).random((len(r), n_numeric))
        for t, encs in encodings.items():
            for d, enc in enumerate(encs):
                base = model.predict(data.X[r] if t == "data" else enc.encode(raw))
                for s, _, _ in specs:
                    out[t, s, 0][d, start:stop] = base
        for s, shares, in_group in specs:
            for i, share in enumerate(shares, start=1):
                blank = u < share[None, :]
                if in_group is not None:
                    blank &= in_group[r][:, None]
                x = raw.copy()
                x[:, numeric] = np.where(blank, np.nan, raw[:, numeric])
                for t, encs in encodings.items():
                    for d, enc in enumerate(encs):
                        out[t, s, i][d, start:stop] = model.predict(enc.encode(x))
    return out


def _robustness_finding(curve: Curve, *, max_drop: float, fid: str, what: str) -> Finding:
    base, last = curve.points[0], curve.points[-1]
    drop = base.accuracy.rate - last.accuracy.rate
    recall_drop = base.minority_recall.rate - last.minority_recall.rate
    worst, worst_drop = None, -np.inf
    for g0, g1 in zip(base.groups, last.groups):
        if not g0.accuracy.too_small and g0.accuracy.rate - g1.accuracy.rate > worst_drop:
            worst, worst_drop = g1, g0.accuracy.rate - g1.accuracy.rate
    detail = (f"; the largest group drop is {worst.attribute}={worst.accuracy.label} ({worst_drop:+.1%})"
              if worst is not None else "")
    suffix = "" if fid == "missing.robustness" else f":{curve.key}"
    return Finding(
        id=fid, status="warn" if max(drop, recall_drop) > max_drop else "pass",
        title=f"Accuracy with values missing at prediction time ({curve.scenario})",
        message=(f"With {last.rate:.0%} of the values {what} and imputed, accuracy goes from "
                 f"{base.accuracy.rate:.1%} to {last.accuracy.rate:.1%} and minority recall from "
                 f"{base.minority_recall.rate:.1%} to {last.minority_recall.rate:.1%} (rule: each drops at most "
                 f"{max_drop:.0%}){detail}."),
        metric=f"accuracy_drop@{last.rate:g}{suffix}", value=float(drop), threshold=max_drop)


def _curve_findings(curves, *, max_drop, max_gap_increase) -> list[Finding]:
    out = []
    for k, curve in enumerate(curves):
        if curve.strategy != "data" or len(curve.points) < 2:
            continue
        out.append(_robustness_finding(curve, max_drop=max_drop, fid="missing.robustness" if k == 0 else
                                       f"missing.robustness:{curve.scenario}", what=curve.description))
    data_curves = [c for c in curves if c.strategy == "data" and len(c.points) > 1]
    for attribute in dict.fromkeys(g.attribute for c in data_curves for g in c.points[0].gaps):
        worst = None  # (increase, curve, metric name, before, after)
        for c in data_curves:
            g0 = next(g for g in c.points[0].gaps if g.attribute == attribute)
            g1 = next(g for g in c.points[-1].gaps if g.attribute == attribute)
            for name, before, after in (("demographic_parity_difference", g0.demographic_parity, g1.demographic_parity),
                                        ("equalized_odds_difference", g0.equalized_odds, g1.equalized_odds)):
                if np.isfinite(before) and np.isfinite(after) and (worst is None or after - before > worst[0]):
                    worst = (after - before, c, name, before, after)
        if worst is None:
            continue
        increase, c, name, before, after = worst
        suffix = "" if c is curves[0] else f":{c.key}"
        out.append(Finding(
            id=f"missing.fairness:{attribute}", status="warn" if increase > max_gap_increase else "pass",
            title=f"Fairness across {attribute} as values go missing",
            message=(f"The largest change is in the {name.replace('_', ' ')} across {attribute}: {before:.3f} on the "
                     f"data as it is, {after:.3f} with {c.points[-1].rate:.0%} of the values {c.description} "
                     f"(rule: it grows by at most {max_gap_increase:.2f})."),
            metric=f"{name}@{c.points[-1].rate:g}:{attribute}{suffix}", value=float(after),
            threshold=None))
    strategies = [c for c in curves if c.scenario == "mcar" and len(c.points) > 1]
    if len(strategies) > 1:
        def worst_group(c):
            judged = [g.accuracy for g in c.points[-1].groups if not g.accuracy.too_small]
            return min(judged, key=lambda a: a.rate) if judged else c.points[-1].accuracy
        def name(c):
            return "the data's imputer" if c.strategy == "data" else c.strategy
        ranked = sorted(strategies, key=lambda c: -worst_group(c).rate)
        best, w = ranked[0], worst_group(ranked[0])
        rest = ", ".join(f"{name(c)} {worst_group(c).rate:.1%}" for c in ranked[1:])
        out.append(Finding(
            id="missing.strategy", status="pass", title="Imputation strategy with the best worst group",
            message=(f"With {best.points[-1].rate:.0%} of the values missing at random, filling them by "
                     f"{name(best)} keeps the worst judged group ({w.label}) at {w.rate:.1%} accuracy "
                     f"[{w.ci_low:.1%}, {w.ci_high:.1%}]; {rest}. Compare strategies end to end (retrained) "
                     "with the missing_strategies analyzer."),
            metric=f"accuracy@{best.points[-1].rate:g}" + ("" if best is curves[0] else f":{best.key}"),
            value=float(best.points[-1].accuracy.rate)))
    return out


def _findings(columns, attributes, minority) -> list[Finding]:
    out = [] if columns else [Finding(
        id="missing.none", status="pass", title="No missing values",
        message="The data has no missing values; only robustness to values missing at prediction time is measured.")]
    for a in attributes:
        if a.unequal:
            high = next(g for g in a.groups if g.label == a.high_group)
            low = next(g for g in a.groups if g.label == a.low_group)
            out.append(Finding(
                id=f"missing.unequal:{a.attribute}:{a.column}", status="warn",
                title=f"{a.column} is missing unequally across {a.attribute}",
                message=(f"{a.column} is missing for {high.rate:.1%} of {a.attribute}={a.high_group} rows "
                         f"[{high.ci_low:.1%}, {high.ci_high:.1%}] vs {low.rate:.1%} of {a.attribute}={a.low_group} "
                         f"rows [{low.ci_low:.1%}, {low.ci_high:.1%}]: the imputed values stand in for "
                         f"{a.attribute}={a.high_group} far more often."),
                metric=f"rate_gap:{a.attribute}", value=a.rate_gap))
    for name in dict.fromkeys(a.attribute for a in attributes):
        if not any(a.unequal for a in attributes if a.attribute == name):
            gaps = [a.rate_gap for a in attributes if a.attribute == name and np.isfinite(a.rate_gap)]
            out.append(Finding(
                id=f"missing.unequal:{name}", status="pass", title=f"Missingness across {name}",
                message=(f"No column's missing rate differs beyond its intervals across {name} groups "
                         f"(largest gap {max(gaps):.1%})." if gaps else
                         f"Fewer than two {name} groups are large enough to compare missing rates."),
                metric=f"rate_gap:{name}", value=max(gaps) if gaps else None))
    for c in columns:
        if c.informative:
            out.append(Finding(
                id=f"missing.informative:{c.column}", status="warn",
                title=f"Missingness of {c.column} predicts the label",
                message=(f"{c.column} is missing for {c.minority.rate:.1%} of class {minority!r} rows vs "
                         f"{c.rest.rate:.1%} of the others (mask AUC {c.mask_auc:.3f}): the values are not "
                         "missing at random, so the mask carries label signal that imputation hides or leaks."),
                metric=f"mask_auc:{c.column}", value=c.mask_auc))
    return out


def evaluate(model, data, *, split: str = "test", rates: Sequence[float] = (0.1, 0.2, 0.4),
             scenarios: Sequence[str] = SCENARIOS, groups: Mapping[str, str] | None = None,
             strategies: Sequence[str] = ("data",), draws: int = 5, importance_rows: int = 2000,
             attributes: Sequence[str] | None = None, confidence: float = 0.95, min_group_size: int = 30,
             min_gap: float = 0.05, auc_margin: float = 0.05, max_drop: float = 0.05,
             max_gap_increase: float = 0.05, seed: int = 0) -> MissingReport:
    """Missingness profile of `data` and the model's robustness to values missing at prediction time.

    `rates`: shares of the split's numeric values blanked (seeded by `seed`) in each of `scenarios`
    ("mcar", "important", "group"; see the module docstring), `groups` naming the group per attribute
    for "group". `strategies`: how blanks are filled, each fitted on the training rows ("data": the
    data's own imputer, always measured first; "mean", "median", "most_frequent", "knn", "iterative";
    "multiple": `draws` posterior draws pooled by Rubin's rules). `attributes`: sensitive attributes
    to group by (default: all). A group gap is unequal when it is at least `min_gap` and the Wilson
    intervals (`confidence`) do not overlap; a mask is informative when its AUC is `auc_margin` or
    more from 0.5 and the minority / rest rates' intervals do not overlap; a fairness gap that grows
    by more than `max_gap_increase` is a warning; groups under `min_group_size` rows never carry a headline.
    """
    if data.kind != "tabular" or data.encoding is None:
        raise AuditInputError(f"{data.name}: the missing-data audit needs tabular data with an encoding "
                              "(load it with audit.data.from_pandas / from_csv).")
    rates = tuple(float(r) for r in rates)
    if any(not 0 < r < 1 for r in rates) or list(rates) != sorted(set(rates)):
        raise AuditInputError(f"missing rates {list(rates)} must be increasing shares in (0, 1), e.g. [0.1, 0.2, 0.4].")
    if split not in data.splits or len(data.splits[split]) == 0:
        raise AuditInputError(f"{data.name}: split {split!r} is missing or empty; have {sorted(data.splits)}.")
    scenarios = list(dict.fromkeys(scenarios))
    if "mcar" not in scenarios or any(s not in SCENARIOS for s in scenarios):
        raise AuditInputError(f"missing scenarios {scenarios} must include 'mcar' and be among {list(SCENARIOS)}.")
    strategies = ["data"] + [s for s in dict.fromkeys(strategies) if s != "data"]
    if any(s not in STRATEGIES for s in strategies):
        raise AuditInputError(f"missing strategies {strategies}: choose among {list(STRATEGIES)}.")
    if not isinstance(draws, int) or isinstance(draws, bool) or draws < 2:
        raise AuditInputError(f"missing draws must be an integer of at least 2 (multiple imputation), got {draws!r}.")
    attributes = sorted(data.sensitive) if attributes is None else list(attributes)
    for a in attributes:
        for part in a.split("&"):
            if part not in data.sensitive:
                raise AuditInputError(f"{data.name} has no sensitive attribute {part!r}; it has {sorted(data.sensitive)}.")
    groups = dict(groups or {})
    if set(groups) - set(attributes):
        raise AuditInputError(f"groups names {sorted(set(groups) - set(attributes))}, which are not among the "
                              f"audited attributes {attributes}.")
    settings = dict(split=split, rates=list(rates), scenarios=scenarios, groups=groups, strategies=strategies,
                    draws=draws, importance_rows=importance_rows, attributes=attributes, confidence=confidence,
                    min_group_size=min_group_size, min_gap=min_gap, auc_margin=auc_margin, max_drop=max_drop,
                    max_gap_increase=max_gap_increase)
    with timer() as t:
        train_counts = np.bincount(data.y[data.splits["train"]], minlength=data.n_classes)
        minority = int(np.argmin(np.where(train_counts > 0, train_counts, np.iinfo(np.int64).max)))
        n_raw = len(data.raw_feature_names)
        mask = data.missing_mask if data.missing_mask is not None else np.zeros((len(data), n_raw), bool)
        columns = [j for j in range(n_raw) if mask[:, j].any()]
        whole = {a: attribute_groups(data, a) for a in attributes}  # all rows: the profile and group scenario
        profiles, per_attribute = _profile(data, mask, columns, whole, minority, confidence=confidence,
                                           min_group_size=min_group_size, min_gap=min_gap, auc_margin=auc_margin)

        encoding, imputer = _imputing_encoding(data)
        rows = np.asarray(data.splits[split])
        y = data.y[rows]
        groupings = {a: attribute_groups(data, a, rows) for a in attributes}
        numeric = [j for j, c in enumerate(encoding.columns) if c.kind == "numeric"]
        specs, importance = [("mcar", [np.full(len(numeric), r) for r in rates], None)], ()
        if "important" in scenarios and numeric:
            drops = _importance(model, data, encoding, rows, mask, numeric, n_rows=importance_rows, seed=seed)
            importance = tuple(ColumnImportance(column=encoding.columns[j].name, importance=float(v))
                               for j, v in zip(numeric, drops))
            order = np.argsort(-drops, kind="stable")
            top = max(1, round(len(numeric) / 3))
            specs.append(("important", [_column_shares(r, order, top) for r in rates], None))
        described = {"mcar": "missing completely at random"}
        if "important" in scenarios and numeric:
            top_names = [encoding.columns[numeric[j]].name for j in order[:top]]
            described["important"] = f"missing mostly from {', '.join(top_names)} (the most important)"
        if "group" in scenarios:
            for a, grouping in groupings.items():
                label = _scenario_group(data, grouping, a, groups.get(a), per_attribute, min_group_size)
                in_group = np.asarray(whole[a].codes) == whole[a].labels.index(label)
                specs.append((f"group:{a}", [np.full(len(numeric), r) for r in rates], in_group))
                described[f"group:{a}"] = f"missing from {a}={label} rows only"
        encodings = {s: strategy_encodings(data, s, draws=draws, seed=seed) for s in strategies}
        preds = _predict_curves(model, data, rows, mask, specs, encodings, rates, seed=seed)
        curves = tuple(
            Curve(scenario=s, strategy=st, description=described[s], points=tuple(
                _point(rate, preds[st, s, i], y, minority, groupings, confidence=confidence,
                       min_group_size=min_group_size) for i, rate in enumerate((0.0,) + rates)))
            for st in strategies for s, _, _ in specs)
        findings = _findings(profiles, per_attribute, data.class_names[minority])
        findings += _curve_findings(curves, max_drop=max_drop, max_gap_increase=max_gap_increase)
    return MissingReport(split=split, minority_class=data.class_names[minority], imputer=imputer,
                         columns=profiles, attributes=per_attribute, importance=importance, curves=curves,
                         findings=tuple(findings),
                         provenance=Provenance(method="missing", settings=settings, seed=seed, seconds=t[0]))
