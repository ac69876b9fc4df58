"""A small real analyzer (accuracy per class) in a registry of its own for pipeline tests, so the
pipeline is tested on its own (the global ANALYZERS is never changed); the real analyzers have
their own tests and end-to-end runs."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from audit.pipeline import ANALYZERS, AnalyzerSpec
from audit.results import Finding, MetricSpec, Provenance, to_jsonable


@dataclasses.dataclass(frozen=True)
class AccuracyResult:
    SCHEMA = 1
    METRICS = (MetricSpec("accuracy", "higher", "Accuracy", "Share of test rows classified correctly."),
               MetricSpec("recall:<class>", "higher", "Recall of <class>", "Share of class <class> found."))
    accuracy: float
    per_class: np.ndarray
    scores: np.ndarray
    provenance: Provenance
    findings: tuple = ()

    def metrics(self):
        return {"accuracy": self.accuracy, **{f"recall:{i}": float(v) for i, v in enumerate(self.per_class)}}

    def to_dict(self):
        return {"schema": self.SCHEMA, "accuracy": self.accuracy, "per_class": to_jsonable(self.per_class),
                "scores": to_jsonable(self.scores), "provenance": self.provenance.to_dict(),
                "findings": [f.to_dict() for f in self.findings]}

    @classmethod
    def from_dict(cls, d):
        return cls(accuracy=d["accuracy"], per_class=np.asarray(d["per_class"]), scores=np.asarray(d["scores"]),
                   provenance=Provenance.from_dict(d["provenance"]),
                   findings=tuple(Finding.from_dict(f) for f in d["findings"]))


def accuracy_analyzer(model, data, *, split: str = "test", warn_below: float = 0.5, sample: int = 0,
                      seed: int = 0) -> AccuracyResult:
    part = data.part(split)
    rows = np.arange(len(part))
    if sample:
        rows = np.random.default_rng(seed).choice(rows, size=min(sample, len(rows)), replace=False)
    pred = model.predict(part.X[rows])
    y = part.y[rows]
    per_class = np.array([(pred[y == c] == c).mean() if (y == c).any() else np.nan for c in range(data.n_classes)])
    accuracy = float((pred == y).mean())
    status = "warn" if accuracy < warn_below else "pass"
    finding = Finding(id="accuracy", status=status, title=f"accuracy {accuracy:.3f}",
                      message="Share of test examples classified correctly.", metric="accuracy", value=accuracy)
    return AccuracyResult(accuracy=accuracy, per_class=per_class,
                          scores=model.predict_proba(part.X[rows]), provenance=Provenance("accuracy", {"split": split}, seed),
                          findings=(finding,))


ACCURACY = AnalyzerSpec("accuracy", "Accuracy <by class>", accuracy_analyzer, AccuracyResult, stochastic=True)


@pytest.fixture(scope="session")
def accuracy_spec():
    return ACCURACY


@pytest.fixture(scope="session")
def registry():
    """The default analyzers plus `accuracy`; passed to AuditConfig, run and AuditReport.load."""
    return {**ANALYZERS, "accuracy": ACCURACY}
