"""`evaluate(model, data)`: audit missing values (Little & Rubin, "Statistical Analysis with Missing
Data"; the MCAR / MAR / MNAR taxonomy).

Profile, over all rows of the data (`Dataset.missing_mask`, before imputation): the missing rate
of every column, per group of each sensitive attribute with Wilson intervals, and the ROC AUC of
each column's missingness mask for the minority class. A gap between groups whose intervals do
not overlap, or a mask that predicts the label, is a finding: such values are not missing
completely at random, and imputation hides who is affected.

Robustness at prediction time: on the split's rows, a share `rate` of the imputable (numeric)
values is blanked completely at random (seeded), filled by the imputer stored in the data's
encoding (a mean imputer fitted on the training rows when the data has none) and re-encoded;
accuracy and minority-class recall are reported per rate, overall and per group.
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

import numpy as np
import pandas as pd

from audit.data import attribute_groups
from audit.data._missing import Imputation
from audit.errors import AuditInputError
from audit.missing._report import (AttributeMissingness, ColumnProfile, GroupPoint, GroupRate, MissingReport,
                                   RatePoint)
from audit.results import Finding, Provenance, timer


def wilson(count: np.ndarray, n: np.ndarray, *, confidence: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval for `count` successes out of `n` (NaN where n is 0); vectorised."""
    from scipy.stats import norm

    count, n = np.asarray(count, np.float64), np.asarray(n, np.float64)
    z = norm.ppf(0.5 + confidence / 2)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = count / n
        denom = 1 + z * z / n
        center = (p + z * z / (2 * n)) / denom
        half = z / denom * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return center - half, center + half


def _rate(label: str, hits: np.ndarray, *, confidence: float, min_size: int) -> GroupRate:
    n, count = int(hits.size), int(hits.sum())
    lo, hi = wilson(count, n, confidence=confidence)
    return GroupRate(label=label, n=n, count=count, rate=count / n if n else float("nan"),
                     ci_low=float(lo), ci_high=float(hi), too_small=n < min_size)


def _apart(a: GroupRate, b: GroupRate) -> bool:
    return bool(a.ci_low > b.ci_high or b.ci_low > a.ci_high)


def _mask_auc(mask: np.ndarray, positive: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    if positive.all() or not positive.any():
        return float("nan")
    return float(roc_auc_score(positive, mask.astype(np.float64)))


def _profile(data, mask, columns, attributes, minority, *, confidence, min_group_size, min_gap, auc_margin):
    positive = data.y == minority
    profiles, per_attribute = [], []
    groupings = {a: attribute_groups(data, a) for a in attributes}
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


def _imputing_encoding(data):
    """The data's encoding with an imputer: its own, or a mean imputer fitted on the training rows."""
    enc = data.encoding
    if enc.imputation is not None:
        return enc, f"{enc.imputation.strategy} (the data's imputer, fitted on the training rows)"
    numeric = [j for j, c in enumerate(enc.columns) if c.kind == "numeric"]
    frame = pd.DataFrame(data.raw[data.splits["train"]][:, numeric],
                         columns=[enc.columns[j].name for j in numeric])
    imputation = Imputation.fit(frame, strategy="mean", indicators=False)
    return dataclasses.replace(enc, imputation=imputation), \
        "mean (the data has no imputer: fitted here on the training rows)"


def _point(rate, correct, positive, groupings, *, confidence, min_group_size) -> RatePoint:
    groups = []
    for attribute, grouping in groupings.items():
        for g, label in enumerate(grouping.labels):
            mine = grouping.codes == g
            groups.append(GroupPoint(
                attribute=attribute,
                accuracy=_rate(label, correct[mine], confidence=confidence, min_size=min_group_size),
                minority_recall=_rate(label, correct[mine & positive], confidence=confidence,
                                      min_size=min_group_size)))
    return RatePoint(rate=float(rate), accuracy=_rate("all", correct, confidence=confidence, min_size=0),
                     minority_recall=_rate("all", correct[positive], confidence=confidence, min_size=0),
                     groups=tuple(groups))


def _findings(report_parts, minority, *, max_drop) -> tuple[Finding, ...]:
    columns, attributes, curve = report_parts
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
    if len(curve) > 1:
        base, last = curve[0], curve[-1]
        drop = base.accuracy.rate - last.accuracy.rate
        recall_drop = base.minority_recall.rate - last.minority_recall.rate
        worst, worst_drop = None, -np.inf
        for g0, g1 in zip(base.groups, last.groups):
            if not g0.accuracy.too_small and g0.accuracy.rate - g1.accuracy.rate > worst_drop:
                worst, worst_drop = g1, g0.accuracy.rate - g1.accuracy.rate
        detail = (f"; the largest group drop is {worst.attribute}={worst.accuracy.label} ({worst_drop:+.1%})"
                  if worst is not None else "")
        out.append(Finding(
            id="missing.robustness", status="warn" if max(drop, recall_drop) > max_drop else "pass",
            title="Accuracy with values missing at prediction time",
            message=(f"With {last.rate:.0%} of the values missing at random and imputed, accuracy goes from "
                     f"{base.accuracy.rate:.1%} to {last.accuracy.rate:.1%} and minority recall from {base.minority_recall.rate:.1%} to "
                     f"{last.minority_recall.rate:.1%} (rule: each drops at most {max_drop:.0%}){detail}."),
            metric=f"accuracy_drop@{last.rate:g}", value=float(drop), threshold=max_drop))
    return tuple(out)


def evaluate(model, data, *, split: str = "test", rates: Sequence[float] = (0.1, 0.2, 0.4),
             attributes: Sequence[str] | None = None, confidence: float = 0.95, min_group_size: int = 30,
             min_gap: float = 0.05, auc_margin: float = 0.05, max_drop: float = 0.05,
             seed: int = 0) -> MissingReport:
    """Missingness profile of `data` and the model's robustness to values missing at prediction time.

    `rates`: shares of the split's numeric values blanked completely at random (seeded by `seed`).
    `attributes`: sensitive attributes to group by (default: all). A group gap is unequal when it is
    at least `min_gap` and the Wilson intervals (`confidence`) do not overlap; a mask is informative
    when its AUC is `auc_margin` or more from 0.5 and the minority / rest rates' intervals do not
    overlap; groups under `min_group_size` rows never carry a headline.
    """
    if data.kind != "tabular" or data.encoding is None:
        raise AuditInputError(f"{data.name}: the missing-data audit needs tabular data with an encoding "
                              "(load it with audit.data.from_pandas / from_csv).")
    rates = tuple(float(r) for r in rates)
    if any(not 0 < r < 1 for r in rates) or list(rates) != sorted(set(rates)):
        raise AuditInputError(f"missing rates {list(rates)} must be increasing shares in (0, 1), e.g. [0.1, 0.2, 0.4].")
    if split not in data.splits or len(data.splits[split]) == 0:
        raise AuditInputError(f"{data.name}: split {split!r} is missing or empty; have {sorted(data.splits)}.")
    attributes = sorted(data.sensitive) if attributes is None else list(attributes)
    for a in attributes:
        for part in a.split("&"):
            if part not in data.sensitive:
                raise AuditInputError(f"{data.name} has no sensitive attribute {part!r}; it has {sorted(data.sensitive)}.")
    settings = dict(split=split, rates=list(rates), attributes=attributes, confidence=confidence,
                    min_group_size=min_group_size, min_gap=min_gap, auc_margin=auc_margin, max_drop=max_drop)
    with timer() as t:
        train_counts = np.bincount(data.y[data.splits["train"]], minlength=data.n_classes)
        minority = int(np.argmin(np.where(train_counts > 0, train_counts, np.iinfo(np.int64).max)))
        n_raw = len(data.raw_feature_names)
        mask = data.missing_mask if data.missing_mask is not None else np.zeros((len(data), n_raw), bool)
        columns = [j for j in range(n_raw) if mask[:, j].any()]
        profiles, per_attribute = _profile(data, mask, columns, attributes, minority, confidence=confidence,
                                           min_group_size=min_group_size, min_gap=min_gap, auc_margin=auc_margin)

        encoding, imputer = _imputing_encoding(data)
        rows = data.splits[split]
        y, positive = data.y[rows], data.y[rows] == minority
        groupings = {a: attribute_groups(data, a, rows) for a in attributes}
        raw = np.where(mask[rows], np.nan, data.raw[rows])
        numeric = np.array([c.kind == "numeric" for c in encoding.columns])
        rng = np.random.default_rng(seed)
        curve = [_point(0.0, model.predict(data.X[rows]) == y, positive, groupings,
                        confidence=confidence, min_group_size=min_group_size)]
        for rate in rates:
            blank = (rng.random(raw.shape) < rate) & numeric[None, :]
            x = encoding.encode(np.where(blank, np.nan, raw))
            curve.append(_point(rate, model.predict(x) == y, positive, groupings,
                                confidence=confidence, min_group_size=min_group_size))
        findings = _findings((profiles, per_attribute, curve), data.class_names[minority], max_drop=max_drop)
    return MissingReport(split=split, minority_class=data.class_names[minority], imputer=imputer,
                         columns=profiles, attributes=per_attribute, curve=tuple(curve), findings=findings,
                         provenance=Provenance(method="missing", settings=settings, seed=seed, seconds=t[0]))
