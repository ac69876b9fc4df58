"""The result codec and metric declarations in audit/results.py."""

from __future__ import annotations

import dataclasses
import json
from typing import Any, Mapping

import numpy as np
import numpy.typing as npt
import pytest

from audit.errors import AuditInputError
from audit.results import Finding, MetricSpec, Provenance, Result, metric_spec, to_jsonable


@dataclasses.dataclass(frozen=True, eq=False)
class _Curve(Result):
    name: str
    eps: np.ndarray
    accuracy: npt.NDArray[np.float32]


@dataclasses.dataclass(frozen=True, eq=False)
class _Report(Result):
    SCHEMA = "audit.test/2"
    LEGACY_SCHEMAS = ("audit.test/1",)
    METRICS = (MetricSpec("robust_accuracy:<attack>@<eps>", "higher", "Robust accuracy, <attack> at eps <eps>",
                          "Share of test rows still classified correctly under the attack."),
               MetricSpec("gap", "lower", "Gap", "Largest difference."))
    classes: tuple[str, ...]
    counts: np.ndarray
    curves: tuple[_Curve, ...]
    by_group: Mapping[str, np.ndarray]
    best: _Curve | None
    threshold: float
    note: str | None
    pair: tuple[int, float]
    extra: Any
    findings: tuple[Finding, ...]
    provenance: Provenance
    seed: int | None = None


def _report(**changes) -> _Report:
    base = dict(
        classes=("good", "bad"), counts=np.array([3, 4]),
        curves=(_Curve("pgd", np.array([0.0, 0.1]), np.array([1.0, np.nan], np.float32)),),
        by_group={"f": np.array([0.5, np.nan]), "m": np.array([0.25, 1.0])},
        best=None, threshold=float("nan"), note=None, pair=(3, 0.5), extra={"a": [1, 2]},
        findings=(Finding("x", "warn", "T", "msg", metric="m", value=0.2, threshold=0.1),),
        provenance=Provenance("pgd", {"eps": [0.1]}, seed=0, seconds=1.5))
    return _Report(**(base | changes))


def _through_json(d: dict) -> dict:
    return json.loads(json.dumps(to_jsonable(d)))


def test_round_trip_in_memory_and_through_json():
    r = _report(best=_Curve("apgd", np.array([0.3]), np.array([0.5], np.float32)), seed=7)
    d = r.to_dict()
    assert d["schema"] == "audit.test/2" and isinstance(d["counts"], np.ndarray)
    for copy in (_Report.from_dict(d), _Report.from_dict(_through_json(d))):
        assert copy == r
        assert isinstance(copy.classes, tuple) and isinstance(copy.curves[0], _Curve)
        assert copy.curves[0].accuracy.dtype == np.float32  # the annotation's dtype comes back
        assert np.isnan(copy.threshold) and copy.note is None and copy.pair == (3, 0.5)
        assert copy.counts.dtype.kind == "i" and copy.seed == 7


def test_equality_is_field_by_field_and_nan_equal():
    assert _report() == _report()
    assert _report() != _report(counts=np.array([3, 5]))
    assert _report() != _report(by_group={"f": np.array([0.5, 0.0]), "m": np.array([0.25, 1.0])})
    with pytest.raises(TypeError):
        hash(_report())


def test_schema_checked_legacy_accepted_and_damage_named():
    d = _through_json(_report().to_dict())
    assert _Report.from_dict(d | {"schema": "audit.test/1"}) == _report()
    with pytest.raises(AuditInputError, match="schema 'audit.other/1'"):
        _Report.from_dict(d | {"schema": "audit.other/1"})
    del d["counts"]
    with pytest.raises(AuditInputError, match="no field 'counts'"):
        _Report.from_dict(d)
    with pytest.raises(AuditInputError):
        _Report.from_dict(_through_json(_report().to_dict()) | {"classes": "good"})


def test_default_fields_may_be_absent():
    d = _report().to_dict()
    del d["seed"]
    assert _Report.from_dict(d).seed is None


def test_metric_spec_matching_titles_and_direction():
    spec = metric_spec(_Report.METRICS, "robust_accuracy:pgd@0.1")
    assert spec is _Report.METRICS[0]
    assert spec.title_for("robust_accuracy:autoattack@0.3") == "Robust accuracy, autoattack at eps 0.3"
    assert metric_spec(_Report.METRICS, "robust_accuracy") is None
    assert metric_spec(_Report.METRICS, "gap:sex") is None  # a pattern matches the whole name
    assert spec.better(0.5, 0.6) is True and spec.better(0.6, 0.5) is False and spec.better(0.5, 0.5) is None
    assert _Report.METRICS[1].better(0.2, 0.1) is True
    assert MetricSpec("n", "info", "N", "rows").better(1, 2) is None
    with pytest.raises(ValueError):
        MetricSpec("x", "up", "X", "bad direction")
