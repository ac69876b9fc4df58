"""A global surrogate: a shallow decision tree fit to the model's predictions, read as rules.

The tree (scikit-learn's CART) learns the model's predicted class from the training rows, on
raw columns (numeric columns in their own units, categorical columns as "column = value"
tests), so each leaf reads as one rule. Its fidelity (agreement with the model on held-out
rows; Craven & Shavlik 1996, "Extracting tree-structured representations of trained
networks") says how far the rules can be trusted as a description of the model, overall and
per group of every sensitive attribute: rules that describe one group poorly mislead about
how the model treats that group.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from audit.errors import AuditInputError
from audit.results import Finding, MetricSpec, Provenance, Result, timer

LOW_FIDELITY = 0.8  # held-out agreement below which the rules are a poor description of the model
GROUP_GAP = 0.1  # a judged group's fidelity this far below the overall one gets a warning


@dataclasses.dataclass(frozen=True, eq=False)
class Rule(Result):
    """One leaf: all `conditions` hold -> the tree predicts `prediction`; `support` training rows
    reach it, on `confidence` of which the model predicts that class."""

    conditions: tuple[str, ...]
    prediction: str
    class_index: int
    support: int
    confidence: float

    @property
    def text(self) -> str:
        when = " and ".join(self.conditions) if self.conditions else "always"
        return f"if {when} then {self.prediction}"


@dataclasses.dataclass(frozen=True, eq=False)
class GroupFidelity(Result):
    """Fidelity of the rules on the held-out rows of one group; `judged` is False when the group
    has fewer than the minimum rows (then it never carries a finding)."""

    attribute: str
    group: str
    size: int
    fidelity: float
    judged: bool


@dataclasses.dataclass(frozen=True, eq=False)
class SurrogateResult(Result):
    """Rules of a depth-`max_depth` tree fit to the model's predictions, with their fidelity."""

    SCHEMA = "audit.explain.surrogate/1"
    METRICS = (
        MetricSpec("surrogate_fidelity", "higher", "Surrogate rules fidelity",
                   "Share of held-out rows on which the rules predict the model's class."),
        MetricSpec("surrogate_fidelity:<attribute>=<group>", "higher", "Surrogate fidelity, <attribute> = <group>",
                   "Share of the group's held-out rows on which the rules predict the model's class."),
        MetricSpec("surrogate_fidelity_gap", "lower", "Worst group's fidelity shortfall",
                   "Overall fidelity minus the lowest fidelity of a group large enough to judge (0 if none)."),
    )

    rules: tuple[Rule, ...]
    feature_names: tuple[str, ...]
    class_names: tuple[str, ...]
    fidelity: float
    train_fidelity: float
    n_held_out: int
    groups: tuple[GroupFidelity, ...]
    provenance: Provenance

    def text(self) -> str:
        """The rules, one per line, most supported first."""
        return "\n".join(r.text for r in sorted(self.rules, key=lambda r: -r.support))

    def _judged(self) -> list[GroupFidelity]:
        return [g for g in self.groups if g.judged]

    def metrics(self) -> dict[str, float]:
        out = {"surrogate_fidelity": self.fidelity}
        for g in self.groups:
            out[f"surrogate_fidelity:{g.attribute}={g.group}"] = g.fidelity
        judged = self._judged()
        out["surrogate_fidelity_gap"] = max(0.0, self.fidelity - min(g.fidelity for g in judged)) if judged else 0.0
        return out

    @property
    def findings(self) -> tuple[Finding, ...]:
        ok = self.fidelity >= LOW_FIDELITY
        found = [Finding(
            id="explain.surrogate", status="pass" if ok else "warn", title="Surrogate rules",
            message=(f"{len(self.rules)} rules of a depth-{self.provenance.settings.get('max_depth')} tree "
                     f"agree with the model on {self.fidelity:.1%} of {self.n_held_out} held-out rows"
                     + ("" if ok else f" (< {LOW_FIDELITY:.0%}): they describe the model poorly; read "
                        "them as a rough sketch or allow a deeper tree")),
            metric="surrogate_fidelity", value=self.fidelity, threshold=LOW_FIDELITY)]
        for g in self._judged():
            if self.fidelity - g.fidelity > GROUP_GAP:
                found.append(Finding(
                    id=f"explain.surrogate.{g.attribute}.{g.group}", status="warn",
                    title=f"Rules describe {g.attribute} = {g.group} poorly",
                    message=(f"the rules agree with the model on {g.fidelity:.1%} of the {g.size} held-out "
                             f"rows with {g.attribute} = {g.group}, against {self.fidelity:.1%} overall: "
                             "the model decides differently for this group than the rules say"),
                    metric=f"surrogate_fidelity:{g.attribute}={g.group}", value=g.fidelity,
                    threshold=self.fidelity - GROUP_GAP))
        return tuple(found)


def _features(data, X: np.ndarray) -> tuple[np.ndarray, list[tuple[str, str, Any]]]:
    """Inputs -> surrogate features in raw units, with (kind, column, category) per feature:
    numeric inputs de-standardised, one-hot inputs kept as 0/1 indicators."""
    flat = X.reshape(len(X), -1).astype(np.float64)
    if data.encoding is None:
        return flat, [("numeric", n, None) for n in data.feature_names]
    out, meta = np.empty_like(flat), []
    for col, group in zip(data.encoding.columns, data.encoding.groups):
        for k, idx in enumerate(group):
            if col.kind == "categorical":
                out[:, idx] = flat[:, idx]
                meta.append(("categorical", col.name, col.categories[k]))
            elif k > 0:  # a numeric column's 0/1 missingness mask input
                out[:, idx] = flat[:, idx]
                meta.append(("categorical", col.name, "missing"))
            else:
                out[:, idx] = flat[:, idx] * col.std + col.mean
                meta.append(("numeric", col.name, None))
    return out, meta


def _fmt(v: float) -> str:
    return f"{v:.4g}"


def _conditions(path: list[tuple[int, bool, float]], meta) -> tuple[str, ...]:
    """(feature, went_right, threshold) steps -> readable conditions, one per column: numeric
    bounds merged ("30 < age <= 45"), categorical tests as "= value" or "not in {...}"."""
    low: dict[str, float] = {}
    high: dict[str, float] = {}
    equal: dict[str, str] = {}
    excluded: dict[str, list[str]] = {}
    order: list[str] = []
    for f, right, thr in path:
        kind, col, cat = meta[f]
        if col not in order:
            order.append(col)
        if kind == "categorical":
            if right:
                equal[col] = str(cat)
            else:
                excluded.setdefault(col, []).append(str(cat))
        elif right:
            low[col] = max(low.get(col, -np.inf), thr)
        else:
            high[col] = min(high.get(col, np.inf), thr)
    out = []
    for col in order:
        if col in equal:
            out.append(f"{col} = {equal[col]}")
        elif col in excluded:
            cats = excluded[col]
            out.append(f"{col} != {cats[0]}" if len(cats) == 1 else f"{col} not in {{{', '.join(cats)}}}")
        else:
            lo, hi = low.get(col), high.get(col)
            if lo is not None and hi is not None:
                out.append(f"{_fmt(lo)} < {col} <= {_fmt(hi)}")
            elif lo is not None:
                out.append(f"{col} > {_fmt(lo)}")
            else:
                out.append(f"{col} <= {_fmt(hi)}")
    return tuple(out)


def _rules(tree, meta, class_names, classes) -> tuple[Rule, ...]:
    t = tree.tree_
    out: list[Rule] = []
    stack: list[tuple[int, list]] = [(0, [])]
    while stack:
        node, path = stack.pop()
        if t.children_left[node] == -1:
            counts = t.value[node][0]
            k = int(np.argmax(counts))
            share = float(counts[k] / counts.sum())
            cls = int(classes[k])
            out.append(Rule(conditions=_conditions(path, meta), prediction=class_names[cls], class_index=cls,
                            support=int(t.n_node_samples[node]), confidence=share))
            continue
        f, thr = int(t.feature[node]), float(t.threshold[node])
        stack.append((int(t.children_right[node]), path + [(f, True, thr)]))
        stack.append((int(t.children_left[node]), path + [(f, False, thr)]))
    return tuple(out)


def surrogate_tree(model, data, *, max_depth: int = 3, min_samples_leaf: int = 20, min_group_size: int = 30,
                   seed: int = 0) -> SurrogateResult:
    """Fit a depth-`max_depth` decision tree to the model's predicted classes on the training rows
    of tabular `data` and return its leaves as rules on raw columns, with the fidelity (agreement
    with the model) on the test rows overall and per group of every sensitive attribute. Groups
    with fewer than `min_group_size` test rows are reported but never judged."""
    from sklearn.tree import DecisionTreeClassifier

    from audit.data import attribute_groups  # the data layer's grouping, as every section uses

    if data.kind != "tabular":
        raise AuditInputError(f"surrogate rules need tabular data; {data.name!r} is {data.kind!r}. "
                              "For images use saliency, Grad-CAM or SHAP over patches.")
    if tuple(data.input_shape) != tuple(model.input_shape):
        raise AuditInputError(f"the data has inputs {data.input_shape} but the model takes {model.input_shape}.")
    for name, value, low in (("max_depth", max_depth, 1), ("min_samples_leaf", min_samples_leaf, 1),
                             ("min_group_size", min_group_size, 1)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
            raise AuditInputError(f"{name}={value!r} must be an integer >= {low}.")
    train, test = data.splits.get("train"), data.splits.get("test")
    if train is None or test is None or not len(train) or not len(test):
        raise AuditInputError(f"{data.name!r} needs train and test splits: the tree is fit on the "
                              "training rows and its fidelity measured on the test rows; give the Dataset "
                              "splits= (e.g. audit.data.stratified_split(y)).")
    with timer() as clock:
        features, meta = _features(data, data.X)
        pred = model.predict(data.X).astype(np.int64)
        tree = DecisionTreeClassifier(max_depth=int(max_depth), min_samples_leaf=int(min_samples_leaf),
                                      random_state=seed).fit(features[train], pred[train])
        agree = tree.predict(features) == pred
        groups = []
        for attribute in data.sensitive:
            g = attribute_groups(data, attribute, test)
            codes = g.codes
            for k, label in enumerate(g.labels):
                rows = codes == k
                if rows.any():
                    groups.append(GroupFidelity(attribute=attribute, group=label, size=int(rows.sum()),
                                                fidelity=float(agree[test][rows].mean()),
                                                judged=bool(rows.sum() >= min_group_size)))
    names = tuple(c if k == "numeric" else f"{c}={v}" for k, c, v in meta)
    settings = {"max_depth": int(max_depth), "min_samples_leaf": int(min_samples_leaf),
                "min_group_size": int(min_group_size)}
    return SurrogateResult(rules=_rules(tree, meta, tuple(model.class_names), tree.classes_),
                           feature_names=names, class_names=tuple(model.class_names),
                           fidelity=float(agree[test].mean()), train_fidelity=float(agree[train].mean()),
                           n_held_out=int(len(test)), groups=tuple(groups),
                           provenance=Provenance("explain.surrogate_tree", settings, seed, clock[0]))
