"""Group metrics and disparities for one grouping, from labels, predictions and scores (arrays)."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from audit.data._checks import check_predictions
from audit.errors import AuditInputError
from audit.fairness import _disparity, _stats
from audit.data._groups import Grouping, make_grouping
from audit.fairness._report import AttributeResult, GroupTable


def _class_index(c, class_names: Sequence[str]) -> int:
    if isinstance(c, (int, np.integer)) and 0 <= int(c) < len(class_names):
        return int(c)
    if str(c) in class_names:
        return list(class_names).index(str(c))
    raise AuditInputError(f"class {c!r} is not one of the model's classes {list(class_names)}.")


def assess(y_true, y_pred, groups, *, scores=None, class_names: Sequence[str] | None = None,
           classes: Sequence[int | str] | None = None, favorable_class: int | str | None = None,
           name: str = "group", n_bootstrap: int = 500, confidence: float = 0.95, seed: int = 0,
           n_bins: int = 10, min_group_size: int = 30, min_count: int = 10) -> AttributeResult:
    """Per-group metrics and disparities with bootstrap intervals for one attribute.

    `groups` is one label per row (or a `Grouping`); `scores` (n, K) class probabilities
    enable ROC-AUC and calibration error. `classes` are analysed one-vs-rest (default: class 1
    for a binary problem, every class otherwise); `favorable_class` is the outcome whose
    selection rate enters the disparate impact ratio (default: the first analysed class).
    Headline disparities compare only groups with at least `min_group_size` rows and `min_count`
    rows in the metric's denominator (positives for TPR, negatives for FPR, predicted positives
    for precision); each disparity keeps the all-groups value (fairlearn's) beside it. Per-group
    rates get exact Clopper-Pearson intervals at `confidence`.
    """
    if class_names is None:
        k = int(max(np.max(y_true), np.max(y_pred))) + 1 if len(np.asarray(y_true)) else 2
        class_names = tuple(str(i) for i in range(max(k, 2 if scores is None else np.shape(scores)[1])))
    class_names = tuple(str(c) for c in class_names)
    n_classes = len(class_names)
    y_true, y_pred, scores = check_predictions(y_true, y_pred, scores, n_classes, f"attribute {name!r}")
    grouping = groups if isinstance(groups, Grouping) else make_grouping(groups, name)
    if len(grouping.codes) != len(y_true):
        raise AuditInputError(f"sensitive attribute {grouping.name!r} has {len(grouping.codes)} values "
                              f"for {len(y_true)} rows; give one value per row.")
    if len(grouping.labels) < 2:
        raise AuditInputError(f"sensitive attribute {grouping.name!r} has a single group "
                              f"{list(grouping.labels)} in these rows; fairness needs two or more.")
    integer = lambda v: isinstance(v, (int, np.integer)) and not isinstance(v, bool)
    real = lambda v: isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)
    if not (real(confidence) and 0 < confidence < 1 and integer(n_bootstrap) and n_bootstrap >= 0
            and integer(n_bins) and n_bins >= 1):
        raise AuditInputError(f"confidence must be in (0, 1), n_bootstrap an integer >= 0 and n_bins an "
                              f"integer >= 1; got confidence={confidence!r}, n_bootstrap={n_bootstrap!r}, "
                              f"n_bins={n_bins!r}.")
    analysed = ([1] if n_classes == 2 else list(range(n_classes))) if classes is None else \
        [_class_index(c, class_names) for c in classes]
    favorable = analysed[0] if favorable_class is None else _class_index(favorable_class, class_names)
    rng = np.random.default_rng(seed)
    G = len(grouping.labels)
    sums, auc, boot = {}, {}, {}
    for c in dict.fromkeys([*analysed, favorable]):
        y_pos, pred_pos = y_true == c, y_pred == c
        score = scores[:, c] if scores is not None else np.zeros(len(y_true))
        stats = _stats.row_stats(y_pos, pred_pos, y_true == y_pred, score, n_bins=n_bins)
        sums[c] = _stats.group_sums(stats, grouping.codes, G)
        auc[c] = np.full(G, np.nan) if scores is None else np.array(
            [_stats.roc_auc(y_pos[grouping.codes == g], score[grouping.codes == g]) for g in range(G)])
        boot[c] = _stats.bootstrap_sums(stats, grouping.codes, G, n_bootstrap=n_bootstrap, rng=rng) \
            if n_bootstrap else None
    return from_sums(name=grouping.name, rule=grouping.rule, labels=grouping.labels, empty=grouping.empty,
                     sums=sums, roc_auc=auc, boot=boot, scores=scores is not None, analysed=analysed,
                     favorable=favorable, class_names=class_names, n_bins=n_bins, confidence=confidence,
                     min_group_size=min_group_size, min_count=min_count)


def from_sums(*, name: str, rule: str, labels: tuple[str, ...], empty: tuple[str, ...],
              sums: dict[int, np.ndarray], roc_auc: dict[int, np.ndarray], boot: dict[int, np.ndarray | None],
              scores: bool, analysed: list[int], favorable: int, class_names: tuple[str, ...], n_bins: int,
              confidence: float, min_group_size: int, min_count: int) -> AttributeResult:
    """One attribute's tables and disparities from per-class group sums of `_stats.row_stats`
    (`sums[c]` (G, S)), per-group ROC-AUC, and bootstrap replicate sums (`boot[c]` (B, G, S) or
    None): `assess` adds the sums over rows in memory, a streamed audit over chunks, and both
    apply these rules. `scores` says whether class probabilities were given (calibration)."""
    G = len(labels)
    tables, disparities = [], []
    for c in dict.fromkeys([*analysed, favorable]):
        point = _stats.rates(sums[c], n_bins)
        if not scores:
            point["calibration_error"] = np.full(G, np.nan)
        point["roc_auc"] = np.asarray(roc_auc[c], np.float64)
        reps = None
        if boot[c] is not None:
            reps = _stats.rates(boot[c], n_bins)
            if not scores:
                reps["calibration_error"] = np.full(boot[c].shape[:2], np.nan)
        group = sums[c]
        counts = {"size": group[:, _stats.ONE], "positives": group[:, _stats.POS],
                  "negatives": group[:, _stats.ONE] - group[:, _stats.POS], "predicted": group[:, _stats.SEL]}
        values = {m: np.asarray(point[m], np.float64) for m in _stats.GROUP_METRICS}
        names = [n for n in _disparity.DISPARITIES if n != "disparate_impact"] if c in analysed else []
        names += ["disparate_impact"] if c == favorable else []
        if c in analysed:
            exact = {m: _stats.exact_interval(k, n, confidence=confidence)
                     for m, (k, n) in _stats.fractions(group).items()}
            small = {m: ~_disparity.judged(counts, m, min_group_size=min_group_size, min_count=min_count)
                     for m in _disparity.DENOMINATOR}
            tables.append(GroupTable(attribute=name, class_name=class_names[c], groups=labels, values=values,
                                     ci_low={m: lo for m, (lo, _) in exact.items()},
                                     ci_high={m: hi for m, (_, hi) in exact.items()}, too_small=small))
        for dname in names:
            if dname == "calibration_gap" and not scores:
                continue
            disparities.append(_disparity.compute(
                dname, attribute=name, class_name=class_names[c], labels=labels,
                point=point, reps=reps, counts=counts, confidence=confidence,
                min_group_size=min_group_size, min_count=min_count))
    sizes = np.rint(next(iter(sums.values()))[:, _stats.ONE]).astype(np.int64)
    return AttributeResult(name=name, rule=rule, groups=labels, sizes=sizes, tables=tuple(tables),
                           disparities=tuple(disparities), empty_groups=empty)
