"""A user's model names what the OOD detectors read: a method of its module or a function."""

from __future__ import annotations

import os

import numpy as np
import pytest
import yaml

from audit import ood
from audit.errors import AuditInputError
from audit.models import from_factory
from audit.pipeline import AuditConfig

HERE = os.path.join(os.path.dirname(__file__), "userfeat")
X = np.random.default_rng(0).normal(size=(7, 5)).astype(np.float32)


def _model(factory, **kw):
    return from_factory(f"feature_models:{factory}", input_shape=(5,), class_names=("a", "b", "c"),
                        python_path=[HERE], **kw)


def test_linen_method_runs_in_inference_mode_on_the_models_weights():
    model = _model("make_linen", features="embed")
    fn, source = ood.feature_function(model)
    assert source == "model:embed"
    v = model.params
    expect = np.maximum(X @ np.asarray(v["params"]["body"]["kernel"]) + np.asarray(v["params"]["body"]["bias"]), 0)
    np.testing.assert_allclose(fn(X), expect, rtol=1e-5, atol=1e-6)


def test_nnx_method_reads_the_models_own_parameters():
    model = _model("make_nnx", features="embed")
    fn, source = ood.feature_function(model)
    body = model.params["body"]
    expect = np.maximum(X @ np.asarray(body["kernel"][...]) + np.asarray(body["bias"][...]), 0)
    assert source == "model:embed"
    np.testing.assert_allclose(fn(X), expect, rtol=1e-5, atol=1e-6)


def test_function_form_logits_choice_and_python_callable():
    fn, source = ood.feature_function(_model("make_nnx", features="feature_models:squares"))
    np.testing.assert_allclose(fn(X), X ** 2, rtol=1e-6)
    plain = _model("make_nnx")
    fn, source = ood.feature_function(plain, features="logits")
    assert source == "logits"
    np.testing.assert_allclose(fn(X), plain.logits(X), rtol=1e-5, atol=1e-6)
    fn, source = ood.feature_function(plain, features=lambda x: x[:, :2])
    assert source == "callable" and fn(X).shape == (7, 2)
    assert ood.feature_function(plain)[1] == "penultimate"  # the default still finds the last dense input


def test_unknown_method_or_choice_is_one_clear_error():
    with pytest.raises(AuditInputError, match="no such method"):
        _model("make_linen", features="embedding")
    with pytest.raises(AuditInputError, match="ood features 'middle'"):
        ood.feature_function(_model("make_nnx"), features="middle")


def test_config_names_features_and_rejects_bad_values(tmp_path):
    base = {"name": "t", "data": {"dataset": "credit", "options": {"n": 300}},
            "model": {"factory": "feature_models:make_nnx", "python_path": [HERE], "train": {"epochs": 1},
                      "features": "embed"},
            "analyzers": {"ood": {"n": 50}}}
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(base))
    assert AuditConfig.from_yaml(str(path)).model["features"] == "embed"
    base["model"]["features"] = "not a name"
    path.write_text(yaml.safe_dump(base))
    with pytest.raises(AuditInputError, match="model.features"):
        AuditConfig.from_yaml(str(path))


def test_ood_and_adversarial_detection_read_the_named_features(credit_small):
    from audit.models import from_factory as build

    model = build("feature_models:make_nnx", input_shape=credit_small.input_shape,
                  class_names=credit_small.class_names, python_path=[HERE], features="embed")
    report = ood.evaluate(model, credit_small, detectors=["mahalanobis"], shifts=["shuffled"], n=60,
                          n_bootstrap=0, autoencoder_epochs=1)
    assert report.features == "model:embed" and not any(f.id == "features" for f in report.findings)
    detection = ood.detect_adversarial(model, credit_small, detectors=["mahalanobis"], n=30, steps=3)
    assert [d.detector for d in detection.detections] == ["mahalanobis"]


def test_live_scorer_reproduces_the_audits_inlier_scores(credit_small, credit_model):
    report = ood.evaluate(credit_model, credit_small, detectors=["msp", "energy", "mahalanobis", "knn"],
                          shifts=["shuffled"], n=80, n_bootstrap=0, seed=3)
    score = ood.scorer(credit_model, credit_small, seed=3)
    rng = np.random.default_rng(3)
    rng.choice(len(credit_small.train), size=min(5000, len(credit_small.train)), replace=False)  # training rows
    rows = np.sort(rng.choice(len(credit_small.test), size=80, replace=False))  # the audit's inliers
    live = score(credit_small.test.X[rows])
    for name in ood.LIVE_DETECTORS:
        np.testing.assert_allclose(live[name], report.inlier_scores[name], rtol=1e-6, atol=1e-9)
    with pytest.raises(AuditInputError, match="live OOD scores"):
        ood.scorer(credit_model, credit_small, detectors=["autoencoder"])
