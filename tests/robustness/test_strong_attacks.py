"""C&W L2, FAB-T and AutoAttack against oracles: the distance to a linear model's hyperplane,
PGD's minimal perturbation, every part of the ensemble, eps balls and domains."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from audit.errors import AuditInputError
from audit.render.figures.robustness import report_tables
from audit.robustness import ATTACKS, RobustnessReport, autoattack, cw_l2, domain_for, evaluate, minimal_perturbation

KEY = jax.random.key(0)
W = np.array([1.5, -2.0, 0.5, 0.0, 3.0], np.float32)


def _l2(delta):
    flat = np.asarray(delta, np.float64).reshape(len(delta), -1)
    return np.sqrt((flat ** 2).sum(axis=1))


def test_cw_equals_the_distance_to_a_linear_hyperplane(linear_model):
    """For logits [0, w.x + b] the closest adversarial lies at |w.x + b| / ||w|| (no box in the way)."""
    rng = np.random.default_rng(0)
    x = rng.uniform(0.3, 0.7, (32, 5)).astype(np.float32)
    z = x @ W + 0.25
    y = (z > 0).astype(np.int32)
    adv, dist, found = cw_l2(linear_model.apply, linear_model.params, x, y, steps=200, search_steps=12,
                             learning_rate=0.05)
    exact = np.abs(z) / np.linalg.norm(W)
    assert found.all()
    np.testing.assert_allclose(dist, _l2(np.asarray(adv) - x), rtol=1e-5)
    assert (linear_model.predict(np.asarray(adv)) != y).all()
    assert (dist >= exact - 1e-5).all()  # nothing beats the exact distance
    np.testing.assert_allclose(dist, exact, rtol=0.03, atol=2e-3)


def test_cw_no_larger_than_pgd_minimal_perturbation(digits, digits_cnn):
    """The issue's bar: median C&W L2 <= PGD-L2 bisection's smallest successful eps, same rows."""
    part = digits.part("test")
    x, y = part.X[:64], part.y[:64]
    dom = domain_for(digits)
    adv, dist, found = cw_l2(digits_cnn.apply, digits_cnn.params, x, y, steps=100, search_steps=9, domain=dom)
    pgd_d, pgd_found = minimal_perturbation(digits_cnn.apply, digits_cnn.params, x, y, eps_max=4.0, norm="l2",
                                            domain=dom, key=KEY, search_steps=10, steps=20)
    clean = digits_cnn.predict(x) == y
    rows = clean & found & pgd_found
    assert rows.sum() >= 0.9 * clean.sum()
    assert np.median(dist[rows]) <= np.median(pgd_d[rows])
    a = np.asarray(adv)
    assert a.min() >= 0.0 and a.max() <= 1.0  # inside the pixel domain
    assert (digits_cnn.predict(a[rows]) != y[rows]).all()
    assert (dist[~clean] == 0).all()


def test_cw_keeps_immutable_inputs(credit_sensitive, credit_sensitive_model):
    dom = domain_for(credit_sensitive)
    x, y = credit_sensitive.part("test").X[:40], credit_sensitive.part("test").y[:40]
    adv, _, _ = cw_l2(credit_sensitive_model.apply, credit_sensitive_model.params, x, y, steps=30,
                      search_steps=4, domain=dom)
    frozen = np.asarray(dom.mutable) == 0
    assert frozen.any()
    np.testing.assert_array_equal(np.asarray(adv)[:, frozen], x[:, frozen])
    assert (np.asarray(adv) >= np.minimum(np.asarray(dom.lower), x) - 1e-6).all()


@pytest.mark.parametrize("kwargs, match", [
    (dict(search_steps=0), "search_steps"), (dict(initial_const=-1.0), "initial_const"),
    (dict(learning_rate=0.0), "learning_rate"), (dict(confidence=-1.0), "confidence"), (dict(steps=0), "steps")])
def test_cw_bad_settings(linear_model, kwargs, match):
    x = np.full((2, 5), 0.5, np.float32)
    with pytest.raises(AuditInputError, match=match):
        cw_l2(linear_model.apply, linear_model.params, x, np.array([0, 1]), **kwargs)


def _never_weaker(model, x, y, dom, norm, eps, **budget):
    common = dict(eps=eps, norm=norm, domain=dom, key=KEY, **budget)
    full, info = autoattack(model.apply, model.params, x, y, return_info=True, **common)
    full = np.asarray(full)
    fooled = model.predict(full) != y
    clean = info.clean
    # in the ball and the domain; unbroken rows unchanged
    size = np.abs(full - x).reshape(len(x), -1).max(axis=1) if norm == "linf" else _l2(full - x)
    assert (size <= eps * (1 + 1e-5)).all()
    lower, upper = np.minimum(np.asarray(dom.lower), x), np.maximum(np.asarray(dom.upper), x)
    assert (full >= lower - 1e-6).all() and (full <= upper + 1e-6).all()
    np.testing.assert_array_equal(full[~fooled], x[~fooled])
    # the shares add up to the attack success rate, and name the stage that broke each row
    assert sum(info.share.values()) == pytest.approx((fooled & clean).sum() / clean.sum())
    assert set(info.by[fooled & clean]) <= set(info.share)
    assert fooled[clean].any()
    for stage in info.share:
        alone = np.asarray(autoattack(model.apply, model.params, x, y, stages=(stage,), **common))
        alone_fooled = model.predict(alone) != y
        assert fooled.sum() >= alone_fooled.sum(), stage
        if stage in ("apgd-ce", "fab-t"):  # same rows and key (APGD-CE first), or deterministic (FAB)
            assert (fooled | ~alone_fooled).all(), stage


def test_autoattack_never_weaker_than_its_parts_two_classes(credit_small, credit_model):
    """The credit MLP (two classes: one target for APGD-T and FAB-T), inside the tabular domain."""
    part = credit_small.part("test")
    _never_weaker(credit_model, part.X[:64], part.y[:64], domain_for(credit_small), "linf", 0.3, steps=8,
                  square_queries=40)


@pytest.mark.slow
@pytest.mark.parametrize("norm, eps", [("linf", 0.1), ("l2", 1.0)])
def test_autoattack_never_weaker_than_its_parts_images(digits, digits_cnn, norm, eps):
    part = digits.part("test")
    _never_weaker(digits_cnn, part.X[:48], part.y[:48], domain_for(digits), norm, eps, steps=10,
                  n_target_classes=3, square_queries=100)


def test_autoattack_bad_settings(linear_model):
    x = np.full((4, 5), 0.5, np.float32)
    y = np.array([0, 1, 0, 1])
    with pytest.raises(AuditInputError, match="stages"):
        autoattack(linear_model.apply, linear_model.params, x, y, eps=0.1, key=KEY, stages=("pgd",))
    with pytest.raises(AuditInputError, match="n_target_classes"):
        autoattack(linear_model.apply, linear_model.params, x, y, eps=0.1, key=KEY, n_target_classes=0)
    with pytest.raises(AuditInputError, match="square_queries"):
        autoattack(linear_model.apply, linear_model.params, x, y, eps=0.1, key=KEY, square_queries=0)


def test_autoattack_and_cw_from_a_config_with_a_policy(credit_small, credit_model, tmp_path):
    """`attacks: [autoattack, cw]` in a config: the registry runs them inside evaluate, their curves
    give `robustness.robust_accuracy:<attack>@<eps>` metrics a policy can gate on."""
    from audit.pipeline import AuditConfig, run

    assert {"autoattack", "cw"} <= set(ATTACKS)
    cfg = AuditConfig(analyzers={"robustness": {"attacks": ["pgd", "autoattack", "cw"], "norm": "l2", "n": 32,
                                                "eps": [0.0, 1.0], "steps": 4, "bootstrap": 0,
                                                "min_perturbation_n": 0, "impute_k": [], "sanity": False}},
                      policy=[{"metric": "robustness.robust_accuracy:autoattack@1", "min": 0.0}])
    report = run(credit_model, credit_small, cfg, progress=False)
    m = report.metrics()
    assert {"robustness.robust_accuracy:autoattack@1", "robustness.robust_accuracy:cw@1"} <= set(m)
    assert m["robustness.robust_accuracy:autoattack@0"] == m["robustness.clean_accuracy"]
    assert m["robustness.robust_accuracy@1"] <= min(m["robustness.robust_accuracy:autoattack@1"],
                                                    m["robustness.robust_accuracy:cw@1"])
    assert report.passed
    # the report's tables: AutoAttack stage by stage, C&W's distances per class (#19)
    r = report.sections["robustness"].result
    stages, distances = report_tables(r)
    assert [label for label, _ in stages["rows"]] == ["apgd-ce", "apgd-t", "fab-t", "all stages"]
    total = sum(share[1] for share in r.autoattack_share.values())
    assert stages["columns"] == ["eps 1"] and stages["rows"][-1][1][0][0] == f"{total:.1%}"
    assert total == pytest.approx(m["robustness.attack_success_rate:autoattack@1"])
    assert distances["columns"] == ["C&W rows", "C&W L2"]
    assert [label for label, _ in distances["rows"]] == ["all classes", *r.class_names]
    counts = [int(cells[0][0]) for _, cells in distances["rows"][1:]]
    assert counts == [int((r.labels == k).sum()) for k in range(len(r.class_names))] and sum(counts) == 32
    cw = np.nan_to_num(r.cw_distance, nan=np.inf)
    assert distances["rows"][0][1][1][0].startswith(f"{np.quantile(cw, 0.5, method='inverted_cdf'):.3g} (")
    html = report.to_html(str(tmp_path / "report.html"))
    text = open(html, encoding="utf-8").read()
    assert "AutoAttack, stage by stage" in text and "C&amp;W L2" in text and "all stages" in text
    assert "robustness.autoattack_share:apgd-ce@1" in text and "robustness.median_cw_distance" in text
    with pytest.raises(AuditInputError, match="norms"):
        evaluate(credit_model, credit_small, n=8, norm="linf", attacks=("cw",))


def test_evaluate_carries_autoattack_shares_and_cw_distances(credit_small, credit_model):
    """AutoAttack's per-stage shares reach the report and add up to its attack success rate at each
    eps; C&W runs once for the grid and its robust accuracy at each eps equals the per-eps
    definition (C&W's closest adversarial projected into that eps ball, then classified)."""
    from audit.robustness._evaluate import _batched, sample_rows

    eps = (0.0, 0.3, 1.0)
    r = evaluate(credit_model, credit_small, norm="l2", attacks=("autoattack", "cw"), n=32, eps=eps, steps=4,
                 min_perturbation_n=0, bootstrap=0, impute_k=(), sanity=False, examples_per_eps=0, seed=3)
    m = r.metrics()
    assert set(r.autoattack_share) == {"apgd-ce", "apgd-t", "fab-t"}  # no Square for L2
    for j, e in enumerate(r.eps):
        total = sum(share[j] for share in r.autoattack_share.values())
        assert total == pytest.approx(m[f"attack_success_rate:autoattack@{e:g}"], abs=1e-12)
        assert m[f"autoattack_share:apgd-ce@{e:g}"] == r.autoattack_share["apgd-ce"][j]
    assert all(share[0] == 0 for share in r.autoattack_share.values())
    assert sum(share[-1] for share in r.autoattack_share.values()) > 0
    # C&W: the old per-eps computation, by hand, on the same rows and batches
    part = credit_small.part("test")
    rows = sample_rows(len(part), 32, seed=3)
    x, y = part.X[rows], part.y[rows]
    np.testing.assert_array_equal(r.labels, y)
    dom = domain_for(credit_small)
    settings = {"steps": 6, "restarts": 1, "apgd_steps": 4, "square_queries": 500}
    clean = credit_model.predict(x) == y
    for j, e in enumerate(eps):
        adv = _batched(lambda xb, yb, kb: ATTACKS["cw"].run(credit_model.apply, credit_model.params, xb, yb, eps=e,
                                                            norm="l2", domain=dom, key=kb, settings=settings),
                       x, y, 32, KEY)
        old = clean & (credit_model.predict(adv) == y) if e > 0 else clean
        assert r.curve("cw").accuracy[j] == pytest.approx(old.mean(), abs=1e-12)
    # and it reads off the distances: a row at C&W distance <= eps is never robust there
    d = r.cw_distance
    assert d.shape == (32,) and (d[~clean] == 0).all()
    _, dist, _ = cw_l2(credit_model.apply, credit_model.params, x, y, steps=4, domain=dom)
    np.testing.assert_allclose(np.nan_to_num(d, nan=np.inf), dist, rtol=1e-6)
    for j, e in enumerate(eps):
        within = clean & (np.nan_to_num(d, nan=np.inf) <= e)
        assert r.curve("cw").accuracy[j] <= (clean & ~within).mean() + 1e-12
    assert m["median_cw_distance"] == pytest.approx(np.median(np.nan_to_num(d, nan=np.inf)))
    assert m["cw_found_rate"] == pytest.approx(np.isfinite(d).mean())
    assert RobustnessReport.from_dict(r.to_dict()) == r
