"""MC dropout and deep ensembles: closed forms, seeding, and their detectors in the OOD analyzer."""

from __future__ import annotations

import json

import numpy as np
import pytest

from audit import ood
from audit.ood._uncertainty import entropy, mc_dropout_probs, mutual_information
from audit.results import to_jsonable


def test_entropy_and_mutual_information_closed_forms():
    same = np.tile(np.array([[[0.2, 0.8]]]), (4, 3, 1))
    np.testing.assert_allclose(mutual_information(same), 0.0, atol=1e-12)  # members agree: no epistemic part
    split = np.array([[[1.0, 0.0]], [[0.0, 1.0]]])  # members certain and opposite
    np.testing.assert_allclose(mutual_information(split), [np.log(2)], atol=1e-9)
    np.testing.assert_allclose(entropy(np.array([0.5, 0.5])), np.log(2))


def test_mc_dropout_is_seeded_and_stochastic(credit_small, credit_model):
    x = credit_small.test.X[:40]
    a = mc_dropout_probs(credit_model, x, samples=6, seed=0)
    assert a.shape == (6, 40, 2) and np.allclose(a.sum(-1), 1.0)
    np.testing.assert_array_equal(a, mc_dropout_probs(credit_model, x, samples=6, seed=0))
    assert not np.allclose(a, mc_dropout_probs(credit_model, x, samples=6, seed=1))
    assert a.std(axis=0).max() > 0  # dropout is on


def test_uncertainty_detectors_join_the_analyzer(credit_small, credit_model, linear_model):
    r = ood.evaluate(credit_model, credit_small, n=150, detectors=["msp"], n_bootstrap=20,
                     uncertainty=["mc_dropout", "ensemble"], mc_samples=5, ensemble_size=2,
                     ensemble_train_options={"epochs": 2})
    assert {"mc_dropout_entropy", "mc_dropout_mi", "ensemble_entropy", "ensemble_mi"} <= set(r.detectors)
    m = r.metrics()
    assert {"ece:model", "ece:mc_dropout", "ece:ensemble", "aurc:ensemble_mi"} <= set(m)
    assert ood.OodReport.from_dict(json.loads(json.dumps(to_jsonable(r.to_dict())))) == r
    for name in m:
        assert any(spec.matches(name) for spec in ood.OodReport.METRICS), name


def test_a_model_without_dropout_skips_mc_dropout_with_the_reason(credit_small, credit_model):
    plain = credit_model.replace(architecture=None)
    r = ood.evaluate(plain, credit_small, n=100, detectors=["msp"], n_bootstrap=0, uncertainty=["mc_dropout"],
                     shifts=["shuffled"])
    assert "mc_dropout_entropy" not in r.detectors
    assert any(f.id == "uncertainty:mc_dropout" and "rebuild" in f.message for f in r.findings)
    with pytest.raises(Exception, match="at most once"):
        ood.evaluate(plain, credit_small, uncertainty=["mc_dropout", "mc_dropout"])
