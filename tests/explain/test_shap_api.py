"""SHAP public surface: background, input checks, ShapResult JSON round trip, shap interop, figures."""

from __future__ import annotations

import json

import matplotlib
import numpy as np
import pytest
from matplotlib.figure import Figure

from audit import explain
from audit.errors import AuditInputError
from audit.explain import ShapResult, _players
from audit.render.figures import shap as shap_figures
from audit.results import to_jsonable


@pytest.fixture(scope="module")
def credit_result(credit_small, credit_model):
    bg = explain.background(credit_small, size=20, seed=0)
    return explain.compute_shap(credit_model, credit_small.test.X[:30], bg, data=credit_small)


# ---- background ---------------------------------------------------------------------------
def test_background_sample_is_seeded_and_from_the_training_rows(credit_small):
    a = explain.background(credit_small, size=40, seed=1)
    b = explain.background(credit_small, size=40, seed=1)
    c = explain.background(credit_small, size=40, seed=2)
    assert a.shape == (40, 24) and a.dtype == np.float32
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    train = {r.tobytes() for r in credit_small.train.X}
    assert all(r.tobytes() in train for r in a)
    assert len(explain.background(credit_small.select(np.arange(30)), size=100)) == 30


def test_background_kmeans_gives_valid_one_hot_blocks(credit_small):
    centres = explain.background(credit_small, size=12, method="kmeans", seed=0)
    assert centres.shape == (12, 24)
    np.testing.assert_array_equal(centres, explain.background(credit_small, size=12, method="kmeans", seed=0))
    mask = credit_small.encoding.categorical_mask
    for group in credit_small.feature_groups:
        if mask[group[0]]:
            block = centres[:, list(group)]
            assert set(np.unique(block)) <= {0.0, 1.0} and (block.sum(1) == 1).all()
    # numeric columns are cluster means: inside the data range, not all equal
    num = centres[:, ~mask]
    assert (num.min(0) >= credit_small.X[:, ~mask].min(0) - 1e-5).all() and num.std(0).min() > 0


@pytest.mark.parametrize("kwargs, match", [
    ({"size": 0}, "positive integer"), ({"method": "median"}, "sample"), ({"size": 2.5}, "positive")])
def test_background_bad_arguments(credit_small, kwargs, match):
    with pytest.raises(AuditInputError, match=match):
        explain.background(credit_small, **kwargs)


# ---- input checks -------------------------------------------------------------------------
def test_bad_input_raises_one_clear_error(credit_small, credit_model, digits_cnn):
    X, bg = credit_small.test.X[:2], explain.background(credit_small, size=10)
    cases = [
        (dict(background=bg[:, :23]), r"background has shape \(10, 23\); this model takes \(n, 24\)"),
        (dict(X=X[0]), r"pass x\[None\]"),
        (dict(X=np.full((1, 24), np.nan)), "NaN"),
        (dict(background=bg[:0]), "no rows"),
        (dict(method="kernel", n_samples=5), "n_samples >= 20"),
        (dict(method="exact", n_samples=100), "takes no n_samples"),
        (dict(method="shapley"), "choose one of"),
        (dict(backend="torch"), "choose one of"),
        (dict(output="odds"), "choose one of"),
        (dict(target=2), r"class id in \[0, 2\)"),
        (dict(method="permutation"), "backend='shap'"),
        (dict(method="gradient", backend="shap"), "GradientExplainer"),
        (dict(players="patches"), "needs image inputs"),
        (dict(players="raw", data=None), "players='raw' needs data"),
        (dict(players="inputs", method="exact"), None),  # 24 inputs: too many for exact
        (dict(seed="0"), "seed"),
        (dict(seed=-1), "seed=-1 must be a non-negative integer"),
    ]
    for overrides, match in cases:
        kwargs = dict(X=X, background=bg, data=credit_small)
        kwargs.update(overrides)
        with pytest.raises(AuditInputError, match=match or "at most 20 players"):
            explain.shap_values(credit_model, kwargs.pop("X"), kwargs.pop("background"), **kwargs)
    with pytest.raises(AuditInputError, match="data 'credit' has inputs of shape"):
        explain.shap_values(digits_cnn, np.zeros((1, 8, 8, 1)), np.zeros((2, 8, 8, 1)), data=credit_small)


# ---- results ------------------------------------------------------------------------------
def test_result_json_round_trip_is_exact(credit_result):
    d = json.loads(json.dumps(to_jsonable(credit_result.to_dict())))
    back = ShapResult.from_dict(d)
    for field in ("values", "base_values", "data", "class_index", "model_output"):
        np.testing.assert_array_equal(getattr(back, field), getattr(credit_result, field))
    assert back.display_data.tolist() == credit_result.display_data.tolist()
    assert back.players == credit_result.players and back.provenance == credit_result.provenance
    assert back.feature_names == credit_result.feature_names and back.metrics() == credit_result.metrics()
    with pytest.raises(AuditInputError, match="schema"):
        ShapResult.from_dict({**d, "schema": 99})


def test_metrics_findings_and_importance(credit_result):
    m = credit_result.metrics()
    imp = credit_result.importance()
    assert list(imp) == list(explain.global_importance(credit_result.to_explanation()))
    assert list(imp.values()) == sorted(imp.values(), reverse=True)
    for name, value in imp.items():
        j = credit_result.feature_names.index(name)
        assert value == pytest.approx(np.abs(credit_result.values[:, j]).mean(), rel=1e-12)
        assert m[f"shap.importance.{name}"] == value
    assert m["shap.examples"] == 30 and m["shap.efficiency_gap"] < 1e-6
    assert m["shap.top_feature_share"] == pytest.approx(max(imp.values()) / sum(imp.values()))
    assert [f.status for f in credit_result.findings] == ["pass"]
    assert credit_result.provenance.method == "shap.exact"
    assert credit_result.provenance.settings["players"] == "raw"


def test_explanation_interop_and_shap_plots(credit_result):
    expl = credit_result.to_explanation()
    assert expl.shape == (30, 10) and list(expl.feature_names) == list(credit_result.feature_names)
    back = ShapResult.from_explanation(expl, credit_result.provenance, model_output=credit_result.model_output)
    np.testing.assert_array_equal(back.values, credit_result.values)
    np.testing.assert_array_equal(back.base_values, credit_result.base_values)
    assert (back.class_index == -1).all()  # class_index=None in the settings: not recorded
    import matplotlib.pyplot as plt
    import shap

    matplotlib.use("Agg")
    for plot in (lambda: shap.plots.waterfall(expl[0], show=False), lambda: shap.plots.beeswarm(expl, show=False),
                 lambda: shap.plots.bar(expl, show=False)):
        plot()
        plt.close("all")


def test_display_data_decodes_raw_columns(credit_small, credit_result):
    frame_row = credit_small.raw[credit_small.splits["test"][0]]
    j = credit_result.feature_names.index("employment")
    col = credit_small.encoding.columns[j]
    assert credit_result.display_data[0, j] == col.categories[int(frame_row[j])]
    k = credit_result.feature_names.index("income")
    assert credit_result.data[0, k] == pytest.approx(frame_row[k], rel=1e-5)


def test_image_patches_and_input_attributions(digits, digits_cnn):
    default = _players.resolve(digits_cnn, digits, None, None, "auto")  # a 4x4 grid of 2x2 patches
    assert default.kind == "patches" and default.n == 16 and default.names[5] == "patch[2:4,2:4]"
    bg = explain.background(digits, size=10, seed=0)
    res = explain.compute_shap(digits_cnn, digits.test.X[:2], bg, patch=3)  # 3x3 grid, edges cut
    assert res.values.shape == (2, 9) and res.provenance.method == "shap.exact"
    assert res.feature_names[-1] == "patch[6:8,6:8]" and res.provenance.settings["patch"] == 3
    pix = res.input_attributions()
    assert pix.shape == (2, 8, 8, 1)
    np.testing.assert_allclose(pix.sum((1, 2, 3)), res.values.sum(1), atol=1e-12)
    np.testing.assert_allclose(pix[:, :3, :3, 0].sum((1, 2)), res.values[:, 0], atol=1e-12)
    np.testing.assert_allclose(res.data[:, 0], digits.test.X[:2, :3, :3, 0].mean((1, 2)), atol=1e-6)
    np.testing.assert_allclose(res.efficiency_gap, 0.0, atol=1e-6)


# ---- figures ------------------------------------------------------------------------------
def test_figures_are_pure_and_show_the_top_features(credit_result):
    import matplotlib.pyplot as plt

    before = plt.get_fignums()
    top = list(credit_result.importance())[:4]
    fig = shap_figures.bar(credit_result, max_display=4)
    assert isinstance(fig, Figure)
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert labels == top + ["sum of 6 other features"]
    heights = [p.get_width() for p in fig.axes[0].patches]
    assert heights[:4] == pytest.approx(list(credit_result.importance().values())[:4])
    fig = shap_figures.beeswarm(credit_result, max_display=4)
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == top
    assert sum(len(c.get_offsets()) for c in fig.axes[0].collections) == 4 * 30
    fig = shap_figures.waterfall(credit_result, 3, max_display=5)
    bars = fig.axes[0].patches
    assert len(bars) == 6
    end = bars[-1].get_x() + bars[-1].get_width()  # the walk ends at f(x)
    assert end == pytest.approx(credit_result.model_output[3], abs=1e-6)
    assert bars[0].get_x() == pytest.approx(credit_result.base_values[3])
    with pytest.raises(IndexError):
        shap_figures.waterfall(credit_result, 30)
    assert plt.get_fignums() == before  # no pyplot state touched


def test_class_index_per_row_equals_one_call_per_class(digits, digits_cnn):
    bg = explain.background(digits, size=5, seed=0)
    X = digits.test.X[:4]
    wanted = np.array([3, 0, 3, 7])
    res = explain.compute_shap(digits_cnn, X, bg, patch=4, target=wanted)
    np.testing.assert_array_equal(res.class_index, wanted)
    for c in (0, 3, 7):
        rows = np.flatnonzero(wanted == c)
        one = explain.compute_shap(digits_cnn, X[rows], bg, patch=4, target=c)
        np.testing.assert_allclose(res.values[rows], one.values, atol=1e-12)
        np.testing.assert_allclose(res.base_values[rows], one.base_values, atol=1e-12)
    back = ShapResult.from_explanation(res.to_explanation(), res.provenance)
    np.testing.assert_array_equal(back.class_index, wanted)  # recorded in the provenance
    with pytest.raises(AuditInputError, match="one such id per row"):
        explain.compute_shap(digits_cnn, X, bg, patch=4, target=[1, 2])
