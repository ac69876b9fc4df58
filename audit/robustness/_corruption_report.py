"""`corruptions(model, data)`: accuracy under common corruptions per severity, class and group,
with a mean-corruption-error summary (Hendrycks & Dietterich 2019) and findings that name the
corruption, class or group that suffers most and the rule it was judged by."""

from __future__ import annotations

import dataclasses
from typing import Sequence

import jax
import numpy as np

from audit.data import attribute_groups
from audit.errors import AuditInputError
from audit.results import Finding, MetricSpec, Provenance, Result, timer
from audit.robustness._corruptions import Corrupter, levels
from audit.robustness._domain import domain_for


@dataclasses.dataclass(frozen=True, eq=False)
class GroupCorruption(Result):
    """Accuracy of one sensitive group: clean, and per (corruption, severity)."""

    attribute: str
    group: str
    n: int
    clean_accuracy: float
    accuracy: np.ndarray

    @property
    def mean_drop(self) -> float:
        return float(self.clean_accuracy - np.mean(self.accuracy))


@dataclasses.dataclass(frozen=True, eq=False)
class CorruptionReport(Result):
    """Result of `audit.robustness.corruptions`.

    `accuracy[c, s]` is the accuracy on the sample with corruption `corruptions[c]` at
    `severities[s]` (parameter `levels[c, s]`); `class_accuracy[c, s, k]` the same on the rows of
    true class k (NaN where a class has no rows); `groups` per sensitive group. The summary
    follows ImageNet-C without a reference model: the mean corruption error is the error
    averaged over corruptions and severities, the relative one subtracts the clean error.
    """

    SCHEMA = "audit.robustness.corruptions/1"
    METRICS = (
        MetricSpec("clean_accuracy", "higher", "Clean accuracy", "Accuracy on the uncorrupted sample."),
        MetricSpec("corruption_accuracy:<corruption>@<severity>", "higher", "Accuracy under <corruption>, severity <severity>",
                   "Accuracy on the sample after the corruption at that severity (1 mild to 5 severe)."),
        MetricSpec("corruption_accuracy:class=<class>", "higher", "Corrupted accuracy of class <class>",
                   "Accuracy on the rows of that true class, averaged over every corruption and severity."),
        MetricSpec("corruption_accuracy:<corruption>", "higher", "Accuracy under <corruption>",
                   "Accuracy under the corruption, averaged over its severities."),
        MetricSpec("mean_corruption_error", "lower", "Mean corruption error",
                   "Error rate averaged over every corruption and severity (ImageNet-C's CE, unnormalised)."),
        MetricSpec("relative_corruption_error", "lower", "Relative mean corruption error",
                   "Mean corruption error minus the clean error: the accuracy lost to corruptions."),
        MetricSpec("corruption_drop_gap:<attribute>", "lower", "Corruption drop gap across <attribute>",
                   "Largest difference in mean accuracy drop between groups of the attribute with enough rows."),
    )

    kind: str
    corruptions: tuple[str, ...]
    severities: tuple[int, ...]
    levels: np.ndarray
    n: int
    clean_accuracy: float
    accuracy: np.ndarray
    class_names: tuple[str, ...]
    class_counts: np.ndarray
    class_clean_accuracy: np.ndarray
    class_accuracy: np.ndarray
    groups: tuple[GroupCorruption, ...]
    min_group_size: int
    findings: tuple[Finding, ...]
    provenance: Provenance

    @property
    def mean_corruption_error(self) -> float:
        return float(1.0 - np.mean(self.accuracy))

    @property
    def relative_corruption_error(self) -> float:
        return float(self.clean_accuracy - np.mean(self.accuracy))

    def group_gaps(self) -> dict[str, tuple[float, GroupCorruption, GroupCorruption]]:
        """Per attribute: (gap in mean drop, worst group, best group) over groups with enough rows."""
        out = {}
        for attr in dict.fromkeys(g.attribute for g in self.groups):
            big = [g for g in self.groups if g.attribute == attr and g.n >= self.min_group_size]
            if len(big) >= 2:
                worst = max(big, key=lambda g: g.mean_drop)
                best = min(big, key=lambda g: g.mean_drop)
                out[attr] = (worst.mean_drop - best.mean_drop, worst, best)
        return out

    def metrics(self) -> dict[str, float]:
        out = {"clean_accuracy": float(self.clean_accuracy)}
        for c, name in enumerate(self.corruptions):
            for s, sev in enumerate(self.severities):
                out[f"corruption_accuracy:{name}@{sev}"] = float(self.accuracy[c, s])
            out[f"corruption_accuracy:{name}"] = float(np.mean(self.accuracy[c]))
        for k, cname in enumerate(self.class_names):
            if self.class_counts[k] > 0:
                out[f"corruption_accuracy:class={cname}"] = float(np.mean(self.class_accuracy[:, :, k]))
        out["mean_corruption_error"] = self.mean_corruption_error
        out["relative_corruption_error"] = self.relative_corruption_error
        for attr, (gap, _, _) in self.group_gaps().items():
            out[f"corruption_drop_gap:{attr}"] = float(gap)
        return out


def _findings(rep: CorruptionReport, max_drop: float, max_gap: float) -> list[Finding]:
    out = []
    drops = rep.clean_accuracy - rep.accuracy.mean(axis=1)
    c = int(np.argmax(drops))
    worst_sev = int(np.argmin(rep.accuracy[c]))
    rule = f"warn when the mean drop over severities exceeds {max_drop:.0%}"
    out.append(Finding(
        "corruptions.worst", "warn" if drops[c] > max_drop else "pass", f"Most damaging corruption: {rep.corruptions[c]}",
        f"{rep.corruptions[c]} lowers accuracy by {drops[c]:.1%} on average over severities "
        f"{list(rep.severities)} (to {rep.accuracy[c, worst_sev]:.1%} at severity {rep.severities[worst_sev]}, "
        f"clean {rep.clean_accuracy:.1%}); {rule}.", metric=f"corruption_accuracy:{rep.corruptions[c]}",
        value=float(rep.accuracy[c].mean()), threshold=float(rep.clean_accuracy - max_drop)))
    big = [k for k in range(len(rep.class_names)) if rep.class_counts[k] >= rep.min_group_size]
    if big:
        cd = {k: rep.class_clean_accuracy[k] - np.mean(rep.class_accuracy[:, :, k]) for k in big}
        k = max(cd, key=cd.get)
        out.append(Finding(
            "corruptions.class", "warn" if cd[k] > max_drop else "pass",
            f"Class hit hardest by corruptions: {rep.class_names[k]}",
            f"class {rep.class_names[k]} ({int(rep.class_counts[k])} rows) loses {cd[k]:.1%} accuracy on average "
            f"over corruptions and severities (classes with at least {rep.min_group_size} rows judged); {rule}.",
            metric=f"corruption_accuracy:class={rep.class_names[k]}",
            value=float(np.mean(rep.class_accuracy[:, :, k])), threshold=float(rep.class_clean_accuracy[k] - max_drop)))
    for attr, (gap, worst, best) in rep.group_gaps().items():
        out.append(Finding(
            f"corruptions.group:{attr}", "warn" if gap > max_gap else "pass",
            f"Corruptions hurt {attr}={worst.group} most",
            f"{attr}={worst.group} ({worst.n} rows) loses {worst.mean_drop:.1%} accuracy to corruptions, "
            f"{attr}={best.group} ({best.n} rows) {best.mean_drop:.1%}: a gap of {gap:.1%} (groups with at least "
            f"{rep.min_group_size} rows; warn above {max_gap:.0%}).",
            metric=f"corruption_drop_gap:{attr}", value=float(gap), threshold=float(max_gap)))
    return out


def _batched_predict(model, corrupter: Corrupter, name: str, severity: int, x: np.ndarray, batch: int,
                     key) -> np.ndarray:
    """Predictions on the corrupted rows, corrupting fixed-size padded batches (one compile)."""
    out = np.empty(len(x), np.int64)
    for b, start in enumerate(range(0, len(x), batch)):
        xb = x[start:start + batch]
        m = len(xb)
        if m < batch:
            xb = np.concatenate([xb, np.repeat(xb[-1:], batch - m, axis=0)])
        xc = corrupter.apply(name, severity, xb, jax.random.fold_in(key, b))
        out[start:start + m] = model.predict(np.asarray(xc))[:m]
    return out


def corruptions(model, data, *, split: str = "test", n: int = 1000, corruptions: Sequence[str] | None = None,
                severities: Sequence[int] = (1, 2, 3, 4, 5), batch_size: int | None = None,
                min_group_size: int = 30, max_drop: float = 0.1, max_gap: float = 0.05,
                seed: int = 0) -> CorruptionReport:
    """Accuracy of `model` under common corruptions on a seeded sample of at most `n` rows.

    Images: Gaussian, shot and impulse noise, blur, contrast, brightness, rotation, translation;
    tabular: noise on numeric inputs scaled to their training spread, and categorical levels
    swapped (sensitive columns left alone). `corruptions` picks a subset; `severities` from 1 to
    5. Findings: the corruption and the class (with at least `min_group_size` rows) that lose
    the most accuracy (warn above `max_drop`), and per sensitive attribute the gap in accuracy
    lost between groups with enough rows (warn above `max_gap`).
    """
    model.check_data(data)
    if int(n) != n or n < 1:
        raise AuditInputError(f"corruptions: n must be a positive integer, got {n}.")
    sev = tuple(int(s) for s in severities)
    if not sev or any(s != v or not 1 <= s <= 5 for s, v in zip(sev, severities)) or len(set(sev)) != len(sev):
        raise AuditInputError(f"corruptions: severities must be distinct integers from 1 to 5, got {list(severities)}.")
    if int(min_group_size) != min_group_size or min_group_size < 1:
        raise AuditInputError(f"corruptions: min_group_size must be a positive integer, got {min_group_size}.")
    if not (0 <= max_drop <= 1 and 0 <= max_gap <= 1):
        raise AuditInputError("corruptions: max_drop and max_gap must lie in [0, 1].")
    train = data.part("train") if len(data.splits.get("train", ())) else data
    dom = domain_for(data) if data.kind == "image" else None
    corrupter = Corrupter(data, train_X=train.X, skip_columns=tuple(data.sensitive),
                          domain_lower=None if dom is None else float(np.min(dom.lower)),
                          domain_upper=None if dom is None else float(np.max(dom.upper)))
    available = corrupter.names
    names = tuple(available if corruptions is None else corruptions)
    bad = [c for c in names if c not in available]
    if bad or not names:
        raise AuditInputError(f"corruptions {bad or list(names)} do not apply to this {data.kind} data; "
                              f"choose from {list(available)}.")
    part = data.part(split)
    with timer() as clock:
        rows = np.sort(np.random.default_rng(seed).choice(len(part), size=min(int(n), len(part)), replace=False))
        x, y = part.X[rows], part.y[rows]
        batch = min(int(batch_size or (256 if data.kind == "image" else 1024)), len(x))
        key = jax.random.key(seed)
        clean = model.predict(x) == y
        correct = np.empty((len(names), len(sev), len(x)), bool)
        for c, name in enumerate(names):
            for s, severity in enumerate(sev):
                k = jax.random.fold_in(jax.random.fold_in(key, c), severity)
                correct[c, s] = _batched_predict(model, corrupter, name, severity, x, batch, k) == y
        k_classes = len(data.class_names)
        counts = np.bincount(y, minlength=k_classes)
        class_acc = np.full((len(names), len(sev), k_classes), np.nan)
        class_clean = np.full(k_classes, np.nan)
        for k in np.flatnonzero(counts):
            class_acc[:, :, k] = correct[:, :, y == k].mean(axis=2)
            class_clean[k] = clean[y == k].mean()
        groups = []
        full_rows = np.asarray(data.splits[split])[rows] if split in data.splits else rows
        for attr in sorted(data.sensitive):
            grouping = attribute_groups(data, attr)  # the data layer's grouping, as in every section
            codes = grouping.codes[full_rows]
            for g, label in enumerate(grouping.labels):
                r = codes == g
                if r.any():
                    groups.append(GroupCorruption(attribute=attr, group=label, n=int(r.sum()),
                                                  clean_accuracy=float(clean[r].mean()),
                                                  accuracy=correct[:, :, r].mean(axis=2)))
    table = levels(data.kind)
    rep = CorruptionReport(
        kind=data.kind, corruptions=names, severities=sev,
        levels=np.array([[table[c][s - 1] for s in sev] for c in names]), n=len(x),
        clean_accuracy=float(clean.mean()), accuracy=correct.mean(axis=2), class_names=tuple(data.class_names),
        class_counts=counts.astype(np.int64), class_clean_accuracy=class_clean, class_accuracy=class_acc,
        groups=tuple(groups), min_group_size=int(min_group_size), findings=(),
        provenance=Provenance(method="robustness.corruptions",
                              settings={"split": split, "n": len(x), "corruptions": list(names), "severities": list(sev),
                                        "batch_size": batch, "min_group_size": int(min_group_size),
                                        "max_drop": float(max_drop), "max_gap": float(max_gap),
                                        "model": model.fingerprint()[:16], "data": data.fingerprint()[:16]},
                              seed=int(seed), seconds=float(clock[0])))
    return dataclasses.replace(rep, findings=tuple(_findings(rep, max_drop, max_gap)))
