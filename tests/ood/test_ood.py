"""OOD scores against references (scikit-learn, closed forms), the shifts, and the analyzer."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.special import logsumexp
from sklearn.covariance import EmpiricalCovariance
from sklearn.metrics import roc_auc_score, roc_curve
from sklearn.neighbors import NearestNeighbors

from audit import ood
from audit.errors import AuditInputError
from audit.ood._stats import weighted_auroc
from audit.results import to_jsonable


def test_auroc_and_fpr95_equal_scikit_learn():
    rng = np.random.default_rng(0)
    a, b = np.round(rng.normal(size=400), 1), np.round(rng.normal(0.7, 1.0, size=300), 1)  # with ties
    labels, scores = np.r_[np.zeros(400), np.ones(300)], np.r_[a, b]
    assert ood.auroc(a, b) == pytest.approx(roc_auc_score(labels, scores), abs=1e-12)
    fpr, tpr, _ = roc_curve(labels, scores)
    assert ood.fpr_at_tpr(a, b) == pytest.approx(fpr[np.searchsorted(tpr, 0.95, side="left")], abs=1e-12)


def test_bootstrap_replicates_equal_auroc_of_the_resampled_rows():
    rng = np.random.default_rng(1)
    a, b = np.round(rng.normal(size=50), 1), np.round(rng.normal(0.5, 1.0, size=40), 1)
    w, v = rng.multinomial(50, np.full(50, 0.02), size=5), rng.multinomial(40, np.full(40, 0.025), size=5)
    fast = weighted_auroc(a, b, w, v)
    slow = [ood.auroc(np.repeat(a, wi), np.repeat(b, vi)) for wi, vi in zip(w, v)]
    np.testing.assert_allclose(fast, slow, atol=1e-12)


def test_mahalanobis_equals_scikit_learn_shared_covariance():
    rng = np.random.default_rng(2)
    f, y = rng.normal(size=(300, 6)), rng.integers(0, 3, 300)
    f += y[:, None] * 2.0
    m = ood.Mahalanobis.fit(f, y, 3, ridge=0.0)
    centred = f - np.stack([f[y == c].mean(0) for c in range(3)])[y]
    cov = EmpiricalCovariance(assume_centered=True).fit(centred)
    q = rng.normal(size=(20, 6))
    ref = np.min([cov.mahalanobis(q - f[y == c].mean(0)) for c in range(3)], axis=0)
    np.testing.assert_allclose(m.score(q), ref, rtol=1e-9)


def test_mahalanobis_ridge_makes_dead_features_count():
    rng = np.random.default_rng(4)
    f, y = rng.normal(size=(300, 4)), rng.integers(0, 2, 300)
    f[:, 3] = 0.0  # a unit that never fires in training
    lit = np.zeros((1, 4))
    lit[0, 3] = 1.0
    assert ood.Mahalanobis.fit(f, y, 2, ridge=0.0).score(lit)[0] < 5.0  # invisible to the pseudo-inverse
    assert ood.Mahalanobis.fit(f, y, 2).score(lit)[0] > 1e5


def test_knn_equals_nearest_neighbours_on_normalised_features():
    rng = np.random.default_rng(3)
    bank, q = rng.normal(size=(200, 5)), rng.normal(size=(30, 5))
    norm = lambda z: z / np.linalg.norm(z, axis=1, keepdims=True)
    ref = NearestNeighbors(n_neighbors=7).fit(norm(bank)).kneighbors(norm(q))[0][:, -1]
    np.testing.assert_allclose(ood.KNN.fit(bank, k=7).score(q), ref, atol=1e-7)


def test_energy_and_msp_closed_forms():
    z = np.array([[2.0, 0.0, -1.0], [0.1, 0.1, 0.1]])
    np.testing.assert_allclose(ood.energy_score(z), -logsumexp(z, axis=1))
    np.testing.assert_allclose(ood.msp_score(z), -np.exp(z).max(1) / np.exp(z).sum(1))


def test_features_are_the_last_dense_layer_input(linear_model):
    import flax.linen as nn
    import jax
    import jax.numpy as jnp

    from audit.models import Model

    class Net(nn.Module):
        @nn.compact
        def __call__(self, x):
            return nn.Dense(3)(jnp.tanh(nn.Dense(8)(x)))

    variables = Net().init(jax.random.PRNGKey(0), jnp.zeros((1, 4)))
    model = Model.from_linen(Net(), variables, input_shape=(4,), class_names=("a", "b", "c"))
    x = np.random.default_rng(0).normal(size=(5, 4)).astype(np.float32)
    p = variables["params"]["Dense_1"]  # Dense(3) is built first, so it is Dense_0
    features, source = ood.feature_function(model)
    assert source == "penultimate"
    np.testing.assert_allclose(features(x), np.tanh(x @ p["kernel"] + p["bias"]), atol=1e-6)


def test_risk_coverage_is_the_running_error_of_the_most_confident_rows():
    score = np.array([0.1, 0.4, 0.2, 0.9])
    error = np.array([0.0, 1.0, 0.0, 1.0])
    grid, risk, aurc = ood.risk_coverage(score, error, points=4)
    np.testing.assert_allclose(risk, [0.0, 0.0, 1 / 3, 0.5])
    assert aurc == pytest.approx(np.mean([0, 0, 1 / 3, 0.5]))


def test_severity_free_shifts_keep_shapes_and_range(digits):
    x = digits.test.X[:20]
    shifted = ood.image_shifts(x, name="digits", low=0.0, high=1.0, seed=0)
    assert set(shifted) == set(ood.IMAGE_SHIFTS)
    for v in shifted.values():
        assert v.shape == x.shape and v.min() >= 0.0 and v.max() <= 1.0
    np.testing.assert_allclose(shifted["inverted"], 1.0 - x, atol=1e-6)


@pytest.fixture(scope="module")
def digits_ood(digits, digits_cnn):
    return ood.evaluate(digits_cnn, digits, n=200, autoencoder_epochs=5, n_bootstrap=100,
                        shifts=["uniform_noise", "gaussian_noise", "inverted"])


def test_digits_noise_is_flagged_by_energy_and_the_report_round_trips(digits_ood):
    r = digits_ood
    assert r.separation("energy", "uniform_noise").auroc > 0.95
    assert r.separation("energy", "gaussian_noise").auroc > 0.95
    s = r.separation("energy", "uniform_noise")
    assert s.low <= s.auroc <= s.high
    m = r.metrics()
    assert m["best_auroc@uniform_noise"] == max(m[f"auroc:{d}@uniform_noise"] for d in r.detectors)
    copy = ood.OodReport.from_dict(json.loads(json.dumps(to_jsonable(r.to_dict()))))
    assert copy == r
    for name in m:
        assert any(spec.matches(name) for spec in ood.OodReport.METRICS), name


def test_autoencoder_flags_out_of_range_tabular_rows_and_groups_are_judged(credit_small, credit_model):
    r = ood.evaluate(credit_model, credit_small, n=300, autoencoder_epochs=10, n_bootstrap=50,
                     detectors=["msp", "autoencoder", "mahalanobis"], min_group_size=30)
    assert r.separation("autoencoder", "out_of_range").auroc > 0.95
    assert r.separation("mahalanobis", "out_of_range").auroc > 0.95
    msp = next(a for a in r.abstention if a.detector == "msp")
    rejected = np.mean([msp.attribute_rejection["sex"][g] * msp.attribute_sizes["sex"][g]
                        for g in msp.attribute_rejection["sex"]]) * len(msp.attribute_sizes["sex"]) / r.n_inliers
    assert rejected == pytest.approx(1 - r.coverage, abs=0.02)  # the rows rejected overall
    assert "rejection_gap:sex" in r.metrics()


def test_bad_settings_are_named():
    with pytest.raises(AuditInputError, match="detectors"):
        ood._evaluate._check(None, type("D", (), {"kind": "image", "train": range(100)})(), ["isolation_forest"],
                             (), 100, 10, 10, 0.95, 0.8, 30, 100)
    with pytest.raises(AuditInputError, match="coverage"):
        ood._evaluate._check(None, type("D", (), {"kind": "tabular", "train": range(100)})(), ["msp"],
                             (), 100, 10, 10, 0.95, 1.5, 30, 100)


def test_ood_runs_from_a_config_into_the_html_report(tmp_path, credit_small, credit_model):
    from audit import run
    from audit.pipeline import AuditConfig, AuditReport

    config = AuditConfig(name="ood", analyzers={"ood": {"n": 150, "autoencoder_epochs": 2, "n_bootstrap": 20,
                                                        "detectors": ["msp", "energy", "knn"]}},
                         policy=[{"metric": "ood.auroc:knn@out_of_range", "min": 0.5}])
    report = run(credit_model, credit_small, config, progress=False)
    path = report.to_json(str(tmp_path / "r.json"))
    assert AuditReport.load(path).sections["ood"].result == report.sections["ood"].result
    html = open(report.to_html(str(tmp_path / "r.html"))).read()
    assert "AUROC of each detector on each shift" in html and "Selective prediction" in html


def test_scores_and_auroc_equal_pytorch_ood_on_the_same_features():
    """pytorch-ood (where installed: it needs torch, a bench extra) gives the same AUROC for
    Mahalanobis, kNN and energy on the same features and logits, to 1e-6."""
    import importlib.util
    import os

    pytest.importorskip("torch")
    if importlib.util.find_spec("pytorch_ood") is None:
        pytest.skip("pytorch-ood is not installed (pip install -e '.[bench]')")

    spec = importlib.util.spec_from_file_location(
        "bench_ood", os.path.join(os.path.dirname(__file__), "..", "..", "bench", "ood.py"))
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    rng = np.random.default_rng(5)
    y = rng.integers(0, 3, 600)
    f_train = rng.normal(size=(600, 8)) + y[:, None]
    f_in, f_out = rng.normal(size=(200, 8)) + 1.0, rng.normal(1.0, 2.5, size=(200, 8))
    logits_in, logits_out = rng.normal(size=(200, 3)) * 3, rng.normal(size=(200, 3))
    rows = bench.against_pytorch_ood(bench.load_pytorch_ood(), f_train, y, f_in, f_out, logits_in, logits_out, 3,
                                     k=5, repeats=1)
    assert len(rows) == 3
    for row in rows:
        assert row["ours_auroc"] == pytest.approx(row["peer_auroc"], abs=1e-6), row


def test_autoencoder_initialisation_is_the_eager_one_compiled_once():
    """The jitted initialisation gives the weights eager construction with nnx.Rngs(seed) gives."""
    import jax
    from flax import nnx

    from audit.ood._autoencoder import _ConvAE, _DenseAE, _initializer

    for use_conv, size, cls in ((False, 7, _DenseAE), (True, 3, _ConvAE)):
        for seed in (0, 5):
            graphdef, init = _initializer(use_conv, size)
            eager_def, eager = nnx.split(cls(size, rngs=nnx.Rngs(seed)))
            assert graphdef == eager_def
            for a, b in zip(jax.tree.leaves(init(jax.random.key(seed))), jax.tree.leaves(eager)):
                np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
        assert init._cache_size() == 1
