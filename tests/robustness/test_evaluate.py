"""`evaluate`: metrics, curves consistent with each other, JSON round trip, sanity checks that stay
quiet on normal models and fire on a gradient-masked one, and clear errors for bad input."""

from __future__ import annotations

import json

import jax
import numpy as np
import pytest

from audit.errors import AuditInputError
from audit.robustness import RobustnessReport, box_domain, domain_for, eps_name, evaluate
from audit.results import to_jsonable

def _status(report):
    return {f.id: f.status for f in report.findings}


def test_metric_names_and_orderings(credit_report):
    m = credit_report.metrics()
    assert m["clean_accuracy"] == pytest.approx(credit_report.clean_accuracy)
    for e in credit_report.eps:
        tag = eps_name(e)
        worst = m[f"robust_accuracy@{tag}"]
        for a in ("fgsm", "pgd", "apgd", "square"):
            assert worst <= m[f"robust_accuracy:{a}@{tag}"]  # the ensemble is the worst case
        assert m[f"robust_accuracy:pgd@{tag}"] <= m[f"robust_accuracy:fgsm@{tag}"] + 0.02
        assert m[f"attack_success_rate@{tag}"] == pytest.approx(1 - worst / m["clean_accuracy"])
        assert f"robust_accuracy_gap:sex@{tag}" in m and f"robust_accuracy_gap:age@{tag}" in m
    assert m["robust_accuracy@0"] == m["clean_accuracy"]
    assert m["robust_accuracy@1"] < m["robust_accuracy@0.1"]
    assert 0 < m["median_min_perturbation"] <= 1.0
    assert {"accuracy_imputed:top1", "accuracy_imputed:top3"} <= set(m)
    assert all(np.isfinite(v) for v in m.values())


def test_curves_are_consistent_with_each_other(credit_report, credit_small):
    r = credit_report
    ens = r.curve("ensemble")
    for kind, attr in (("class", None), ("group", "sex"), ("group", "age")):
        curves = r.curves_of(kind, attribute=attr)
        assert sum(c.n for c in curves) == r.n
        pooled = sum(c.n * c.accuracy for c in curves) / r.n  # group accuracies average to the total
        np.testing.assert_allclose(pooled, ens.accuracy, atol=1e-12)
    for c in r.curves:
        ok = np.isfinite(c.accuracy)
        assert (c.low[ok] <= c.accuracy[ok] + 1e-12).all() and (c.accuracy[ok] <= c.high[ok] + 1e-12).all()
    assert ens.high[-1] - ens.low[-1] > 0  # a real interval, not a point
    # the planted important columns lead the gradient x input ranking
    assert set(r.importance[:3]) <= {"late_payments", "debt_ratio", "income", "credit_history_years", "employment"}


def test_group_curve_equals_recomputed_subset(credit_small, credit_model):
    """A group's curve equals evaluate run on that group's rows alone (same attacks, same keys per batch)."""
    full = evaluate(credit_model, credit_small, n=10_000, eps=(0.0, 0.3), attacks=("fgsm",), bootstrap=0,
                    min_perturbation_n=0, sanity=False, batch_size=200)
    test = credit_small.test
    women = credit_small.select(credit_small.splits["test"][test.sensitive["sex"] == "female"])
    alone = evaluate(credit_model, women, split="train", n=10_000, eps=(0.0, 0.3), attacks=("fgsm",),
                     bootstrap=0, min_perturbation_n=0, sanity=False, domain=domain_for(credit_small),
                     batch_size=200)
    group = full.curve("female", kind="group", attribute="sex")
    assert group.n == alone.n
    np.testing.assert_allclose(group.accuracy, alone.curve("ensemble").accuracy, atol=1e-12)


def test_json_round_trip_is_exact(digits_report, credit_report):
    for report in (digits_report, credit_report):
        back = RobustnessReport.from_dict(json.loads(json.dumps(to_jsonable(report.to_dict()))))
        assert back == report
        assert back.metrics() == report.metrics()
        ex = back.examples[0]
        np.testing.assert_array_equal(ex.adversarial, report.examples[0].adversarial)


def test_examples_are_real_adversarials(digits_report, digits):
    assert digits_report.examples
    for ex in digits_report.examples:
        assert ex.adversarial_prediction != ex.label == ex.clean_prediction
        assert np.abs(ex.perturbation).max() <= ex.eps + 1e-6
        assert ex.adversarial.min() >= 0 and ex.adversarial.max() <= 1
        np.testing.assert_array_equal(ex.original, digits.X[ex.row])
        assert 0 < ex.adversarial_confidence <= 1


def test_sanity_checks_quiet_on_normal_models(credit_report, digits_report):
    for report in (credit_report, digits_report):
        status = _status(report)
        for check in ("robustness.pgd_vs_fgsm", "robustness.more_iterations", "robustness.large_eps",
                      "robustness.gradients", "robustness.black_box_vs_white_box",
                      "robustness.noise_vs_attack"):
            assert status[check] == "pass", (check, [f.message for f in report.findings if f.id == check])


def test_sanity_checks_fire_on_a_gradient_masked_model(masked_report, digits_report):
    status = _status(masked_report)
    assert status["robustness.gradients"] == "warn"
    assert status["robustness.black_box_vs_white_box"] == "warn"
    assert masked_report.checks["bad_gradient_fraction"] > 0.9
    assert "gradient masking" in next(f.message for f in masked_report.findings if f.id == "robustness.gradients")
    # the masked model looks robust to white-box attacks only
    m, d = masked_report.metrics(), digits_report.metrics()
    assert m["robust_accuracy:pgd@0.1"] > d["robust_accuracy:pgd@0.1"] + 0.3
    assert m["robust_accuracy:square@0.1"] < m["robust_accuracy:pgd@0.1"] - 0.2


def test_same_seed_same_report(credit_small, credit_model):
    kw = dict(n=200, eps=(0.0, 0.3), attacks=("pgd", "square"), bootstrap=50, min_perturbation_n=10,
              search_steps=3, steps=4, square_queries=30, batch_size=200)
    a = evaluate(credit_model, credit_small, seed=3, **kw)
    b = evaluate(credit_model, credit_small, seed=3, **kw)
    da, db = to_jsonable(a.to_dict()), to_jsonable(b.to_dict())
    da["provenance"].pop("seconds"), db["provenance"].pop("seconds")
    assert da == db


def test_importance_ranking_passed_in(credit_small, credit_model):
    r = evaluate(credit_model, credit_small, n=200, eps=(0.0, 0.2), attacks=("fgsm",), bootstrap=0,
                 min_perturbation_n=0, sanity=False, importance=("housing", "purpose", "sector"),
                 impute_k=(1, 2))
    assert r.importance == ("housing", "purpose", "sector")
    assert set(r.imputation) == {"top1", "top2"}


def test_defaults_respect_the_domain(credit_small, credit_model):
    r = evaluate(credit_model, credit_small, n=200, attacks=("fgsm",), bootstrap=0, min_perturbation_n=0,
                 sanity=False, norm="l2")
    assert tuple(r.eps) == (0.0, 0.1, 0.25, 0.5, 1.0, 2.0)
    assert r.attacks == ("fgsm",)


@pytest.mark.parametrize("kwargs,match", [
    ({"attacks": ("deepfool",)}, "unknown attack"),
    ({"attacks": ("square",), "norm": "l2"}, "supports norms"),
    ({"attacks": ("apgd_dlr",)}, "at least 3 classes"),
    ({"attacks": ()}, "attacks is empty"),
    ({"eps": (0.1, -0.2)}, "non-negative"),
    ({"eps": (0.1, 50.0)}, "beyond the input domain"),
    ({"norm": "l0"}, "not supported"),
    ({"n": 0}, "positive integer"),
    ({"split": "holdout"}, "no split"),
    ({"domain": box_domain((3,))}, "expected"),
    ({"immutable": ("nonexistent",)}, "neither raw columns"),
])
def test_bad_input(credit_small, credit_model, kwargs, match):
    with pytest.raises(AuditInputError, match=match):
        evaluate(credit_model, credit_small, **kwargs)


def test_model_data_mismatch(digits, credit_model):
    with pytest.raises(AuditInputError, match="inputs of shape"):
        evaluate(credit_model, digits)


def test_non_differentiable_model_gets_the_black_box_attack_only(masked_cnn, digits):
    opaque = masked_cnn.replace(differentiable=False)
    r = evaluate(opaque, digits, n=96, eps=(0.0, 0.1), batch_size=96, square_queries=100, bootstrap=0)
    assert r.attacks == ("square",)
    assert r.min_distance.size == 0 and "median_min_perturbation" not in r.metrics()
    assert "robustness.gradients" not in _status(r)
    with pytest.raises(AuditInputError, match="needs gradients"):
        evaluate(opaque, digits, attacks=("pgd",))


def test_each_sanity_check_fires_on_violating_numbers():
    from audit.robustness import _sanity

    eps = np.array([0.1, 0.2])
    assert _sanity.pgd_vs_fgsm(eps, [0.5, 0.3], [0.5, 0.31], tol=0.02).status == "pass"
    assert _sanity.pgd_vs_fgsm(eps, [0.5, 0.4], [0.5, 0.3], tol=0.02).status == "warn"
    assert _sanity.more_iterations(0.1, 0.40, 0.40, tol=0.02).status == "pass"
    assert _sanity.more_iterations(0.1, 0.40, 0.45, tol=0.02).status == "warn"  # more steps helped the model
    assert _sanity.more_iterations(0.1, 0.40, 0.30, tol=0.02).status == "warn"  # not converged
    assert _sanity.large_eps(1.0, 0.05, chance=0.1).status == "pass"
    assert _sanity.large_eps(1.0, 0.5, chance=0.1).status == "warn"
    assert _sanity.black_box_vs_white_box(eps, [0.5, 0.3], [0.45, 0.3], tol=0.05).status == "pass"
    assert _sanity.black_box_vs_white_box(eps, [0.2, 0.1], [0.5, 0.3], tol=0.05).status == "warn"
    assert _sanity.noise_vs_attack(eps, [0.9, 0.8], [0.5, 0.3], tol=0.02).status == "pass"
    assert _sanity.noise_vs_attack(eps, [0.4, 0.2], [0.5, 0.3], tol=0.02).status == "warn"
    assert _sanity.gradients(0.1).status == "pass" and _sanity.gradients(0.9).status == "warn"
    assert _sanity.censored(0.8).status == "pass" and _sanity.censored(0.2).status == "warn"


def test_row_samples_are_nested_and_seeded():
    from audit.robustness._evaluate import sample_rows
    small, large = sample_rows(1000, 100, seed=4), sample_rows(1000, 200, seed=4)
    assert len(small) == 100 and len(np.unique(small)) == 100 and (np.diff(small) > 0).all()
    assert set(small) <= set(large)  # sections auditing 100 and 200 rows share their 100 rows
    assert not np.array_equal(small, sample_rows(1000, 100, seed=5))
    np.testing.assert_array_equal(sample_rows(30, 500, seed=0), np.arange(30))


def test_sample_rank_orders_a_smaller_sample_first():
    from audit.robustness._evaluate import sample_rank, sample_rows
    rows, rank = sample_rows(1000, 200, seed=4), sample_rank(1000, 200, seed=4)
    first = rows[np.argsort(rank)][:100]  # the larger sample in rank order starts with the smaller one
    np.testing.assert_array_equal(np.sort(first), sample_rows(1000, 100, seed=4))
    np.testing.assert_array_equal(np.sort(rank), np.arange(200))


@pytest.mark.parametrize("which", ["tabular", "image"])
def test_a_smaller_samples_attacks_are_a_prefix_of_a_larger_ones(which, request):
    """run_attacks in rank order: every attack's adversarial example of a row is the same in a
    sample of 20 rows and of 40 (both attack in calls of 16 rows, the smaller one's last call
    padded), so the cache that hands the first 20 rows of the larger run to the smaller returns
    exactly what the attack computes; a hit gives the same report as a fresh run."""
    from audit.robustness import _attack_cache
    from audit.robustness._evaluate import attack_batch, run_attacks, sample_rank, sample_rows

    data = request.getfixturevalue("credit_small" if which == "tabular" else "digits")
    model = request.getfixturevalue("credit_model" if which == "tabular" else "digits_cnn")
    part, dom = data.part("test"), domain_for(data)
    kw = dict(grid=np.array([0.0, 0.1]), attacks=("fgsm", "pgd", "apgd", "square"), norm="linf", domain=dom,
              settings=dict(steps=3, restarts=1, apgd_steps=3, square_queries=20), key=jax.random.key(3))

    def attacked(n):
        rows = sample_rows(len(part), n, seed=1)
        batch = attack_batch(16, n)
        assert batch == 16
        hit = run_attacks(model, part.X[rows], part.y[rows], batch=batch, rank=sample_rank(len(part), n, seed=1), **kw)
        return rows, hit, dict(_attack_cache._entries)

    _attack_cache.clear()
    rows_s, small, stored_s = attacked(20)
    _attack_cache.clear()
    rows_l, large, stored_l = attacked(40)
    assert set(stored_s) == set(stored_l) and len(stored_s) == 4
    for k, (xs, _, adv_s) in stored_s.items():
        np.testing.assert_array_equal(stored_l[k][0][:20], xs)
        np.testing.assert_array_equal(stored_l[k][2][:20], adv_s)  # bit-identical per row
    cached = attacked(20)[1]  # served from the larger run
    pos = np.searchsorted(rows_l, rows_s)
    for a in kw["attacks"]:
        np.testing.assert_array_equal(small.correct[a], large.correct[a][:, pos])
        np.testing.assert_array_equal(cached.correct[a], small.correct[a])
    np.testing.assert_array_equal(cached.adversarial, small.adversarial)
    assert small.correct["pgd"][1].sum() < small.clean.sum()  # the attacks did something
    _attack_cache.clear()


def test_attack_batches_are_balanced_and_never_pad_much():
    from audit.robustness._evaluate import attack_batch
    for batch in (16, 64, 512):
        for m in range(1, 3 * batch + 2):
            size = attack_batch(batch, m)
            calls = -(-m // size)
            assert size <= batch
            assert calls == max(1, -(-m // batch))  # never more calls than plain batching
            if m > batch:
                assert calls * size - m < 8 * calls  # under 8 padded rows per call
                assert size % 8 == 0
            else:
                assert size < 2 * m  # a power of two under twice the rows
    assert attack_batch(64, 100) == attack_batch(64, 200) == 56  # certify's 100 rows share robustness's calls


def test_run_attacks_pools_square_over_the_grid_with_the_per_call_results(digits, digits_cnn, monkeypatch):
    """On one device, run_attacks runs Square once for every eps of the grid through one pool;
    its robust accuracy and adversarials are those of Square called per batch and eps."""
    import dataclasses

    from audit.robustness import _attack_cache, _evaluate
    from audit.robustness._evaluate import run_attacks
    from audit.robustness._registry import ATTACKS

    part, dom = digits.part("test"), domain_for(digits)
    x, y = part.X[:40], part.y[:40]
    kw = dict(grid=np.array([0.0, 0.05, 0.2]), attacks=("square",), norm="linf", domain=dom,
              settings=dict(steps=3, restarts=1, apgd_steps=3, square_queries=120), key=jax.random.key(5), batch=16)
    calls = []
    pooled_run = ATTACKS["square"].run_pooled
    spy = dataclasses.replace(ATTACKS["square"], run_pooled=lambda *a, **k: (calls.append(len(a[2])), pooled_run(*a, **k))[1])
    _attack_cache.clear()
    monkeypatch.setitem(_evaluate.ATTACKS, "square", spy)
    pooled = run_attacks(digits_cnn, x, y, **kw)
    assert calls == [80]  # both positive eps, 40 rows each, in one pooled run
    _attack_cache.clear()
    monkeypatch.setitem(_evaluate.ATTACKS, "square", dataclasses.replace(spy, run_pooled=None))
    per_call = run_attacks(digits_cnn, x, y, **kw)
    _attack_cache.clear()
    np.testing.assert_array_equal(pooled.correct["square"], per_call.correct["square"])
    np.testing.assert_allclose(pooled.adversarial, per_call.adversarial, atol=1e-6)
    assert 0 < (~pooled.correct["square"][2] & pooled.clean).sum()
