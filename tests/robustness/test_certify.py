"""IBP and randomized smoothing: soundness by sampling and by attack, oracles, the certify table."""

from __future__ import annotations

import json
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from scipy import stats

from audit.errors import AuditInputError
from audit.models import Model, train
from audit.robustness import (CertificationReport, box_domain, certify, certify_smoothed, domain_for, ibp_bounds,
                              ibp_margins, pgd, predict_smoothed)
from audit.robustness._ibp import eps_box
from audit.robustness._smoothing import clopper_pearson_lower
from audit.results import to_jsonable


@pytest.fixture(scope="module", params=[None, "layer", "batch"])
def mlp(request, credit_small):
    return train("mlp", credit_small, epochs=2, widths=(16, 8), norm=request.param, progress=False, seed=0)


def _sample_box(lo, hi, draws, seed):
    rng = np.random.default_rng(seed)
    u = rng.uniform(size=(draws,) + lo.shape)
    corners = rng.integers(0, 2, size=(draws,) + lo.shape)
    u = np.where(rng.uniform(size=(draws, 1) + (1,) * (lo.ndim - 1)) < 0.5, u, corners)  # half at vertices
    return (lo + u * (hi - lo)).astype(np.float32)


def _contained(model, lo, hi, draws=32, seed=0):
    blo, bhi = ibp_bounds(model, lo, hi)
    z = np.stack([model.logits(p) for p in _sample_box(lo, hi, draws, seed)])
    tol = 1e-4 * (1 + np.abs(z).max())
    return (z >= blo - tol).all() and (z <= bhi + tol).all(), blo, bhi


def test_ibp_is_exact_on_a_point(mlp, credit_small, digits_cnn, digits):
    for model, x in ((mlp, credit_small.test.X[:20]), (digits_cnn, digits.test.X[:20])):
        lo, hi = ibp_bounds(model, x, x)
        np.testing.assert_allclose(lo, model.logits(x), atol=2e-4, rtol=1e-4)
        np.testing.assert_allclose(hi, model.logits(x), atol=2e-4, rtol=1e-4)


@pytest.mark.parametrize("eps", [0.01, 0.3])
def test_ibp_bounds_contain_sampled_logits_mlp(mlp, credit_small, eps):
    x = credit_small.test.X[:40]
    ok, lo, hi = _contained(mlp, x - eps, x + eps)
    assert ok
    assert (hi - lo).min() > 0


def test_ibp_bounds_contain_sampled_logits_cnn(digits_cnn, digits):
    x = digits.test.X[:30]
    ok, lo, hi = _contained(digits_cnn, np.clip(x - 0.02, 0, 1), np.clip(x + 0.02, 0, 1))
    assert ok


def test_ibp_margin_bounds_the_attack(digits_cnn, digits):
    """PGD on the margin loss finds the smallest margin it can: never below the IBP lower bound,
    and an example IBP certifies is never fooled."""
    x, y = digits.test.X[:64], digits.test.y[:64]
    domain = domain_for(digits)
    for eps in (0.002, 0.01):
        bound = ibp_margins(digits_cnn, x, y, eps=eps, domain=domain)
        adv = np.asarray(pgd(digits_cnn.apply, digits_cnn.params, x, y, eps=eps, steps=20, loss="margin",
                             domain=domain, key=jax.random.key(0)))
        z = digits_cnn.logits(adv)
        margin = z[np.arange(len(y)), y] - np.where(np.eye(10, dtype=bool)[y], -np.inf, z).max(axis=1)
        assert (margin >= bound - 1e-4).all()
        assert (digits_cnn.predict(adv)[bound > 0] == y[bound > 0]).all()
    assert (ibp_margins(digits_cnn, x, y, eps=0.002, domain=domain) > 0).any()  # not vacuous


def test_elided_margin_is_at_least_the_logit_bound(mlp, credit_small):
    x, y = credit_small.test.X[:50], credit_small.test.y[:50]
    lo, hi = ibp_bounds(mlp, x - 0.05, x + 0.05)
    naive = lo[np.arange(len(y)), y] - hi[np.arange(len(y)), 1 - y]
    assert (ibp_margins(mlp, x, y, eps=0.05) >= naive - 1e-5).all()


def test_eps_box_respects_the_domain_and_mutable_mask():
    dom = box_domain((4,), lower=0.0, upper=1.0, mutable=np.array([1, 1, 0, 1]))
    x = jnp.asarray([[0.05, 0.5, 0.5, 0.99]])
    lo, hi = eps_box(x, 0.1, dom)
    np.testing.assert_allclose(lo, [[0.0, 0.4, 0.5, 0.89]], atol=1e-6)
    np.testing.assert_allclose(hi, [[0.15, 0.6, 0.5, 1.0]], atol=1e-6)


def test_ibp_walks_an_nnx_sequential_and_names_unsupported_layers():
    seq = nnx.Sequential(nnx.Linear(5, 8, rngs=nnx.Rngs(0)), jax.nn.relu, nnx.Linear(8, 3, rngs=nnx.Rngs(1)))
    model = Model.from_nnx(seq, input_shape=(5,), class_names=("a", "b", "c"))
    x = np.random.default_rng(0).normal(size=(16, 5)).astype(np.float32)
    blo, bhi = ibp_bounds(model, x - 0.1, x + 0.1, module=seq)
    z = np.stack([model.logits(p) for p in _sample_box(x - 0.1, x + 0.1, 16, 1)])
    assert (z >= blo - 1e-5).all() and (z <= bhi + 1e-5).all()
    y = np.zeros(16, np.int32)  # without module=: the jaxpr interpreter, same bounds as the layer walk
    np.testing.assert_allclose(ibp_margins(model, x, y, eps=0.1), ibp_margins(model, x, y, eps=0.1, module=seq),
                               rtol=1e-5, atol=1e-5)
    tanh = nnx.Sequential(nnx.Linear(5, 8, rngs=nnx.Rngs(0)), jax.nn.tanh, nnx.Linear(8, 3, rngs=nnx.Rngs(1)))
    with pytest.raises(AuditInputError, match=r"layer layers\[1\] \(tanh\)"):
        ibp_margins(model, x, np.zeros(16, np.int32), eps=0.1, module=tanh)
    attention = nnx.Sequential(nnx.MultiHeadAttention(2, 4, rngs=nnx.Rngs(0), decode=False))
    with pytest.raises(AuditInputError, match=r"layers\[0\] \(MultiHeadAttention\)"):
        ibp_margins(model, x, np.zeros(16, np.int32), eps=0.1, module=attention)


# ---- randomized smoothing ---------------------------------------------------------------------
def test_clopper_pearson_matches_scipy_exact_interval():
    for k, n in ((0, 50), (37, 50), (990, 1000), (1000, 1000)):
        low = scipy_low = clopper_pearson_lower(np.array([k]), n, 0.01)[0]
        if k > 0:
            scipy_low = stats.binomtest(k, n).proportion_ci(confidence_level=0.98, method="exact").low
        assert low == pytest.approx(scipy_low, abs=1e-10)


def test_smoothing_radius_on_a_linear_model_is_sound_and_tight(linear_model):
    """A smoothed linear classifier is the classifier itself; its exact radius is the distance
    to the hyperplane |w.x + b| / |w|. Certificates must stay below it and come close."""
    w, b = np.asarray(linear_model.params["w"]), float(linear_model.params["b"])
    x = (np.random.default_rng(0).normal(size=(150, 5)) * 0.3).astype(np.float32)
    cert = certify_smoothed(linear_model, x, sigma=0.5, n0=100, n=10_000, alpha=0.001, seed=0)
    dist = np.abs(x @ w + b) / np.linalg.norm(w)
    ok = cert.prediction >= 0
    assert ok.mean() > 0.8
    assert (cert.prediction[ok] == linear_model.predict(x)[ok]).all()
    assert (cert.radius[ok] <= dist[ok] + 1e-3).mean() >= 0.99  # alpha = 0.001 per example
    assert np.median(dist[ok] - cert.radius[ok]) < 0.05  # not vacuous


def test_smoothing_certificates_hold_by_sampling(digits_cnn, digits):
    """No point sampled within the certified radius changes the smoothed class."""
    x = digits.test.X[:24]
    cert = certify_smoothed(digits_cnn, x, sigma=0.25, n0=64, n=1000, alpha=0.001, seed=1)
    idx = np.flatnonzero(cert.prediction >= 0)
    assert idx.size >= 10 and np.median(cert.radius[idx]) > 0.1
    rng = np.random.default_rng(0)
    d = rng.normal(size=(3,) + x[idx].shape)
    d /= np.linalg.norm(d.reshape(3, len(idx), -1), axis=2).reshape(3, len(idx), 1, 1, 1)
    for draw in d:
        pts = (x[idx] + draw * cert.radius[idx].reshape(-1, 1, 1, 1) * 0.95).astype(np.float32)
        after = predict_smoothed(digits_cnn, pts, sigma=0.25, n=1000, alpha=0.001, seed=2)
        held = after[after >= 0] == cert.prediction[idx][after >= 0]
        assert held.all()


def test_smoothing_is_seeded_and_batch_independent(digits_cnn, digits):
    x = digits.test.X[:7]
    a = certify_smoothed(digits_cnn, x, sigma=0.25, n0=32, n=300, seed=3)
    b = certify_smoothed(digits_cnn, x, sigma=0.25, n0=32, n=300, seed=3, batch_size=3)
    c = certify_smoothed(digits_cnn, x, sigma=0.25, n0=32, n=300, seed=4)
    np.testing.assert_array_equal(a.count, b.count)
    np.testing.assert_array_equal(a.radius, b.radius)
    assert not np.array_equal(a.count, c.count)


def test_class_counts_are_the_first_n_draws_and_compile_once(linear_model):
    """Row i's counts are the predictions on exactly its first n draws from fold_in(key, i) (the
    reference draws them in one array of n), for n below, at and above a chunk; the selection and
    estimation sample counts share one compiled counter."""
    from audit.robustness import class_counts
    from audit.robustness._smoothing import _count

    x = (np.random.default_rng(1).normal(size=(5, 5)) * 0.3).astype(np.float32)
    key = jax.random.key(11)
    before = _count._cache_size()
    for n in (1, 100, 128, 300):
        got = class_counts(linear_model, x, sigma=0.5, n=n, key=key)
        for i in range(len(x)):
            row = jax.random.fold_in(key, i)
            chunks = [jax.random.normal(jax.random.fold_in(row, c), (128, 5)) for c in range(-(-n // 128))]
            pts = x[i] + 0.5 * np.concatenate(chunks)[:n]
            np.testing.assert_array_equal(got[i], np.bincount(linear_model.predict(pts), minlength=2))
    assert _count._cache_size() - before == 1


def test_smoothed_attack_takes_a_budget_per_row_in_fixed_batches(digits_cnn, digits):
    """certify attacks every (eps, row) pair in one call: each row stays in its own ball and the
    domain, the result is seeded, and a budget of 0 leaves the row where it is."""
    from audit.robustness import attack_smoothed

    x, y = digits.test.X[:7], digits.test.y[:7]
    eps = np.array([0.0, 0.02, 0.05, 0.1, 0.02, 0.05, 0.1], np.float32)
    dom = domain_for(digits)
    kw = dict(norm="linf", sigma=0.25, domain=dom, samples=2, steps=3, seed=5)
    a = attack_smoothed(digits_cnn, x, y, eps=eps, batch_size=3, **kw)
    b = attack_smoothed(digits_cnn, x, y, eps=eps, batch_size=3, **kw)
    np.testing.assert_array_equal(a, b)
    dist = np.abs(a - x).reshape(len(x), -1).max(axis=1)
    assert (dist <= eps + 1e-6).all() and dist[0] == 0.0
    assert (dist[1:] >= 0.5 * eps[1:]).all()  # the attack moves (sign steps reach the ball's faces)
    assert a.min() >= 0.0 and a.max() <= 1.0


def test_smoothing_bad_input(digits_cnn, digits):
    with pytest.raises(AuditInputError, match="sigma"):
        certify_smoothed(digits_cnn, digits.test.X[:2], sigma=0.0)
    with pytest.raises(AuditInputError, match="alpha"):
        certify_smoothed(digits_cnn, digits.test.X[:2], alpha=0.7)
    with pytest.raises(AuditInputError, match="shape"):
        certify_smoothed(digits_cnn, digits.test.X[:2, :4])


# ---- the analyzer -----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def report(digits_cnn, digits):
    return certify(digits_cnn, digits, eps=(0.0, 0.003, 0.03), n=32, steps=5, square_queries=50, n0=32,
                   n_samples=200, sigma=0.1, smoothing_attack_steps=3, smoothing_attack_samples=4, seed=0)


def test_certify_table_is_consistent(report):
    acc = report.accuracy
    assert set(acc) == {"clean", "fgsm", "pgd", "apgd", "square", "worst_case", "ibp", "smoothing"}
    for column in ("fgsm", "pgd", "apgd", "square", "worst_case"):
        assert (acc["ibp"] <= acc[column] + 1e-12).all()
    assert acc["ibp"][0] == pytest.approx(acc["clean"][0])
    assert acc["ibp"][1] > 0  # a tiny eps is provable for this CNN
    assert (np.diff(acc["ibp"]) <= 0).all() and (np.diff(acc["smoothing"]) <= 0).all()
    statuses = {f.id: f.status for f in report.findings}
    assert statuses["certified_le_empirical:ibp"] == "pass"
    assert statuses["certified_le_empirical:smoothing"] == "pass"
    m = report.metrics()
    assert m["certified_accuracy:ibp@0.003"] == acc["ibp"][1]
    assert m["robust_accuracy@0.03"] == acc["worst_case"][2]
    assert m["certification_gap:ibp@0.03"] == pytest.approx(acc["worst_case"][2] - acc["ibp"][2])
    assert 0 <= m["smoothing_abstain_rate"] <= 1
    assert report.radius_scale == pytest.approx(8.0)  # sqrt(64) inputs: linf eps -> L2 radius


def test_certify_round_trip(report):
    again = CertificationReport.from_dict(json.loads(json.dumps(to_jsonable(report.to_dict()))))
    assert again == report
    assert again.metrics() == report.metrics()
    assert again.labels.dtype.kind == "i" and again.smoothing_prediction.dtype.kind == "i"
    np.testing.assert_array_equal(again.labels, report.labels)


def test_certify_bad_input(digits_cnn, digits, linear_model):
    with pytest.raises(AuditInputError, match="IBP bounds an L-inf box"):
        certify(digits_cnn, digits, norm="l2", methods=("ibp", "smoothing"))
    with pytest.raises(AuditInputError, match="methods"):
        certify(digits_cnn, digits, methods=("zonotope",))
    tanh = nnx.Sequential(nnx.Linear(5, 8, rngs=nnx.Rngs(0)), jax.nn.tanh, nnx.Linear(8, 2, rngs=nnx.Rngs(1)))
    from audit import datasets

    with pytest.raises(AuditInputError, match=r"layers\[1\] \(tanh\)"):
        certify(linear_model, datasets.load("credit", n=200, seed=0), module=tanh)


def test_certify_defaults_to_the_methods_that_apply(linear_model):
    from audit import datasets

    data = datasets.load("credit", n=300, seed=0)
    x = np.zeros((1, *data.input_shape), np.float32)
    small = dict(eps=(0.0, 0.05), n=16, steps=2, attacks=("fgsm",), n0=8, n_samples=32, smoothing_attack_steps=0)
    linear = Model.from_function(lambda p, v: v[:, :2] @ p, jnp.eye(2), input_shape=data.input_shape,
                                 class_names=data.class_names)  # no zoo architecture: IBP reads its jaxpr
    assert "ibp" in certify(linear, data, **small).accuracy
    model = Model.from_function(lambda p, v: jnp.sin(v[:, :2] @ p), jnp.eye(2), input_shape=data.input_shape,
                                class_names=data.class_names)  # sin has no interval rule
    assert model.predict(x).shape == (1,)
    report = certify(model, data, **small)
    assert "ibp" not in report.accuracy and "smoothing" in report.accuracy
    skipped = {f.id: f for f in report.findings}["ibp_skipped"]
    assert skipped.status == "warn" and "'sin'" in skipped.message
    l2 = certify(model, data, norm="l2", **small)  # IBP does not apply to L2 balls: no warning
    assert "ibp" not in l2.accuracy and "ibp_skipped" not in {f.id for f in l2.findings}
    with pytest.raises(AuditInputError, match="primitive 'sin'"):
        certify(model, data, methods=("ibp",), **small)  # asked for explicitly: an error


def test_certify_figures_and_registry(report):
    from matplotlib.figure import Figure

    from audit.pipeline._registry import ANALYZERS, check_settings
    from audit.render.figures import certify as cfig

    figures = cfig.certify_figures(report)
    assert len(figures) == 2 and all(isinstance(f, Figure) for _, f in figures)
    (table,) = cfig.certification_tables(report)  # the per-eps numbers as an HTML table, not a picture
    columns = [c for c in report.columns if c != "clean"]
    assert len(table["columns"]) == len(columns) and len(table["rows"]) == len(report.eps)
    for row, (label, cells) in zip(report.table(), table["rows"]):
        assert label == f"eps {row['eps']:g}"
        assert [t for t, _ in cells] == [f"{row[c]:.3f}" for c in columns]
        assert not any(marked for _, marked in cells)  # sound certificates: nothing above the attacks
    for name, result in (("certify", CertificationReport), ):
        spec = ANALYZERS[name]
        assert spec.result is result and spec.function is certify
    check_settings("certify", {"eps": [0.0, 0.01], "sigma": 0.5, "methods": ["smoothing"]}, lambda k: k)
    with pytest.raises(AuditInputError, match="unknown setting"):
        check_settings("certify", {"sigmaa": 0.5}, lambda k: k)


def test_certify_attacks_the_rows_evaluate_attacks(credit_model, credit_small):
    """certify and evaluate share one sampler and one attack stage: with the same seed, n,
    attacks and settings, their empirical robust accuracies are the same numbers."""
    from audit.robustness import evaluate
    kw = dict(eps=(0.0, 0.1, 0.3), attacks=("fgsm", "pgd"), n=120, steps=5, seed=2)
    cert = certify(credit_model, credit_small, methods=("ibp",), **kw)
    rob = evaluate(credit_model, credit_small, bootstrap=0, min_perturbation_n=0, impute_k=(), sanity=False, **kw)
    np.testing.assert_array_equal(cert.accuracy["worst_case"], rob.curve("ensemble").accuracy)
    for a in ("fgsm", "pgd"):
        np.testing.assert_array_equal(cert.accuracy[a], rob.curve(a).accuracy)
    assert cert.accuracy["clean"][0] == rob.clean_accuracy
    assert (cert.accuracy["ibp"] <= cert.accuracy["worst_case"] + 1e-12).all()
