"""Common corruptions: severity 0 is the identity, each corruption against its closed form,
valid one-hots, the analyzer's per-class and per-group numbers against the overall ones, the
codec round trip, the pipeline and the report."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from audit.errors import AuditInputError
from audit.pipeline import AuditConfig, run
from audit.results import metric_spec
from audit.robustness import (IMAGE_CORRUPTIONS, CorruptionReport, Corrupter, corruptions)
from audit.robustness._corruptions import _warp

KEY = jax.random.key(3)


@pytest.fixture(scope="module")
def image_corrupter(digits):
    return Corrupter(digits, train_X=digits.part("train").X, domain_lower=0.0, domain_upper=1.0)


@pytest.fixture(scope="module")
def credit_corrupter(credit_sensitive):
    return Corrupter(credit_sensitive, train_X=credit_sensitive.part("train").X,
                     skip_columns=tuple(credit_sensitive.sensitive))


@pytest.fixture(scope="module")
def digits_corruptions(digits, digits_cnn):
    return corruptions(digits_cnn, digits, n=200, severities=(1, 3, 5), batch_size=100, min_group_size=15)


def test_severity_zero_changes_nothing(digits, image_corrupter, credit_sensitive, credit_corrupter):
    x = digits.X[:16]
    for name in image_corrupter.names:
        np.testing.assert_array_equal(np.asarray(image_corrupter.apply(name, 0, x, KEY)), x)
    xt = credit_sensitive.X[:16]
    assert set(credit_corrupter.names) == {"numeric_noise", "category_swap"}
    for name in credit_corrupter.names:
        np.testing.assert_array_equal(np.asarray(credit_corrupter.apply(name, 0, xt, KEY)), xt)


def test_image_corruptions_stay_in_the_domain_and_get_worse(digits, image_corrupter):
    x = digits.X[:64]
    for name in IMAGE_CORRUPTIONS:
        dist = []
        for s in range(1, 6):
            out = np.asarray(image_corrupter.apply(name, s, x, KEY))
            assert out.shape == x.shape and np.isfinite(out).all()
            assert out.min() >= 0.0 and out.max() <= 1.0, name
            dist.append(np.abs(out - x).mean())
        assert dist[0] > 0, name
        assert dist[-1] > dist[0], name  # severity 5 damages more than severity 1


def test_image_corruptions_closed_forms(image_corrupter):
    flat = np.full((4, 8, 8, 1), 0.5, np.float32)
    # Gaussian noise: the std of the level (no clipping 6 sigma away from the mid-grey)
    big = np.full((64, 8, 8, 1), 0.5, np.float32)
    noise = np.asarray(image_corrupter.apply("gaussian_noise", 1, big, KEY)) - 0.5
    assert noise.std() == pytest.approx(0.08, rel=0.05)
    assert abs(noise.mean()) < 0.005
    # blur keeps a constant image and the mean of any image (symmetric, row-stochastic kernels
    # renormalised at the edges keep constants; interior mass is preserved)
    np.testing.assert_allclose(np.asarray(image_corrupter.apply("blur", 3, flat, KEY)), flat, atol=1e-6)
    # contrast: mean + (x - mean) * c, c = 0.2 at severity 3
    rng = np.random.default_rng(0)
    x = rng.uniform(0.2, 0.8, (4, 8, 8, 1)).astype(np.float32)
    mean = x.mean(axis=(1, 2, 3), keepdims=True)
    np.testing.assert_allclose(np.asarray(image_corrupter.apply("contrast", 3, x, KEY)), mean + (x - mean) * 0.2,
                               atol=1e-6)
    # brightness: + 0.1 of the range at severity 1
    np.testing.assert_allclose(np.asarray(image_corrupter.apply("brightness", 1, x, KEY)), np.clip(x + 0.1, 0, 1),
                               atol=1e-6)
    # impulse noise: only black or white pixels change, about the level's share of them
    imp = np.asarray(image_corrupter.apply("impulse_noise", 5, big, KEY))
    changed = imp != 0.5
    assert set(np.unique(imp[changed])) <= {0.0, 1.0}
    assert changed.mean() == pytest.approx(0.27, abs=0.02)


def test_warp_is_exact_for_quarter_turns_and_whole_pixel_shifts():
    rng = np.random.default_rng(1)
    x = rng.uniform(0, 1, (2, 7, 7, 2)).astype(np.float32)
    none = np.asarray(_warp(x, np.zeros(2, np.float32), np.zeros((2, 2), np.float32), 0.0))
    np.testing.assert_allclose(none, x, atol=1e-6)
    quarter = np.asarray(_warp(x, np.full(2, np.pi / 2, np.float32), np.zeros((2, 2), np.float32), 0.0))
    ref = np.rot90(x, k=1, axes=(1, 2))
    assert np.allclose(quarter, ref, atol=1e-5) or np.allclose(quarter, np.rot90(x, k=-1, axes=(1, 2)), atol=1e-5)
    shifted = np.asarray(_warp(x, np.zeros(2, np.float32), np.tile([[2.0, -1.0]], (2, 1)).astype(np.float32), 0.0))
    np.testing.assert_allclose(shifted[:, 2:, :-1], x[:, :-2, 1:], atol=1e-6)
    assert (shifted[:, :2] == 0).all() and (shifted[:, :, -1:] == 0).all()  # uncovered: the fill


def test_tabular_corruptions_keep_one_hots_and_scale_noise(credit_sensitive, credit_corrupter):
    x = np.repeat(credit_sensitive.X, 3, axis=0)
    blocks = credit_corrupter.blocks
    assert blocks
    swapped = np.asarray(credit_corrupter.apply("category_swap", 3, x, KEY))  # share 0.2
    numeric = np.asarray(credit_corrupter.numeric) > 0
    np.testing.assert_array_equal(swapped[:, numeric], x[:, numeric])
    for idx in blocks:
        before, after = x[:, list(idx)], swapped[:, list(idx)]
        assert ((after == after.max()).sum(axis=1) == 1).all()  # still exactly one level set
        moved = (before.argmax(axis=1) != after.argmax(axis=1)).mean()
        assert moved == pytest.approx(0.2, abs=4 * np.sqrt(0.2 * 0.8 / len(x)))
    # sensitive columns are never swapped
    names = list(credit_sensitive.raw_feature_names)
    for attr in credit_sensitive.sensitive:
        if attr in names:
            cols = list(credit_sensitive.feature_groups[names.index(attr)])
            np.testing.assert_array_equal(swapped[:, cols], x[:, cols])
    noisy = np.asarray(credit_corrupter.apply("numeric_noise", 4, x, KEY))  # 0.5 std
    np.testing.assert_array_equal(noisy[:, ~numeric], x[:, ~numeric])
    ratio = (noisy - x)[:, numeric].std(axis=0) / np.asarray(credit_corrupter.spread)[numeric]
    np.testing.assert_allclose(ratio, 0.5, rtol=0.08)


def test_analyzer_numbers_agree_with_each_other(digits, digits_cnn, digits_corruptions):
    rep = digits_corruptions
    assert rep.corruptions == IMAGE_CORRUPTIONS and rep.severities == (1, 3, 5)
    # per class, weighted by class size, gives the overall accuracy
    w = rep.class_counts / rep.class_counts.sum()
    present = rep.class_counts > 0
    np.testing.assert_allclose((rep.class_accuracy[:, :, present] * w[present]).sum(axis=2), rep.accuracy, atol=1e-12)
    # the clean accuracy is the model's on the same rows; an independent recomputation of one cell
    part = digits.part("test")
    rows = np.sort(np.random.default_rng(0).choice(len(part), size=200, replace=False))
    x, y = part.X[rows], part.y[rows]
    assert rep.clean_accuracy == pytest.approx((digits_cnn.predict(x) == y).mean())
    c = Corrupter(digits, train_X=digits.part("train").X, domain_lower=0.0, domain_upper=1.0)
    k = jax.random.fold_in(jax.random.fold_in(jax.random.key(0), 4), 3)  # contrast (4th), severity 3
    preds = np.concatenate([digits_cnn.predict(np.asarray(c.apply("contrast", 3, x[s:s + 100], jax.random.fold_in(k, b))))
                            for b, s in enumerate(range(0, 200, 100))])
    assert rep.accuracy[4, 1] == pytest.approx((preds == y).mean())
    assert rep.mean_corruption_error == pytest.approx(1 - rep.accuracy.mean())
    assert rep.relative_corruption_error == pytest.approx(rep.clean_accuracy - rep.accuracy.mean())
    worst = [f for f in rep.findings if f.id == "corruptions.worst"][0]
    drops = rep.clean_accuracy - rep.accuracy.mean(axis=1)
    assert rep.corruptions[int(np.argmax(drops))] in worst.message


def test_groups_and_round_trip(credit_sensitive, credit_sensitive_model):
    rep = corruptions(credit_sensitive_model, credit_sensitive, n=300, severities=(2, 5), min_group_size=40)
    for attr in credit_sensitive.sensitive:
        gs = [g for g in rep.groups if g.attribute == attr]
        assert sum(g.n for g in gs) == rep.n
        np.testing.assert_allclose(sum(g.n * g.accuracy for g in gs) / rep.n, rep.accuracy, atol=1e-12)
    m = rep.metrics()
    assert all(metric_spec(CorruptionReport.METRICS, k) is not None for k in m)
    gap_findings = [f for f in rep.findings if f.id.startswith("corruptions.group:")]
    for f in gap_findings:  # a group under min_group_size never carries the finding
        small = [g.group for g in rep.groups if g.n < 40 and f"={g.group} (" in f.message]
        assert not small
    back = CorruptionReport.from_dict(rep.to_dict())
    assert back == rep and back.metrics() == m


def test_bad_inputs(digits, digits_cnn, credit_small, credit_model):
    with pytest.raises(AuditInputError, match="severities"):
        corruptions(digits_cnn, digits, severities=(0, 6))
    with pytest.raises(AuditInputError, match="do not apply"):
        corruptions(credit_model, credit_small, corruptions=("blur",))
    with pytest.raises(AuditInputError, match="min_group_size"):
        corruptions(digits_cnn, digits, min_group_size=0)


def test_pipeline_and_report(credit_small, credit_model, tmp_path):
    cfg = AuditConfig(analyzers={"corruptions": {"n": 150, "severities": [1, 5]}})
    report = run(credit_model, credit_small, cfg, progress=False)
    section = report.sections["corruptions"]
    assert report.metrics()["corruptions.mean_corruption_error"] == section.result.mean_corruption_error
    assert section.result.severities == (1, 5)
    html = open(report.to_html(tmp_path / "r.html")).read()
    assert "Accuracy per corruption and severity" in html
    from audit.pipeline import AuditReport

    assert AuditReport.load(report.to_json(tmp_path / "r.json")).sections["corruptions"].result == section.result


def test_corruption_figures_draw_the_report(digits_corruptions):
    from audit.render.figures import corruptions as cfig

    rep = digits_corruptions
    figs = cfig.corruption_figures(rep)
    assert len(figs) == 2  # digits have no sensitive attributes: grid and per class
    grid = cfig.corruption_grid(rep).axes[0].images[0].get_array()
    np.testing.assert_allclose(grid[:, 0], rep.clean_accuracy)
    np.testing.assert_allclose(grid[:, 1:], rep.accuracy)
    by_class = cfig.corruption_by_class(rep).axes[0].images[0].get_array()
    present = rep.class_counts > 0
    np.testing.assert_allclose(by_class, rep.class_accuracy[:, :, present].mean(axis=1))
