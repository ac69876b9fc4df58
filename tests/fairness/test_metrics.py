"""Group metrics and disparities against fairlearn / scikit-learn, binning, intervals, bad input."""

from __future__ import annotations

import numpy as np
import pytest
from fairlearn import metrics as flm
from sklearn import metrics as skm

from audit.errors import AuditInputError
from audit.fairness import assess, intersect, make_grouping
from audit.fairness import _stats


def _binary(seed=0, n=3000):
    rng = np.random.default_rng(seed)
    g = rng.choice(["a", "b", "c"], n, p=[0.5, 0.3, 0.2])
    y = (rng.random(n) < np.where(g == "a", 0.3, 0.15)).astype(np.int64)
    p1 = np.clip(0.55 * rng.random(n) + 0.35 * y + 0.05 * (g == "b"), 0, 1)
    scores = np.stack([1 - p1, p1], axis=1)
    return y, (p1 >= 0.5).astype(np.int64), g, scores


def test_group_metrics_equal_sklearn_on_each_group():
    y, pred, g, scores = _binary()
    table = assess(y, pred, g, scores=scores, n_bootstrap=0).table()
    frame = flm.MetricFrame(
        metrics={"selection_rate": flm.selection_rate, "accuracy": skm.accuracy_score,
                 "tpr": flm.true_positive_rate, "fpr": flm.false_positive_rate,
                 "fnr": flm.false_negative_rate, "precision": skm.precision_score},
        y_true=y, y_pred=pred, sensitive_features=g)
    for metric in frame.by_group.columns:
        np.testing.assert_allclose(table.values[metric], frame.by_group[metric].loc[list(table.groups)],
                                   rtol=0, atol=1e-9)
    for k, group in enumerate(table.groups):
        rows = g == group
        assert table.values["size"][k] == rows.sum()
        assert table.values["base_rate"][k] == pytest.approx(y[rows].mean(), abs=1e-12)
        assert table.values["roc_auc"][k] == pytest.approx(skm.roc_auc_score(y[rows], scores[rows, 1]), abs=1e-9)


def test_calibration_error_matches_a_per_group_loop():
    y, pred, g, scores = _binary(seed=1)
    table = assess(y, pred, g, scores=scores, n_bootstrap=0, n_bins=7).table()
    for k, group in enumerate(table.groups):
        s, t = scores[g == group, 1], y[g == group]
        bins = np.minimum((s * 7).astype(int), 6)
        ece = sum(abs(s[bins == b].sum() - t[bins == b].sum()) for b in range(7)) / len(s)
        assert table.values["calibration_error"][k] == pytest.approx(ece, abs=1e-12)


def test_disparities_equal_fairlearn():
    y, pred, g, scores = _binary(seed=2)
    r = assess(y, pred, g, scores=scores, n_bootstrap=50)
    kw = dict(sensitive_features=g)
    expected = {"demographic_parity_difference": flm.demographic_parity_difference(y, pred, **kw),
                "demographic_parity_ratio": flm.demographic_parity_ratio(y, pred, **kw),
                "disparate_impact": flm.demographic_parity_ratio(y, pred, **kw),
                "equal_opportunity_difference": flm.equal_opportunity_difference(y, pred, **kw),
                "equalized_odds_difference": flm.equalized_odds_difference(y, pred, **kw)}
    for name, value in expected.items():
        assert r.disparity(name).value == pytest.approx(value, abs=1e-9), name
    precision = flm.MetricFrame(metrics=skm.precision_score, y_true=y, y_pred=pred, sensitive_features=g)
    assert r.disparity("predictive_parity_difference").value == pytest.approx(precision.difference(), abs=1e-9)
    ce = r.table().values["calibration_error"]
    assert r.disparity("calibration_gap").value == pytest.approx(ce.max() - ce.min(), abs=1e-12)


def test_multiclass_is_one_vs_rest_per_class():
    rng = np.random.default_rng(3)
    n = 2000
    y = rng.integers(0, 3, n)
    pred = np.where(rng.random(n) < 0.7, y, rng.integers(0, 3, n))
    g = rng.choice(["u", "v"], n)
    r = assess(y, pred, g, class_names=("x", "y", "z"), n_bootstrap=0)
    assert [t.class_name for t in r.tables] == ["x", "y", "z"]
    for c, name in enumerate("xyz"):
        yb, pb = (y == c).astype(int), (pred == c).astype(int)
        assert r.disparity("equalized_odds_difference", name).value == pytest.approx(
            flm.equalized_odds_difference(yb, pb, sensitive_features=g), abs=1e-9)
        assert r.disparity("demographic_parity_difference", name).value == pytest.approx(
            flm.demographic_parity_difference(yb, pb, sensitive_features=g), abs=1e-9)
        # accuracy in a group is the multi-class accuracy, the same in every one-vs-rest table
        np.testing.assert_allclose(r.table(name).values["accuracy"],
                                   [np.mean(y[g == k] == pred[g == k]) for k in ("u", "v")], atol=1e-12)


def test_randint_at_is_jax_randint_element_by_element():
    """The bootstrap draws each element alone; it must be jax.random.randint's element."""
    import jax

    key = jax.random.key(123)
    ours = jax.jit(_stats.randint_at)
    ref = jax.jit(lambda span: jax.random.randint(key, (300,), 0, span))
    for span in (1, 2, 3, 7, 128, 1000, 2013, 65537, 2 ** 31 - 1):
        np.testing.assert_array_equal(np.asarray(ours(key, np.arange(300, dtype=np.uint32), np.int32(span))),
                                      np.asarray(ref(np.int32(span))))


def test_bootstrap_draws_each_group_by_its_own_randint_and_compiles_once():
    """Replicate r of group g counts the rows randint(fold_in(fold_in(key, g), r), (m,), 0, m)
    draws (the reference: one randint per group and replicate); attributes with other row and
    group counts (here needing the same number of blocks) reuse the compiled draw."""
    import jax

    rng = np.random.default_rng(3)
    m, reps = 60, 7
    reference = jax.jit(lambda key, g, r: jax.random.randint(jax.random.fold_in(jax.random.fold_in(key, g), r),
                                                             (m,), 0, m))
    before = _stats._replicate_sums._cache_size()
    for n_groups, seed in ((2, 0), (3, 1), (4, 2)):
        n = m * n_groups
        stats = rng.integers(0, 5, size=(n, 4)).astype(np.float64)  # integers: sums are exact
        codes = rng.permutation(np.arange(n) % n_groups)
        got = _stats.bootstrap_sums(stats, codes, n_groups, n_bootstrap=reps, rng=np.random.default_rng(seed))
        key = jax.random.key(int(np.random.default_rng(seed).integers(2 ** 31)))
        for g in range(n_groups):
            rows = np.flatnonzero(codes == g)
            for r in range(reps):
                draws = np.asarray(reference(key, np.uint32(g), np.uint32(r)))
                np.testing.assert_array_equal(got[r, g], np.bincount(draws, minlength=m) @ stats[rows])
    assert _stats._replicate_sums._cache_size() - before == 1


def test_bootstrap_is_stratified_and_seeded():
    codes = np.array([0] * 7 + [1] * 5)
    boot = _stats.bootstrap_sums(np.eye(12), codes, 2, n_bootstrap=300, rng=np.random.default_rng(0),
                                 max_cells=20)  # tiny chunks exercise the chunking
    assert boot.shape == (300, 2, 12)
    np.testing.assert_array_equal(boot[:, 0, 7:], 0)  # group 0 only draws its own rows
    np.testing.assert_array_equal(boot[:, 1, :7], 0)
    np.testing.assert_array_equal(boot[:, 0].sum(-1), 7)  # group sizes are kept
    np.testing.assert_array_equal(boot[:, 1].sum(-1), 5)
    assert abs(boot[:, 0, :7].mean() - 1.0) < 0.05  # each row drawn once on average
    y, pred, g, scores = _binary(seed=4)
    a = assess(y, pred, g, scores=scores, n_bootstrap=100, seed=5)
    b = assess(y, pred, g, scores=scores, n_bootstrap=100, seed=5)
    c = assess(y, pred, g, scores=scores, n_bootstrap=100, seed=6)
    assert a == b
    assert a.disparity("demographic_parity_difference").ci_low != c.disparity("demographic_parity_difference").ci_low


def test_intervals_cover_the_truth_at_the_nominal_rate():
    """Two groups with selection rates 0.30 and 0.20: the 90% interval of the gap covers 0.10."""
    rng = np.random.default_rng(7)
    n, sims, hits = 500, 200, 0
    g = np.repeat(["f", "m"], n)
    for s in range(sims):
        pred = (rng.random(2 * n) < np.where(g == "f", 0.3, 0.2)).astype(np.int64)
        y = rng.integers(0, 2, 2 * n)
        d = assess(y, pred, g, n_bootstrap=200, confidence=0.9, seed=s).disparity("demographic_parity_difference")
        hits += d.ci_low <= 0.1 <= d.ci_high
    assert 0.84 <= hits / sims <= 0.96  # nominal 0.90; binomial sd over 200 runs is 0.021


def test_interval_crosses_zero_without_a_gap():
    rng = np.random.default_rng(8)
    g = np.repeat(["f", "m"], 2000)
    pred = (rng.random(4000) < 0.2).astype(np.int64)
    d = assess(rng.integers(0, 2, 4000), pred, g, n_bootstrap=300).disparity("demographic_parity_difference")
    assert d.ci_low < 0 < d.ci_high and not d.significant


def test_binning_rule_for_continuous_attributes():
    ages = np.arange(20, 80)
    grouping = make_grouping(ages, "age")
    assert len(grouping.labels) == 4 and "quantiles" in grouping.rule
    assert grouping.labels[0].startswith("[20, ") and grouping.labels[-1].endswith(", 79]")
    assert np.abs(grouping.sizes - 15).max() <= 1  # equal frequency up to rounding the edges
    fixed = make_grouping(ages, "age", edges=[40, 60])
    assert fixed.labels == ("[20, 40)", "[40, 60)", "[60, 79]")
    np.testing.assert_array_equal(fixed.codes, np.searchsorted([40, 60], ages, side="right"))
    assert make_grouping(np.array([1, 2, 1, 2]), "flag").labels == ("1", "2")  # few levels: categories


def test_intersection_lists_empty_cells():
    a = make_grouping(np.array(["f", "f", "m", "m"]), "sex")
    b = make_grouping(np.array(["old", "young", "old", "old"]), "band")
    both = intersect(a, b)
    assert both.name == "sex&band"
    assert both.labels == ("f&old", "f&young", "m&old") and both.empty == ("m&young",)


def test_bad_input_is_one_clear_error():
    y, pred, g, scores = _binary()
    with pytest.raises(AuditInputError, match="values"):
        assess(y, pred, g[:-1])
    with pytest.raises(AuditInputError, match="single group"):
        assess(y, pred, np.full(len(y), "a"))
    with pytest.raises(AuditInputError, match="class ids"):
        assess(y + 1, pred, g, class_names=("n", "p"))
    bad = scores.copy()
    bad[3, 1] = np.nan
    with pytest.raises(AuditInputError, match="NaN"):
        assess(y, pred, g, scores=bad)
    with pytest.raises(AuditInputError, match="not one of"):
        assess(y, pred, g, classes=["maybe"], class_names=("n", "p"))
    for settings in ({"n_bootstrap": "many"}, {"n_bootstrap": 2.5}, {"confidence": 1.0}, {"n_bins": 0}):
        with pytest.raises(AuditInputError, match="n_bootstrap an integer >= 0"):
            assess(y, pred, g, **settings)


def test_undefined_and_small_groups_are_flagged_not_nan():
    rng = np.random.default_rng(9)
    g = np.array(["big"] * 500 + ["tiny"] * 8)
    y = np.r_[rng.integers(0, 2, 500), np.zeros(8, int)]  # "tiny" has no positives: TPR undefined
    pred = rng.integers(0, 2, 508)
    r = assess(y, pred, g, n_bootstrap=50)
    eo = r.disparity("equal_opportunity_difference")
    assert np.isnan(eo.value) and eo.undefined_groups == ("tiny",)
    dp = r.disparity("demographic_parity_difference")
    # one group large enough to judge: no headline, but the all-groups value is kept
    assert np.isnan(dp.value) and np.isfinite(dp.all_groups_value) and "tiny" in dp.small_groups
