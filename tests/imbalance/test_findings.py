"""Issue #12: imbalance findings name the class they are about (the minority, the worst-served,
for any number of classes), warn only on a measured gap with the rule stated, and every status
agrees with the threshold the finding prints."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

from audit.data import Dataset
from audit.imbalance import evaluate
from audit.models import Model


def _planted(y: np.ndarray, hit: dict[int, float], class_names) -> tuple[Model, Dataset]:
    """Rows of class k are predicted correctly for the first `hit[k]` share (else as the next
    class); X holds the predicted probabilities, and the model returns their logs."""
    K = len(class_names)
    proba = np.full((len(y), K), 0.1 / (K - 1))
    for k in range(K):
        rows = np.flatnonzero(y == k)
        right = rows[: int(round(hit[k] * len(rows)))]
        wrong = np.setdiff1d(rows, right)
        proba[right, k] = 0.9
        proba[wrong, (k + 1) % K] = 0.9
    n = len(y)
    data = Dataset(X=proba.astype(np.float32), y=y, feature_names=tuple(f"p{k}" for k in range(K)),
                   class_names=tuple(class_names), splits={"train": np.arange(n), "test": np.arange(n)})
    model = Model.from_function(lambda p, x: jnp.log(x), {}, input_shape=(K,), class_names=class_names)
    return model, data


def _labels(counts) -> np.ndarray:
    return np.concatenate([np.full(c, k) for k, c in enumerate(counts)]).astype(np.int64)


def _finding(report, fid):
    return next(f for f in report.findings if f.id == fid)


HIGHER = lambda f: f.metric.startswith("recall:")  # noqa: E731


def _consistent(f) -> bool:
    """pass exactly when the printed value is on the good side of the printed threshold."""
    good = f.value >= f.threshold if HIGHER(f) else f.value <= f.threshold
    return (f.status == "pass") == good


def test_minority_at_index_zero_is_named():
    """A credit set whose minority class is 'bad' at index 0 ('good' is index 1)."""
    y = _labels([300, 700])
    model, data = _planted(y, {0: 0.4, 1: 0.95}, ("bad", "good"))
    r = evaluate(model, data, threshold_split=None)
    minority = _finding(r, "imbalance.minority_recall")
    assert minority.metric == "recall:bad" and minority.value == pytest.approx(0.4) and minority.status == "fail"
    hides = _finding(r, "imbalance.accuracy_hides")
    assert hides.status == "warn"
    assert "accuracy hides 'bad', found at 40.0%" in hides.message
    assert "minority class 'bad' is 40.0% at the default threshold" in hides.message
    assert _finding(r, "imbalance.recall_gap").title == "Worst-served class 'bad'"


def test_balanced_data_without_a_gap_does_not_warn():
    """43% positives, balanced accuracy within a point of accuracy: nothing is hidden."""
    y = _labels([570, 430])
    model, data = _planted(y, {0: 0.80, 1: 0.75}, ("no", "yes"))
    r = evaluate(model, data, threshold_split=None)
    m = r.metrics()
    assert abs(m["accuracy"] - m["balanced_accuracy"]) < 0.01
    hides = _finding(r, "imbalance.accuracy_hides")
    assert hides.status == "pass" and "warns when the gap exceeds 0.05" in hides.message
    assert hides.value == pytest.approx(m["accuracy_gap"])


def test_status_agrees_with_the_printed_threshold():
    """Minority recall 0.68 clears min_recall 0.5 but trails the best class by 0.27 > 0.2: the
    recall finding passes against 0.5, and the gap finding warns against 0.2."""
    y = _labels([800, 200])
    model, data = _planted(y, {0: 0.95, 1: 0.68}, ("no", "yes"))
    r = evaluate(model, data, threshold_split=None)
    minority, gap = _finding(r, "imbalance.minority_recall"), _finding(r, "imbalance.recall_gap")
    assert (minority.status, minority.threshold) == ("pass", 0.5)
    assert (gap.status, gap.threshold) == ("warn", 0.2) and gap.value == pytest.approx(0.27)
    for f in r.findings:
        if f.value is not None and f.threshold is not None:
            assert _consistent(f), f


def test_any_number_of_classes_names_minority_and_worst_served():
    y = _labels([500, 300, 100])
    model, data = _planted(y, {0: 0.9, 1: 0.5, 2: 0.8}, ("a", "b", "c"))
    r = evaluate(model, data)
    assert _finding(r, "imbalance.minority_recall").metric == "recall:c"
    gap = _finding(r, "imbalance.recall_gap")
    assert gap.title == "Worst-served class 'b'" and gap.value == pytest.approx(0.4) and gap.status == "warn"
    assert r.metrics()["recall_gap"] == pytest.approx(0.4)
    for f in r.findings:
        if f.value is not None and f.threshold is not None:
            assert _consistent(f), f
