"""Error analysis: the statistics against scipy, the search against brute force, and the planted cohort."""

import json

import numpy as np
import pytest
from scipy import stats

from audit import datasets, slices
from audit.data import _credit
from audit.errors import AuditInputError
from audit.models import train
from audit.results import metric_spec, to_jsonable
from audit.slices import _conditions
from audit.slices._search import search
from audit.slices._stats import benjamini_hochberg, fisher_greater, holm


def test_wilson_matches_scipy():
    k, n = np.array([0, 3, 17, 40]), np.array([10, 25, 60, 40])
    lo, hi = slices.wilson_interval(k, n, confidence=0.95)
    for i in range(len(k)):
        ci = stats.binomtest(int(k[i]), int(n[i])).proportion_ci(confidence_level=0.95, method="wilson")
        assert lo[i] == pytest.approx(ci.low, abs=1e-12) and hi[i] == pytest.approx(ci.high, abs=1e-12)


def test_fisher_matches_scipy_fisher_exact():
    total, total_errors = 500, 40
    for errors, size in [(5, 30), (12, 50), (0, 40), (30, 100)]:
        table = [[errors, size - errors], [total_errors - errors, total - size - (total_errors - errors)]]
        ref = stats.fisher_exact(table, alternative="greater").pvalue
        assert fisher_greater(np.array([errors]), np.array([size]), total_errors=total_errors,
                              total=total)[0] == pytest.approx(ref, rel=1e-9)


def test_holm_and_bh_closed_form():
    p = np.array([0.01, 0.04, 0.03, 0.005])
    # Holm: sorted 0.005, 0.01, 0.03, 0.04 times 4, 3, 2, 1, then running max
    np.testing.assert_allclose(holm(p), [0.03, 0.06, 0.06, 0.02])
    # BH: sorted p * 4 / rank, then running min from the top
    np.testing.assert_allclose(benjamini_hochberg(p), [0.02, 0.04, 0.04, 0.02])


def test_search_equals_brute_force():
    rng = np.random.default_rng(0)
    n = 400
    cols = {"a": ("categorical", rng.choice(["x", "y", "z"], n), None),
            "b": ("numeric", rng.normal(size=n), lambda v: float(np.round(v, 2))),
            "c": ("categorical", rng.choice(["u", "v"], n), None),
            "d": ("numeric", rng.integers(0, 3, n).astype(float), lambda v: v)}
    conds = _conditions.build(cols, n_bins=3)
    wrong = rng.random(n) < 0.2
    keys, sizes, errors = search(conds.masks, conds.column, wrong, max_order=3, min_size=15)
    found = {tuple(k[k >= 0]): (s, e) for k, s, e in zip(keys, sizes, errors)}
    m = conds.masks.shape[1]
    import itertools
    expected = {}
    for order in (1, 2, 3):
        for combo in itertools.combinations(range(m), order):
            if len({conds.column[i] for i in combo}) < order:
                continue
            if any(conds.masks[:, i].sum() < 15 for i in combo):
                continue
            if order == 3 and (conds.masks[:, combo[0]] & conds.masks[:, combo[1]]).sum() < 15:
                continue
            mask = np.logical_and.reduce([conds.masks[:, i] for i in combo])
            s = mask.sum()
            parents = [np.logical_and.reduce([conds.masks[:, j] for j in sub]).sum()
                       for sub in ([combo[:1], combo[1:]] if order == 2 else [combo[:2], combo[2:]])] if order > 1 else []
            if s in parents or not (15 <= s <= n - 15):
                continue
            expected[combo] = (s, int(wrong[mask].sum()))
    assert found == expected
    # conditions of one numeric column partition the rows, and the text names the edges
    b_masks = conds.masks[:, conds.column == 1]
    assert (b_masks.sum(1) == 1).all()
    assert [t for t in conds.texts if t.startswith("d")] == ["d = 0", "d = 1", "d = 2"]


def test_nothing_significant_when_errors_do_not_depend_on_the_rows():
    """The null the test is built for: errors independent of every column give no cohort (Holm at 0.05)."""
    d = datasets.load("credit", n=5000, seed=0)
    rows = d.splits["test"]
    for seed in range(3):
        wrong = np.random.default_rng(seed).random(len(rows)) < 0.1
        from audit.slices._evaluate import _columns
        conds = _conditions.build(_columns(d, rows, None, False), n_bins=4)
        cohorts, n_tried = slices.find_cohorts(conds, wrong, max_order=3, min_size=30)
        assert n_tried > 500 and not any(c.significant for c in cohorts)


@pytest.fixture(scope="module")
def planted():
    d = datasets.load("credit", n=5000, seed=0, hidden_cohort=True)
    return d, train("mlp", d, epochs=10, batch_size=64, widths=(16,), progress=False, seed=0)


def test_the_planted_cohort_is_found_first(planted):
    d, model = planted
    report = slices.evaluate(model, d)
    top = report.cohorts[0]
    assert top.significant and set(top.conditions) == {"sector = retail", "housing = rent"}
    rows = d.splits["test"]
    frame = _credit.credit_frame(5000, seed=0, hidden_cohort=True)
    assert top.size == int(_credit.hidden_cohort_mask(frame)[rows].sum())
    wrong = model.predict(d.X[rows]) != d.y[rows]
    assert top.errors == int(wrong[_credit.hidden_cohort_mask(frame)[rows]].sum())
    np.testing.assert_array_equal(slices.cohort_rows(d, top.conditions), _credit.hidden_cohort_mask(frame)[rows])
    for c in report.cohorts[:10]:  # every cohort's rows can be rebuilt from its words
        mask = slices.cohort_rows(d, c.conditions)
        assert mask.sum() == c.size and wrong[mask].sum() == c.errors
    assert top.error > 3 * top.rest_error and top.error_low <= top.error <= top.error_high
    headline = report.findings[0]
    assert headline.status == "fail" and headline.metric == "worst_error_ratio"
    assert "housing = rent and sector = retail" in headline.message
    assert report.metrics()["worst_error_ratio"] == pytest.approx(top.error_ratio)
    again = type(report).from_dict(json.loads(json.dumps(to_jsonable(report.to_dict()))))
    assert again == report
    assert all(metric_spec(report.METRICS, name) is not None for name in report.metrics())


def test_without_the_plant_the_cohort_is_not_flagged():
    """On the same data without label noise the model's real weak spots (low income, short histories)
    may be flagged, but the planted conjunction is not, and the retail/rent rows are no worse."""
    d = datasets.load("credit", n=5000, seed=0)
    model = train("mlp", d, epochs=10, batch_size=64, widths=(16,), progress=False, seed=0)
    report = slices.evaluate(model, d)
    assert not any({"sector = retail", "housing = rent"} <= set(c.conditions) for c in report.significant)


def test_bad_settings_are_one_clear_error(planted):
    d, model = planted
    with pytest.raises(AuditInputError, match="no column"):
        slices.evaluate(model, d, columns=["nope"])
    with pytest.raises(AuditInputError, match="correction"):
        slices.evaluate(model, d, correction="bonferroni-ish")
    with pytest.raises(AuditInputError, match="is empty"):
        slices.evaluate(model, d, columns=[])
    with pytest.raises(AuditInputError, match="max_order"):
        slices.evaluate(model, d, max_order=4)


def test_columns_and_sensitive_attributes_can_be_chosen(planted):
    d, model = planted
    report = slices.evaluate(model, d, columns=["sector", "income"], include_sensitive=True, max_order=2)
    assert report.columns == ("sector", "income", "age", "sex")
    used = {cond.split(" ")[0] if "<=" not in cond else cond.split(" ")[2]
            for c in report.cohorts for cond in c.conditions}
    assert used <= {"sector", "income", "age", "sex"} and "housing" not in used
    assert all(len(c.conditions) <= 2 for c in report.cohorts)
