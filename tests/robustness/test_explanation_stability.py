"""Explanation stability under attack: 1 for identical inputs, lower under attack, predictions kept."""

from __future__ import annotations

import json
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from audit.errors import AuditInputError
from audit.robustness import ExplanationStabilityReport, domain_for, explanation_stability
from audit.robustness import _core
from audit.robustness._explanation_stability import _explanation_attack, _kernel, _step, _topk_mask
from audit.results import to_jsonable


@pytest.fixture(scope="module")
def report(digits_cnn, digits):
    return explanation_stability(digits_cnn, digits, methods=("gradient", "smoothgrad"), eps=(0.0, 0.1), n=24,
                                 pgd_steps=10, attack_steps=8, attack_samples=4, seed=0)


def test_identical_inputs_score_one(report):
    m = report.metrics()
    for method in report.methods:
        for name in ("explanation_top_k", "explanation_spearman", "explanation_attack_top_k",
                     "explanation_attack_spearman"):
            assert m[f"{name}:{method}@0"] == pytest.approx(1.0)
    assert m["label_stable_fraction@0"] == 1.0


def test_attacks_move_explanations(report):
    m = report.metrics()
    assert m["explanation_top_k:gradient@0.1"] < 0.95
    assert m["explanation_attack_top_k:gradient@0.1"] < 0.9
    assert m["explanation_attack_top_k:gradient@0.1"] < m["explanation_attack_top_k:gradient@0"]
    assert report.attack_source == {"gradient": "gradient", "smoothgrad": "gradient (transfer)"}
    stable = ~np.isnan(report.per_example_top_k["gradient"][1])
    assert stable.mean() == pytest.approx(report.stable_fraction[1])


def test_the_attack_compiles_once_for_the_whole_eps_grid(report, digits_cnn):
    # images: a host loop over jitted steps (or their pieces), whose static part is (model, method,
    # k, samples); eps 0 and 0.1 (and their keys) are arguments, not constants
    from audit.robustness import _explanation_stability as es

    sizes = [_core._jitted(f, "gradient")._cache_size() for f in (_step, es._probes, es._probe_masses, es._move)]
    assert max(sizes) == 1


def test_host_and_compiled_loops_find_the_same_points(digits_cnn, digits):
    x = jnp.asarray(digits.test.X[:8])
    t = jnp.asarray(digits_cnn.predict(digits.test.X[:8]))
    kw = dict(k=7, steps=5, samples=3)
    args = (digits_cnn.params, x, t, jnp.full((8, 1, 1, 1), 0.1), domain_for(digits), jax.random.key(1))
    host = _explanation_attack(digits_cnn.apply, "gradient", *args, host=True, **kw)
    scan = jax.jit(lambda *a: _explanation_attack(digits_cnn.apply, "gradient", *a, **kw))(*args)
    np.testing.assert_allclose(np.asarray(host), np.asarray(scan), atol=1e-5)
    assert float(jnp.abs(host - x).max()) > 0


def test_host_loop_splits_ig_probes_into_calls_of_64_gradient_rows_with_the_same_bits(digits_cnn, digits, monkeypatch):
    from audit.robustness import _explanation_stability as es

    x = jnp.asarray(digits.test.X[:8])
    t = jnp.asarray(digits_cnn.predict(digits.test.X[:8]))
    kw = dict(k=7, steps=2, samples=2)  # 32 probes x 16 IG points a step: 8 calls of 4 probes
    args = (digits_cnn.params, x, t, jnp.full((8, 1, 1, 1), 0.1), domain_for(digits), jax.random.key(1))
    calls, call = [], _core.call
    monkeypatch.setattr(_core, "call", lambda fn, *a, **k: calls.append(fn.__name__) or call(fn, *a, **k))
    split = _explanation_attack(digits_cnn.apply, "integrated_gradients", *args, host=True, **kw)
    assert calls.count("_probe_masses") == 2 * 8 and "_step" not in calls
    calls.clear()
    monkeypatch.setattr(es, "GRADIENT_ROWS", 10**6)  # one call a step
    whole = _explanation_attack(digits_cnn.apply, "integrated_gradients", *args, host=True, **kw)
    assert calls.count("_step") == 2 and "_probe_masses" not in calls
    np.testing.assert_array_equal(np.asarray(split), np.asarray(whole))
    assert float(jnp.abs(split - x).max()) > 0


def test_explanation_attack_keeps_the_prediction_and_the_ball(digits_cnn, digits):
    x = jnp.asarray(digits.test.X[:16])
    t = jnp.asarray(digits_cnn.predict(digits.test.X[:16]))
    domain = domain_for(digits)
    kern = _kernel(digits_cnn.apply, "gradient")
    adv = _explanation_attack(digits_cnn.apply, "gradient", digits_cnn.params, x, t, jnp.full((16, 1, 1, 1), 0.1),
                              domain, jax.random.key(0), k=7, steps=6, samples=4)
    assert (digits_cnn.predict(np.asarray(adv)) == np.asarray(t)).all()
    assert float(jnp.max(jnp.abs(adv - x))) <= 0.1 + 1e-6
    before = _topk_mask(kern(digits_cnn.params, x, t), 7)
    a = jnp.abs(kern(digits_cnn.params, adv, t).reshape(16, -1))
    a0 = jnp.abs(kern(digits_cnn.params, x, t).reshape(16, -1))
    mass = lambda v: jnp.sum(v * before, 1) / jnp.sum(v, 1)
    assert float(jnp.mean(mass(a))) < float(jnp.mean(mass(a0)))


def test_round_trip_and_bad_input(report, digits_cnn, digits):
    again = ExplanationStabilityReport.from_dict(json.loads(json.dumps(to_jsonable(report.to_dict()))))
    assert again == report
    with pytest.raises(AuditInputError, match="methods"):
        explanation_stability(digits_cnn, digits, methods=("lrp",))
    with pytest.raises(AuditInputError, match="k must be"):
        explanation_stability(digits_cnn, digits, k=1000)


def test_figure(report):
    from matplotlib.figure import Figure

    from audit.render.figures import certify as cfig

    [(caption, fig)] = cfig.explanation_stability_figures(report)
    assert isinstance(fig, Figure) and "top-k" in caption
