"""LIME: the lime package wrappers give lime's own numbers; the native JAX LIME is lime's
estimator (exactly, on lime's own neighbourhood) and agrees with lime end to end."""

from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from lime.lime_image import LimeImageExplainer
from lime.lime_tabular import LimeTabularExplainer

from audit.errors import AuditInputError
from audit.explain import Attribution, lime_image, lime_native, lime_tabular
from audit.explain import _lime, _lime_native
from audit.results import to_jsonable


@pytest.fixture(scope="module")
def rows(credit_small):
    return credit_small.test.raw[:10]


@pytest.fixture(scope="module")
def package(credit_model, credit_small, rows):
    return lime_tabular(credit_model, credit_small, rows, seed=0)


def _direct(model, data, rows, **kw):
    """lime used by hand, as its README does."""
    space = _lime.raw_space(model, data)
    cat = [int(j) for j in np.flatnonzero(space.categorical)]
    ex = LimeTabularExplainer(space.train, feature_names=list(space.names), categorical_features=cat,
                              discretize_continuous=False, feature_selection="none", random_state=0, **kw)
    predict = lambda r: model.predict_proba(space.encode(r))
    out = []
    for row in rows:
        label = 1  # the default explained class of a two-class model: the positive one
        ex.random_state.seed(_lime._row_seed(0, row))  # the wrapper's per-row seeding
        e = ex.explain_instance(row, predict, labels=(label,), num_features=space.n_columns)
        w = np.zeros(space.n_columns)
        for j, v in e.local_exp[label]:
            w[j] = v
        out.append((w, e.intercept[label], e.score))
    return out


def test_lime_tabular_gives_lime_packages_numbers(credit_model, credit_small, rows, package):
    direct = _direct(credit_model, credit_small, rows)
    weights = np.array([d[0] for d in direct])
    np.testing.assert_allclose(package.extras["weights"], weights, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(package.extras["intercept"], [d[1] for d in direct], rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(package.extras["score"], [d[2] for d in direct], rtol=1e-4, atol=1e-6)
    assert package.level == "raw" and package.feature_names == credit_small.raw_feature_names
    # values are the surrogate's contributions at the row: weight x lime's standardised value
    space = _lime.raw_space(credit_model, credit_small)
    stats = _lime_native.lime_statistics(space)
    scaled = np.where(space.categorical, 1.0, (rows - stats["mean"]) / stats["scale"])
    np.testing.assert_allclose(package.values, package.extras["weights"] * scaled, rtol=1e-4, atol=1e-7)
    # the local surrogate reproduces its own local prediction
    np.testing.assert_allclose(package.extras["local_prediction"],
                               package.extras["intercept"] + package.values.sum(1), rtol=1e-4, atol=1e-6)


def test_lime_tabular_explanation_does_not_depend_on_the_other_rows(credit_model, credit_small, rows, package):
    backwards = lime_tabular(credit_model, credit_small, rows[::-1], seed=0)
    np.testing.assert_array_equal(backwards.extras["weights"], package.extras["weights"][::-1])
    alone = lime_tabular(credit_model, credit_small, rows[2:3], seed=0)
    np.testing.assert_array_equal(alone.extras["weights"][0], package.extras["weights"][2])
    other = lime_tabular(credit_model, credit_small, rows[2:3], seed=1)
    assert np.abs(other.extras["weights"][0] - package.extras["weights"][2]).max() > 0


def test_native_fit_is_limes_estimator_on_limes_neighbourhood(credit_model, credit_small, rows):
    space = _lime.raw_space(credit_model, credit_small)
    cat = [int(j) for j in np.flatnonzero(space.categorical)]
    ex = LimeTabularExplainer(space.train, categorical_features=cat, discretize_continuous=False,
                              feature_selection="none", random_state=3)
    row = rows[0]
    data, inverse = ex._LimeTabularExplainer__data_inverse(row, 2000)
    scaled = (data - ex.scaler.mean_) / ex.scaler.scale_
    d = np.sqrt(((scaled - scaled[0]) ** 2).sum(1))
    probs = credit_model.predict_proba(space.encode(inverse))
    intercept, exp, score, local = ex.base.explain_instance_with_data(scaled, probs, d, 1, space.n_columns,
                                                                      feature_selection="none")
    expected = np.zeros(space.n_columns)
    for j, w in exp:
        expected[j] = w
    stats = _lime_native.lime_statistics(space)
    np.testing.assert_allclose(stats["mean"], ex.scaler.mean_, rtol=1e-6)
    np.testing.assert_allclose(stats["scale"], ex.scaler.scale_, rtol=1e-6)
    *_, fit = _lime_native._functions(space, credit_model.apply, kernel_width=0.75 * np.sqrt(space.n_columns),
                                        alpha=1.0)
    num, cat = ~space.categorical, space.categorical  # the native fit takes standardised columns x samples
    z = ((inverse[:, num] - stats["mean"][num]) / stats["scale"][num]).T
    assert np.array_equal(inverse[0], row)  # lime's sample 0 is the instance, as the native fit expects
    contrib, extras = jax.jit(fit)(jnp.asarray(z, jnp.float32), jnp.asarray(inverse[:, cat].T, jnp.int32),
                                   jnp.asarray(probs[:, 1], jnp.float32))
    np.testing.assert_allclose(np.asarray(extras["weights"]), expected, rtol=2e-3, atol=2e-4)
    assert abs(float(extras["intercept"]) - intercept) < 2e-4
    assert abs(float(extras["score"]) - score) < 2e-3


def test_native_neighbourhood_is_limes_proposal(credit_model, credit_small, rows):
    """The compact draw decodes to lime's proposal: N(0, 1) standardised numeric columns (the
    inverse CDF at bit-cell midpoints), training frequencies for categories, sample 0 at x, and
    model inputs equal to the Dataset's own encoding of the decoded rows."""
    from scipy.special import ndtri

    space = _lime.raw_space(credit_model, credit_small)
    stats = _lime_native.lime_statistics(space)
    k = np.array([0, 1, 2 ** 20, 2 ** 22 - 1, 2 ** 22, 2 ** 23 - 1], np.uint32)
    np.testing.assert_allclose(np.asarray(_lime_native.normal(jnp.asarray(k << 9 | 0x1FF))),
                               ndtri((k + 0.5) / 2 ** 23), rtol=2e-6, atol=2e-6)
    S = 200_000
    bits, picks = _lime_native.draw(np.random.default_rng(0), space, S)
    neighbourhood, at, _, logits, _ = _lime_native._functions(space, credit_model.apply, kernel_width=1.0,
                                                              alpha=1.0)
    x = rows[0]
    z, codes = map(np.asarray, jax.jit(lambda b, p, x: at(*neighbourhood(b, p), x))(bits, picks, jnp.asarray(x)))
    num, cat = ~space.categorical, space.categorical
    np.testing.assert_allclose(z[:, 0], (x[num] - stats["mean"][num]) / stats["scale"][num], rtol=1e-5)
    assert np.array_equal(codes[:, 0], x[cat])
    assert np.abs(z[:, 1:].mean(1)).max() < 4 / np.sqrt(S)
    assert np.abs(z[:, 1:].std(1) - 1).max() < 4 / np.sqrt(2 * S)
    for c, train_codes in zip(codes[:, 1:], stats["codes"].T):
        p = np.bincount(train_codes) / len(train_codes)
        f = np.bincount(c, minlength=len(p)) / c.size
        assert np.all(np.abs(f - p) < 4 * np.sqrt(p * (1 - p) / c.size) + 1e-9)
    decoded = np.empty((1000, space.n_columns))
    decoded[:, num] = z[:, :1000].T * stats["scale"][num] + stats["mean"][num]
    decoded[:, cat] = codes[:, :1000].T
    L = jax.jit(logits)(credit_model.params, jnp.asarray(z[:, :1000]), jnp.asarray(codes[:, :1000]))
    np.testing.assert_allclose(np.asarray(L).T, credit_model.logits(space.encode(decoded)), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("shared", [True, False])
def test_native_correlates_with_lime(credit_model, credit_small, rows, package, shared):
    native = lime_native(credit_model, credit_small, rows, seed=0, shared_samples=shared)
    assert np.array_equal(native.target, package.target)
    r = np.corrcoef(native.extras["weights"].ravel(), package.extras["weights"].ravel())[0, 1]
    assert r >= 0.99
    r_values = np.corrcoef(native.values.ravel(), package.values.ravel())[0, 1]
    assert r_values >= 0.985  # lime's own seed-to-seed level on these 100 values: 0.993-0.994
    np.testing.assert_allclose(native.extras["output"], package.extras["output"], rtol=1e-5, atol=1e-6)
    assert abs(native.extras["score"].mean() - package.extras["score"].mean()) < 0.05


@pytest.mark.parametrize("shared", [True, False])
def test_native_is_seeded_and_batch_independent(credit_model, credit_small, rows, shared):
    a = lime_native(credit_model, credit_small, rows, seed=1, shared_samples=shared)
    b = lime_native(credit_model, credit_small, rows, seed=1, shared_samples=shared)
    c = lime_native(credit_model, credit_small, rows, seed=2, shared_samples=shared)
    assert np.array_equal(a.values, b.values) and not np.array_equal(a.values, c.values)
    # an explanation does not depend on the other rows in the call, nor on the chunking
    alone = lime_native(credit_model, credit_small, rows[3:4], seed=1, shared_samples=shared)
    np.testing.assert_allclose(alone.values[0], a.values[3], rtol=1e-5, atol=1e-7)
    chunked = lime_native(credit_model, credit_small, rows[::-1], seed=1, shared_samples=shared, batch_size=3)
    np.testing.assert_allclose(chunked.values[::-1], a.values, rtol=1e-5, atol=1e-7)
    if not shared:  # a row's stream depends on its values only: a duplicate gets the same neighbourhood
        space = _lime.raw_space(credit_model, credit_small)
        fits = _lime_native._compiled(space, credit_model.apply, 0.75 * np.sqrt(space.n_columns), 1.0)
        compiled = fits[2]._cache_size()
        twin = lime_native(credit_model, credit_small, rows[[3, 3]], seed=1, shared_samples=False)
        np.testing.assert_allclose(twin.values[1], a.values[3], rtol=1e-5, atol=1e-7)
        assert fits[2]._cache_size() == compiled  # a new number of rows compiles nothing new
    assert lime_native(credit_model, credit_small, rows, seed=1, target=0,
                       shared_samples=shared).target.tolist() == [0] * 10


def test_lime_image_gives_lime_packages_numbers(digits, digits_cnn):
    X = digits.test.X[:2]
    res = lime_image(digits_cnn, X, num_samples=300, seed=0)
    seg = _lime.grid_segments((8, 8), 2)
    assert np.array_equal(res.extras["segments"][0], seg)
    ex = LimeImageExplainer(random_state=0)  # one explainer for both images, as the wrapper does
    for i in range(2):
        label = int(res.target[i])
        ex.random_state.seed(_lime._row_seed(0, X[i].ravel()))  # the wrapper's per-image seeding
        e = ex.explain_instance(X[i].astype(np.float64), digits_cnn.predict_proba, labels=(label,), top_labels=None,
                                hide_color=0.0, num_samples=300, batch_size=300,
                                segmentation_fn=lambda img: seg, random_seed=0)
        w = np.zeros(seg.max() + 1)
        for j, v in e.local_exp[label]:
            w[j] = v
        np.testing.assert_allclose(res.extras["segment_weights"][i], w, rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(res.values[i, ..., 0], w[seg], rtol=1e-4, atol=1e-6)
    backwards = lime_image(digits_cnn, X[::-1], num_samples=300, seed=0)  # no dependence on order
    np.testing.assert_array_equal(backwards.extras["segment_weights"], res.extras["segment_weights"][::-1])


def test_lime_results_round_trip(package):
    back = Attribution.from_dict(json.loads(json.dumps(to_jsonable(package.to_dict()))))
    assert np.array_equal(back.values, package.values) and np.array_equal(back.inputs, package.inputs)
    assert back.metrics() == package.metrics() and back.feature_names == package.feature_names


def test_bad_input(credit_model, credit_small, digits, digits_cnn, rows):
    with pytest.raises(AuditInputError, match="tabular"):
        lime_native(digits_cnn, digits, digits.test.X[:2].reshape(2, -1))
    with pytest.raises(AuditInputError, match="raw rows"):
        lime_native(credit_model, credit_small, rows[:, :3])
    bad = rows.copy()
    bad[0, list(credit_small.raw_feature_names).index("employment")] = 17
    with pytest.raises(AuditInputError, match="category codes"):
        lime_tabular(credit_model, credit_small, bad)
    with pytest.raises(AuditInputError, match="num_features"):
        lime_tabular(credit_model, credit_small, rows, num_features=0)
    with pytest.raises(AuditInputError, match="num_samples"):
        lime_native(credit_model, credit_small, rows, num_samples=1)
    with pytest.raises(AuditInputError, match="seed"):
        lime_native(credit_model, credit_small, rows, seed=-1, shared_samples=False)
    with pytest.raises(AuditInputError, match="seed=None must be a non-negative integer"):
        lime_native(credit_model, credit_small, rows, seed=None)
    with pytest.raises(AuditInputError, match="seed=-1"):
        lime_tabular(credit_model, credit_small, rows, seed=-1)
    with pytest.raises(AuditInputError, match="seed=-2"):
        lime_image(digits_cnn, digits.test.X[:1], seed=-2)
    with pytest.raises(AuditInputError, match="images"):
        lime_image(digits_cnn, digits.test.X[:2, :4])
    with pytest.raises(AuditInputError, match="segmentation"):
        lime_image(digits_cnn, digits.test.X[:1], segmentation="slic")


def test_category_thresholds_invert_the_training_frequencies():
    """A uniform 32-bit word u takes code #{k: u >= T_k}: each code's probability is within 2^-32
    of its training share, unseen codes (first, middle, last) are never drawn, and the words on
    either side of each threshold decode to the codes on either side of it."""
    counts = np.array([0, 3, 0, 5, 1, 0])
    codes = np.repeat(np.arange(6), counts)
    train = np.stack([np.linspace(-1, 1, len(codes)), codes], axis=1)
    space = _lime.RawSpace(train=train, names=("x", "c"), categorical=np.array([False, True]),
                           categories=((), tuple("abcdef")), enc_mean=np.zeros(2), enc_std=np.ones(2))
    (T,) = _lime_native.category_thresholds(space)
    edges = np.concatenate([[0], T.astype(np.int64), [2 ** 32]])
    edges = np.concatenate([edges, np.full(7 - len(edges), 2 ** 32)])  # unseen trailing codes: empty
    p = np.diff(edges) / 2 ** 32
    assert np.abs(p - counts / counts.sum()).max() <= 2.0 ** -32
    neighbourhood, *_ = _lime_native._functions(space, lambda params, x: x, kernel_width=1.0, alpha=1.0)
    words = np.array([0, 2 ** 32 - 1, *T, *(T - 1)], np.uint32)
    decoded = np.asarray(jax.jit(neighbourhood)(np.zeros((1, len(words)), np.uint32), words[None]))[1][0]
    expected = np.searchsorted(edges[1:], words.astype(np.int64), side="right")
    assert np.array_equal(decoded, expected) and set(decoded) <= {1, 3, 4}


def test_weighted_ridge_is_scikit_learns_weighted_ridge():
    """The one-pass moments about the first sample give scikit-learn's Ridge with sample weights
    (intercept fitted, not penalised) and the weighted R^2, with the instance far from the mean."""
    from sklearn.linear_model import Ridge
    from sklearn.metrics import r2_score

    rng = np.random.default_rng(0)
    d, S = 5, 3000
    X = rng.normal(size=(S, d))
    X[0] = [3.0, -2.5, 2.0, 0.5, -3.0]  # the instance, in the tails
    y = 0.9 + 0.02 * X @ rng.normal(size=d) + 0.01 * rng.normal(size=S)  # a probability near 0.9
    w = np.exp(-((X - X[0]) ** 2).sum(1) / (2 * 1.7 ** 2))
    A = np.concatenate([X, y[:, None]], axis=1).T.astype(np.float32)
    coef, intercept, score = jax.jit(lambda A, w: _lime_native.weighted_ridge(A, w, alpha=1.0))(
        A, w.astype(np.float32))
    ref = Ridge(alpha=1.0).fit(X, y, sample_weight=w)
    np.testing.assert_allclose(np.asarray(coef), ref.coef_, rtol=1e-4, atol=1e-6)
    assert abs(float(intercept) - ref.intercept_) < 1e-5
    assert abs(float(score) - r2_score(y, ref.predict(X), sample_weight=w)) < 1e-4


def test_raw_space_is_equal_by_content(credit_model, credit_small, rows):
    """Spaces built on each call compare and hash by content (so the compiled explainer is reused),
    a changed training value makes another space, and NaN equals NaN."""
    import dataclasses

    a, b = _lime.raw_space(credit_model, credit_small), _lime.raw_space(credit_model, credit_small)
    assert a is not b and a == b and hash(a) == hash(b)
    compiled = lambda space: _lime_native._compiled(space, credit_model.apply, 1.0, 1.0)
    assert compiled(a) is compiled(b)
    changed = dataclasses.replace(b, train=b.train.copy())
    changed.train[7, 0] += 1.0
    assert changed != a
    holes = dataclasses.replace(b, train=b.train.copy())
    holes.train[3, 0] = np.nan
    assert holes == dataclasses.replace(holes, train=holes.train.copy())
    # the packed results unpack to consistent fields: the surrogate's prediction at the row
    res = lime_native(credit_model, credit_small, rows[:3], num_samples=500, seed=0, shared_samples=False)
    np.testing.assert_allclose(res.extras["local_prediction"], res.extras["intercept"] + res.values.sum(1),
                               rtol=1e-5, atol=1e-6)
    proba = credit_model.predict_proba(credit_small.encoding.encode(rows[:3]))
    np.testing.assert_allclose(res.extras["output"], proba[np.arange(3), res.target], rtol=1e-5, atol=1e-6)


def test_normal_is_the_normal_quantile_at_every_cell_tested():
    """The word -> normal map equals the float64 normal quantile at the cell midpoint to 1e-6
    (relative, absolute near 0) over the 2^16 cells at each end and 2^18 random ones."""
    from scipy.special import ndtri

    k = np.concatenate([np.arange(2 ** 16), 2 ** 23 - 1 - np.arange(2 ** 16),
                        np.random.default_rng(0).integers(0, 2 ** 23, 2 ** 18)]).astype(np.uint32)
    z = np.asarray(jax.jit(_lime_native.normal)(k << 9 | 0x1FF), np.float64)
    ref = ndtri((k + 0.5) / 2 ** 23)
    assert np.all(np.abs(z - ref) <= 1e-6 * np.maximum(np.abs(ref), 1.0))
