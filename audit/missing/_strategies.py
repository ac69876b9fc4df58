"""`compare_strategies(model, data)`: which imputation strategy is safest end to end.

For each strategy the model is retrained (same architecture, settings and seed, through
`audit.models.retrainer`) on the data whose missing values that strategy filled (fitted on the
training rows only); each retrained model is then evaluated on the split with a share `rate` of
its numeric values blanked completely at random (the same blanks as `evaluate`'s MCAR curve) and
filled by each strategy in turn. Every (train, evaluate) pair gets its accuracy and its worst
judged group's accuracy (Wilson intervals); the pair with the best worst group is named.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping, Sequence

import numpy as np

from audit.data import attribute_groups
from audit.errors import AuditInputError
from audit.missing._evaluate import CHUNK, _rate, strategy_encodings
from audit.missing._report import GroupRate, StrategyCell, StrategyComparison
from audit.results import Finding, Provenance, timer

FILLS = ("mean", "median", "most_frequent", "knn", "iterative")


def _encode_all(encoding, data, mask, rows) -> tuple[np.ndarray, np.ndarray]:
    """(model inputs float32, imputed raw) of `rows`, filled by `encoding`'s imputer, chunk by chunk."""
    xs, raws = [], []
    for start in range(0, len(rows), CHUNK):
        r = rows[start:start + CHUNK]
        raw = np.where(mask[r], np.nan, data.raw[r])
        xs.append(encoding.encode(raw))
        raws.append(encoding.impute(raw))
    return np.concatenate(xs), np.concatenate(raws)


def _injected(data, mask, rows, rate, seed) -> np.ndarray:
    """The split's raw rows with `rate` of the numeric values blanked: evaluate's MCAR blanks."""
    numeric = np.array([c.kind == "numeric" for c in data.encoding.columns])
    out = []
    for c, start in enumerate(range(0, len(rows), CHUNK)):
        r = rows[start:start + CHUNK]
        raw = np.where(mask[r], np.nan, data.raw[r])
        u = np.random.default_rng((seed, c)).random((len(r), int(numeric.sum())))
        raw[:, numeric] = np.where(u < rate, np.nan, raw[:, numeric])
        out.append(raw)
    return np.concatenate(out)


def _worst_group(correct, groupings, *, confidence, min_group_size) -> GroupRate:
    judged = [_rate(f"{a}={label}", correct[g.codes == k], confidence=confidence, min_size=min_group_size)
              for a, g in groupings.items() for k, label in enumerate(g.labels)]
    judged = [r for r in judged if not r.too_small]
    return min(judged, key=lambda r: r.rate) if judged else _rate("all", correct, confidence=confidence, min_size=0)


def compare_strategies(model, data, *, strategies: Sequence[str] = ("mean", "median", "iterative"),
                       rate: float = 0.2, split: str = "test", attributes: Sequence[str] | None = None,
                       architecture: Any = None, train_options: Mapping[str, Any] | None = None,
                       confidence: float = 0.95, min_group_size: int = 30, seed: int = 0) -> StrategyComparison:
    """Retrain with each imputation strategy in `strategies`, evaluate each model with each strategy
    on the `split` rows with `rate` of the numeric values blanked at random, and name the (train,
    evaluate) pair whose worst judged group (`attributes`, default all; groups under
    `min_group_size` rows are not judged) has the highest accuracy. `architecture` /
    `train_options` override the retrained model as in `audit.models.retrainer`.
    """
    from audit.models import retrainer

    if data.kind != "tabular" or data.encoding is None:
        raise AuditInputError(f"{data.name}: comparing imputation strategies needs tabular data with an encoding.")
    strategies = list(dict.fromkeys(strategies))
    if len(strategies) < 2 or any(s not in FILLS for s in strategies):
        raise AuditInputError(f"missing strategies {strategies}: give two or more of {list(FILLS)}.")
    if not 0 <= float(rate) < 1:
        raise AuditInputError(f"rate {rate!r} must be a share in [0, 1).")
    if split not in data.splits or len(data.splits[split]) == 0:
        raise AuditInputError(f"{data.name}: split {split!r} is missing or empty; have {sorted(data.splits)}.")
    attributes = sorted(data.sensitive) if attributes is None else list(attributes)
    settings = dict(strategies=strategies, rate=float(rate), split=split, attributes=attributes,
                    confidence=confidence, min_group_size=min_group_size)
    with timer() as t:
        fit, options = retrainer(model, architecture=architecture, train_options=train_options, seed=seed)
        settings["train_options"] = options
        n_raw = len(data.raw_feature_names)
        mask = data.missing_mask if data.missing_mask is not None else np.zeros((len(data), n_raw), bool)
        rows = np.asarray(data.splits[split])
        groupings = {a: attribute_groups(data, a, rows) for a in attributes}
        encodings = {s: strategy_encodings(data, s, seed=seed)[0] for s in strategies}
        test = _injected(data, mask, rows, float(rate), seed)
        inputs = {s: np.concatenate([enc.encode(test[i:i + CHUNK]) for i in range(0, len(test), CHUNK)])
                  for s, enc in encodings.items()}
        everything = np.arange(len(data))
        cells = []
        for train in strategies:
            X, raw = _encode_all(encodings[train], data, mask, everything)
            retrained = fit(dataclasses.replace(data, X=X, raw=raw, encoding=encodings[train]))
            for evaluate in strategies:
                correct = retrained.predict(inputs[evaluate]) == data.y[rows]
                cells.append(StrategyCell(
                    train=train, evaluate=evaluate,
                    accuracy=_rate("all", correct, confidence=confidence, min_size=0),
                    worst_group=_worst_group(correct, groupings, confidence=confidence, min_group_size=min_group_size)))
        best = max(cells, key=lambda c: c.worst_group.rate)
        worst = min(cells, key=lambda c: c.worst_group.rate)
        findings = (Finding(
            id="missing.strategies", status="pass", title="Safest imputation strategy (retrained)",
            message=(f"With {rate:.0%} of the values missing at random, training with {best.train} and imputing with "
                     f"{best.evaluate} keeps the worst judged group ({best.worst_group.label}) at "
                     f"{best.worst_group.rate:.1%} accuracy [{best.worst_group.ci_low:.1%}, {best.worst_group.ci_high:.1%}]; "
                     f"the least safe pair ({worst.train} / {worst.evaluate}) leaves {worst.worst_group.label} at "
                     f"{worst.worst_group.rate:.1%}."),
            metric="best_worst_group_accuracy", value=float(best.worst_group.rate)),)
    return StrategyComparison(split=split, rate=float(rate), strategies=tuple(strategies), cells=tuple(cells),
                              best_train=best.train, best_evaluate=best.evaluate, findings=findings,
                              provenance=Provenance(method="missing_strategies", settings=settings, seed=seed,
                                                    seconds=t[0]))
