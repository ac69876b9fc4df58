"""Explanation quality and permutation importance on constructed cases with known answers."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.stats import spearmanr
from sklearn.inspection import permutation_importance as sk_permutation_importance

from audit.errors import AuditInputError
from audit.explain import (Agreement, Curves, PermutationImportance, Stability, faithfulness_curves,
                           permutation_importance, rank_agreement, spearman, stability, top_k_overlap)
from audit.explain import _quality
from audit.results import to_jsonable

W = np.array([1.5, -2.0, 0.5, 0.0, 3.0])


@pytest.fixture(scope="module")
def X():
    return np.random.default_rng(0).normal(size=(40, 5)).astype(np.float32)


def test_perfect_attribution_beats_random_on_deletion_and_insertion(linear_model, X):
    exact = W * X  # exact contributions to the logit against a zero baseline
    noise = np.random.default_rng(1).normal(size=X.shape)
    perfect = faithfulness_curves(linear_model, X, exact, target=1, baseline=0.0, steps=5)
    random = faithfulness_curves(linear_model, X, noise, target=1, baseline=0.0, steps=5)
    assert perfect.deletion_auc.mean() < random.deletion_auc.mean() - 0.05
    assert perfect.insertion_auc.mean() > random.insertion_auc.mean() + 0.05
    # ordering by the exact contributions is optimal: deleting the largest first lowers p fastest
    anti = faithfulness_curves(linear_model, X, -exact, target=1, baseline=0.0, steps=5)
    assert np.all(perfect.deletion_auc <= anti.deletion_auc + 1e-9)
    assert perfect.deletion_auc.mean() < perfect.deletion_auc_random.mean()


def test_curve_endpoints_are_the_input_and_the_baseline(linear_model, X):
    c = faithfulness_curves(linear_model, X[:6], W * X[:6], target=1, baseline=0.25, steps=5)
    p_x = linear_model.predict_proba(X[:6])[:, 1]
    p_b = linear_model.predict_proba(np.full((1, 5), 0.25))[0, 1]
    np.testing.assert_allclose(c.deletion[:, 0], p_x, rtol=1e-5)
    np.testing.assert_allclose(c.deletion[:, -1], p_b, rtol=1e-5)
    np.testing.assert_allclose(c.insertion[:, 0], p_b, rtol=1e-5)
    np.testing.assert_allclose(c.insertion[:, -1], p_x, rtol=1e-5)
    assert c.fractions[0] == 0 and c.fractions[-1] == 1
    # one deletion step by hand: remove the top feature of row 0
    top = int(np.argmax(W * X[0]))
    x = X[0].copy()
    x[top] = 0.25
    c1 = faithfulness_curves(linear_model, X[:1], W * X[:1], target=1, baseline=0.25, steps=5)
    assert abs(c1.deletion[0, 1] - linear_model.predict_proba(x[None])[0, 1]) < 1e-6


def test_groups_move_together(credit_small, credit_model):
    X = credit_small.test.X[:4]
    groups = credit_small.feature_groups
    attr = np.random.default_rng(0).normal(size=(4, len(groups)))
    c = faithfulness_curves(credit_model, X, attr, target=1, baseline=credit_small.train.X.mean(0),
                            groups=groups, steps=len(groups))
    assert c.deletion.shape == (4, len(groups) + 1)
    p_base = credit_model.predict_proba(credit_small.train.X.mean(0)[None])[0, 1]
    np.testing.assert_allclose(c.deletion[:, -1], p_base, rtol=1e-5)


def test_disjoint_groups_gather_equals_the_overlapping_rule(linear_model, X):
    """Disjoint groups swap inputs by a gather; a group set with one overlap goes through the
    matrix product. Adding a duplicate of the last group that no ranking reaches before the
    original changes nothing, so both rules must give the same curves."""
    attr = np.random.default_rng(1).normal(size=(6, 3))
    groups = [[0, 1], [2], [3, 4]]
    fast = faithfulness_curves(linear_model, X[:6], attr, target=1, baseline=0.25, groups=groups, steps=3)
    over = faithfulness_curves(linear_model, X[:6], np.concatenate([attr, np.full((6, 1), -1e9)], axis=1),
                               target=1, baseline=0.25, groups=groups + [[3]], steps=4)
    # the fifth unit is ranked last: steps 0..3 of `over` delete the same inputs as `fast`
    np.testing.assert_array_equal(fast.deletion, over.deletion[:, :4])
    np.testing.assert_array_equal(fast.insertion, over.insertion[:, :4])


def test_spearman_matches_scipy_with_ties():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 4, size=(30, 12)).astype(float)  # many ties
    b = a + rng.normal(size=a.shape)
    ours = spearman(a, b)
    ref = np.array([spearmanr(a[i], b[i]).statistic for i in range(len(a))])
    np.testing.assert_allclose(ours, ref, rtol=1e-12, atol=1e-12)
    assert np.all(spearman(a, a) > 1 - 1e-12)
    assert np.isnan(spearman(np.ones((1, 4)), np.arange(4.0)[None]))[0]


def test_top_k_overlap_by_hand():
    a = np.array([[5.0, -4, 3, 0.1, 0.2]])
    b = np.array([[0.0, 9, -8, 7, 0.3]])
    assert top_k_overlap(a, b, k=3)[0] == pytest.approx(2 / 3)  # {0,1,2} vs {1,2,3}
    assert top_k_overlap(a, a, k=5)[0] == 1.0
    ag = rank_agreement(a, b, k=2)
    assert isinstance(ag, Agreement) and ag.top_k[0] == 0.5 and ag.k == 2


def test_stability_of_deterministic_explainers(X):
    explain = lambda rows: rows * W  # Gradient x Input of the linear model
    same = stability(explain, X, sigma=0.0, n_samples=2)
    assert np.allclose(same.spearman, 1) and np.allclose(same.relative_change, 0)
    noisy = stability(explain, X, sigma=0.1, n_samples=8, seed=0)
    # relative change of w * x under noise eps is ||w * eps|| / ||w * x||: rebuild it
    eps = np.random.default_rng(0).normal(size=(len(X), 8, 5)) * 0.1
    expect = (np.linalg.norm(W * eps, axis=2) / np.linalg.norm(W * X, axis=1)[:, None]).mean(1)
    np.testing.assert_allclose(noisy.relative_change, expect, rtol=1e-5)
    constant = stability(lambda rows: np.repeat(W[None], len(rows), 0), X, sigma=0.5)
    assert np.allclose(constant.relative_change, 0) and np.allclose(constant.spearman, 1)
    back = Stability.from_dict(json.loads(json.dumps(to_jsonable(noisy.to_dict()))))
    assert np.array_equal(back.relative_change, noisy.relative_change)


def test_curves_round_trip(linear_model, X):
    c = faithfulness_curves(linear_model, X[:5], W * X[:5], target=1, steps=5)
    back = Curves.from_dict(json.loads(json.dumps(to_jsonable(c.to_dict()))))
    assert np.array_equal(back.deletion, c.deletion) and np.array_equal(back.deletion_auc, c.deletion_auc)


def test_permutation_importance_on_linear_model(linear_model):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 5)).astype(np.float32)
    y = (rng.random(400) < linear_model.predict_proba(X)[:, 1]).astype(np.int64)
    imp = permutation_importance(linear_model, X, y, n_repeats=20, seed=0)
    assert np.all(imp.drops[3] == 0)  # zero weight: shuffling changes nothing
    assert imp.ranking()[0] == "x4" and imp.ranking()[-1] == "x3"  # |w| * std ordering
    low, high = imp.interval
    assert np.all(low <= imp.mean) and np.all(imp.mean <= high) and low[4] > 0
    # scikit-learn's permutation importance (neg log loss) agrees within the intervals
    from sklearn.base import BaseEstimator, ClassifierMixin

    class Est(ClassifierMixin, BaseEstimator):
        def fit(self, *a):
            return self
        def predict_proba(self, Z):
            return linear_model.predict_proba(Z)
        def predict(self, Z):
            return linear_model.predict(Z)
    est = Est()
    est.classes_ = np.array([0, 1])
    sk = sk_permutation_importance(est, X, y, scoring="neg_log_loss", n_repeats=20, random_state=0)
    se = np.sqrt(imp.std ** 2 / 20 + sk.importances_std ** 2 / 20)
    assert np.all(np.abs(sk.importances_mean - imp.mean) <= 4 * se + 1e-9)
    acc = permutation_importance(linear_model, X, y, metric="accuracy", n_repeats=5, seed=0)
    assert acc.baseline == pytest.approx(float((linear_model.predict(X) == y).mean()))


def test_permutation_importance_groups_and_round_trip(credit_small, credit_model):
    test = credit_small.test
    imp = permutation_importance(credit_model, test.X, test.y, groups=credit_small.feature_groups,
                                 feature_names=credit_small.raw_feature_names, n_repeats=5, seed=1)
    assert set(imp.ranking()[:4]) <= {"income", "debt_ratio", "late_payments", "credit_history_years", "employment"}
    again = permutation_importance(credit_model, test.X, test.y, groups=credit_small.feature_groups,
                                   feature_names=credit_small.raw_feature_names, n_repeats=5, seed=1)
    assert np.array_equal(again.drops, imp.drops)
    back = PermutationImportance.from_dict(json.loads(json.dumps(to_jsonable(imp.to_dict()))))
    assert np.array_equal(back.drops, imp.drops) and back.metrics() == imp.metrics()
    assert imp.findings[0].status == "pass"


def test_bad_input(linear_model, X):
    with pytest.raises(AuditInputError, match="groups"):
        faithfulness_curves(linear_model, X[:2], np.ones((2, 3)), target=1)
    with pytest.raises(AuditInputError, match="baseline"):
        faithfulness_curves(linear_model, X[:2], np.ones((2, 5)), target=1, baseline=np.zeros(3))
    with pytest.raises(AuditInputError, match="one row per input"):
        faithfulness_curves(linear_model, X[:2], np.ones((3, 5)), target=1)
    with pytest.raises(AuditInputError):
        spearman(np.ones((2, 3)), np.ones((2, 4)))
    with pytest.raises(AuditInputError, match="k"):
        top_k_overlap(np.ones((1, 3)), np.ones((1, 3)), k=4)
    with pytest.raises(AuditInputError, match="sigma"):
        stability(lambda r: r, X, sigma=-1.0)
    with pytest.raises(AuditInputError, match="metric"):
        permutation_importance(linear_model, X, np.zeros(len(X), int), metric="auc")
    with pytest.raises(AuditInputError, match="class ids"):
        permutation_importance(linear_model, X, np.full(len(X), 3))
    assert _quality.default_k(10) == 3 and _quality.default_k(64) == 7 and _quality.default_k(2) == 2
