"""The fairness audit of a file larger than memory, accumulated chunk by chunk.

Every group metric is a ratio of per-group sums of per-row statistics (`_stats.row_stats`), and
the Clopper-Pearson intervals come from the counts: each chunk adds its group sums and
`_assess.from_sums` (the code `assess` uses) builds the tables and disparities, so they equal the
in-memory ones. Groups are named from the whole file (audit.data.TabularStream.groups), and an
intersection's cells are summed over every chunk before empty ones are dropped.

The disparities' intervals need resampling, which a stream cannot do by row index: they use the
Poisson bootstrap (each row enters replicate b with a seeded Poisson(1) weight; Chamandy et al.
2012, "Estimating uncertainty for massive data streams"), drawn in file order so they do not
depend on `chunk_rows`. In memory, `evaluate` resamples within groups (stratified); the two agree
in distribution for large groups, not draw for draw. Per-group ROC-AUC (rank-based) and proxies
(a probe refitted on rows) use the stream's seeded sample.
"""

from __future__ import annotations

import itertools
from typing import Any, Mapping, Sequence

import numpy as np

from audit.data._checks import check_predictions
from audit.data._stream import STREAM_SPLIT, unsupported
from audit.errors import AuditInputError
from audit.fairness import _findings, _stats
from audit.fairness._assess import _class_index, from_sums
from audit.fairness._proxy import proxies as proxy_analysis
from audit.fairness._report import FairnessReport
from audit.data._groups import Grouping
from audit.results import Provenance, timer

_NOT_STREAMED = ("split",)
MAX_WEIGHTS = 4_000_000  # Poisson weights drawn at once (rows x replicates): bounds the bootstrap's memory


class FairnessSink:
    """Adds one chunk's group sums (and Poisson-bootstrap sums) at a time, then builds the report."""

    def __init__(self, model, stream, *, attributes: Sequence[str | Sequence[str]] | None = None,
                 intersections: bool = True, n_bootstrap: int = 500, confidence: float = 0.95, seed: int = 0,
                 classes: Sequence[int | str] | None = None, favorable_class: int | str | None = None,
                 bins: Mapping[str, Sequence[float]] | None = None, n_bins: int = 4, calibration_bins: int = 10,
                 min_group_size: int = 30, min_count: int = 10, max_difference: float = 0.1,
                 proxies: bool = True, attribution: str = "permutation", **other: Any):
        unsupported(other, _NOT_STREAMED, "fairness")
        if other.keys() - set(_NOT_STREAMED):
            raise AuditInputError(f"fairness: unknown setting(s) {sorted(other.keys() - set(_NOT_STREAMED))}.")
        if attribution not in ("permutation", "shap"):
            raise AuditInputError(f"attribution {attribution!r} must be 'permutation' or 'shap'.")
        integer = lambda v: isinstance(v, (int, np.integer)) and not isinstance(v, bool)
        if not (isinstance(confidence, (int, float)) and 0 < confidence < 1 and integer(n_bootstrap)
                and n_bootstrap >= 0 and integer(calibration_bins) and calibration_bins >= 1):
            raise AuditInputError(f"confidence must be in (0, 1), n_bootstrap an integer >= 0 and calibration_bins "
                                  f"an integer >= 1; got {confidence!r}, {n_bootstrap!r}, {calibration_bins!r}.")
        self.model, self.stream, self.seed = model, stream, seed
        names = list(stream.sensitive)
        if attributes is None:
            if not names:
                raise AuditInputError(f"{stream.name} has no sensitive attributes; open it with sensitive=[...].")
            keys = [(n,) for n in sorted(names)] + (list(itertools.combinations(sorted(names), 2))
                                                     if intersections else [])
        else:
            keys = []
            for a in attributes:
                key = (a,) if isinstance(a, str) else tuple(a)
                if not 1 <= len(key) <= 2:
                    raise AuditInputError(f"attribute {a!r}: give a name or a pair of names to intersect.")
                keys.append(key)
        self.keys = keys
        self.bins = dict(bins or {})
        self.groups = {n: stream.groups(n, edges=self.bins.get(n), n_bins=n_bins) for n in {n for k in keys for n in k}}
        K = model.n_classes
        self.class_names = tuple(str(c) for c in model.class_names)
        self.analysed = ([1] if K == 2 else list(range(K))) if classes is None else \
            [_class_index(c, self.class_names) for c in classes]
        self.favorable = self.analysed[0] if favorable_class is None else _class_index(favorable_class, self.class_names)
        self.todo = list(dict.fromkeys([*self.analysed, self.favorable]))
        S = _stats.N_FIXED + 3 * calibration_bins
        self.size = {k: int(np.prod([len(self.groups[n].labels) for n in k])) for k in keys}
        self.sums = {k: {c: np.zeros((self.size[k], S)) for c in self.todo} for k in keys}
        self.boot = {k: {c: np.zeros((n_bootstrap, self.size[k], S)) if n_bootstrap else None for c in self.todo}
                     for k in keys}
        self.rng = np.random.default_rng(seed)
        self.settings = {"attributes": ["&".join(k) for k in keys], "n_bootstrap": n_bootstrap,
                         "confidence": confidence, "classes": None if classes is None else [str(c) for c in classes],
                         "favorable_class": None if favorable_class is None else str(favorable_class),
                         "bins": {k: [float(e) for e in v] for k, v in self.bins.items()}, "n_bins": n_bins,
                         "calibration_bins": calibration_bins, "min_group_size": min_group_size,
                         "min_count": min_count, "max_difference": max_difference, "proxies": proxies,
                         "attribution": attribution, "binning": {n: g.rule for n, g in self.groups.items()}}
        self.rows = 0
        self.seconds = 0.0

    def _codes(self, key: tuple[str, ...], sensitive: Mapping[str, np.ndarray]) -> np.ndarray:
        codes = np.zeros(len(next(iter(sensitive.values()))), np.int64)
        for n in key:
            codes = codes * len(self.groups[n].labels) + self.groups[n].codes(sensitive[n])
        return codes

    def update(self, chunk, proba: np.ndarray) -> None:
        with timer() as t:
            s = self.settings
            y, pred, proba = check_predictions(chunk.y, proba.argmax(-1), proba, self.model.n_classes,
                                               f"{self.stream.name} rows {chunk.start}..{chunk.start + len(chunk.y) - 1}")
            stats = {c: _stats.row_stats(y == c, pred == c, y == pred, proba[:, c], n_bins=s["calibration_bins"])
                     for c in self.todo}
            codes = {k: self._codes(k, chunk.sensitive) for k in self.keys}
            for k in self.keys:
                for c in self.todo:
                    self.sums[k][c] += _stats.group_sums(stats[c], codes[k], self.size[k])
            B = s["n_bootstrap"]
            if B:
                step = max(1, MAX_WEIGHTS // B)
                for start in range(0, len(y), step):  # Poisson(1) weights, rows x replicates, in file order
                    w = self.rng.poisson(1.0, size=(min(step, len(y) - start), B)).astype(np.float64)
                    part = slice(start, start + len(w))
                    for k in self.keys:
                        for c in self.todo:
                            self.boot[k][c] += _stats.weighted_group_sums(stats[c][part], codes[k][part],
                                                                          self.size[k], w)
            self.rows += len(y)
        self.seconds += t[0]

    def result(self, sample_proba: np.ndarray) -> FairnessReport:
        """The report; `sample_proba` are the model's probabilities on the stream's sample rows."""
        with timer() as t:
            s = self.settings
            sample = self.stream.sample
            y_s, _, p_s = check_predictions(sample.y, sample_proba.argmax(-1), sample_proba, self.model.n_classes,
                                            f"{sample.name} (sample)")
            results = []
            for k in self.keys:
                present = np.flatnonzero(self.sums[k][self.todo[0]][:, _stats.ONE] > 0)
                labels = self._labels(k)
                if len(present) < 2:
                    raise AuditInputError(f"sensitive attribute {'&'.join(k)!r} has a single group "
                                          f"{[labels[g] for g in present]} in the file; fairness needs two or more.")
                codes_s = self._codes(k, sample.sensitive)
                auc = {c: np.array([_stats.roc_auc(y_s[codes_s == g] == c, p_s[codes_s == g, c]) for g in present])
                       for c in self.todo}
                results.append(from_sums(
                    name="&".join(k), rule=self.groups[k[0]].rule if len(k) == 1 else f"intersection of {k[0]} and {k[1]}",
                    labels=tuple(labels[g] for g in present),
                    empty=tuple(labels[g] for g in range(self.size[k]) if g not in set(present.tolist())) if len(k) == 2 else (),
                    sums={c: v[present] for c, v in self.sums[k].items()}, roc_auc=auc,
                    boot={c: None if v is None else v[:, present] for c, v in self.boot[k].items()}, scores=True,
                    analysed=self.analysed, favorable=self.favorable, class_names=self.class_names,
                    n_bins=s["calibration_bins"], confidence=s["confidence"], min_group_size=s["min_group_size"],
                    min_count=s["min_count"]))
            proxy_results = []
            if s["proxies"] and sample.encoding is not None and sample.raw is not None:
                fit_rows, rows = sample.splits["train"], sample.splits["test"]
                for k in self.keys:
                    if len(k) == 1:
                        proxy_results.append(proxy_analysis(
                            self.model, sample, fit_rows, rows, self._grouping(k[0], fit_rows),
                            self._grouping(k[0], rows), seed=self.seed, attribution=s["attribution"]))
            findings = _findings.fairness_findings(results, proxy_results, max_difference=s["max_difference"])
        settings = {**s, "stream": {**self.stream.summary(),
                                    "counted_on": "every row (group counts, rates, exact intervals, disparities)",
                                    "bootstrap": "Poisson bootstrap over every row, in file order",
                                    "sampled": "per-group ROC-AUC and proxies on the seeded sample rows"}}
        analysed = tuple(t.class_name for t in results[0].tables)
        favorable = next(d.class_name for d in results[0].disparities if d.name == "disparate_impact")
        return FairnessReport(attributes=tuple(results), proxies=tuple(proxy_results), class_names=self.class_names,
                              classes=analysed, favorable_class=favorable, split=STREAM_SPLIT, n_rows=self.rows,
                              findings=findings,
                              provenance=Provenance(method="fairness.evaluate_stream", settings=settings, seed=self.seed,
                                                    seconds=self.seconds + t[0]))

    def _labels(self, key: tuple[str, ...]) -> list[str]:
        parts = [self.groups[n].labels for n in key]
        return list(parts[0]) if len(key) == 1 else [f"{a}&{b}" for a in parts[0] for b in parts[1]]

    def _grouping(self, name: str, rows: np.ndarray) -> Grouping:
        """The attribute's groups on some sample rows (groups without rows there dropped)."""
        g = self.groups[name]
        codes = g.codes(self.stream.sample.sensitive[name][rows])
        present, new = np.unique(codes, return_inverse=True)
        return Grouping(name=name, labels=tuple(g.labels[i] for i in present), codes=new.astype(np.int64), rule=g.rule)


def evaluate_stream(model, stream, *, seed: int = 0, **settings: Any) -> FairnessReport:
    """`fairness.evaluate` over every row of a `TabularStream` (audit.data.open_stream), one chunk in
    memory at a time: group counts, rates, Clopper-Pearson intervals and disparities from counts
    over all rows (equal to the in-memory numbers); disparity intervals by a Poisson bootstrap over
    all rows; per-group ROC-AUC and proxies on the stream's seeded sample. Same settings as
    `evaluate` but `split`."""
    sink = FairnessSink(model, stream, seed=seed, **settings)
    stream.score(model, [sink])
    return sink.result(stream.sample_proba(model))
