"""Bring your own model: output conventions, factories, Orbax checkpoints, IBP through the jaxpr,
retraining user architectures, and every registered analyzer on non-zoo NNX and Linen models."""

from __future__ import annotations

import os
import textwrap

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import orbax.checkpoint as ocp
import pytest
from flax import nnx

from audit import AuditConfig, AuditInputError, datasets, run
from audit.models import Model, from_factory, retrainer, split_nnx, train, zoo
from audit.models._jaxpr import check_supported, interval_bounds, margin_lower_bound
from audit.pipeline import ANALYZERS


# ---- user models --------------------------------------------------------------------------
class LinenNet(nn.Module):
    """Dense-BatchNorm-ReLU-Dropout-Dense: a Linen model with state and a train switch."""

    n_classes: int
    hidden: int = 16

    @nn.compact
    def __call__(self, x, train: bool = False):
        x = nn.Dense(self.hidden)(x.reshape(x.shape[0], -1))
        x = nn.BatchNorm(use_running_average=not train)(x)
        x = nn.Dropout(0.1, deterministic=not train)(nn.relu(x))
        return nn.Dense(self.n_classes)(x)


class NnxResidual(nnx.Module):
    """An NNX residual MLP: h + W2 relu(W1 h), with dropout."""

    def __init__(self, in_features: int, n_classes: int, hidden: int = 16, *, rngs: nnx.Rngs):
        self.stem = nnx.Linear(in_features, hidden, rngs=rngs)
        self.inner = nnx.Linear(hidden, hidden, rngs=rngs)
        self.outer = nnx.Linear(hidden, hidden, rngs=rngs)
        self.dropout = nnx.Dropout(0.1, rngs=rngs)
        self.head = nnx.Linear(hidden, n_classes, rngs=rngs)

    def __call__(self, x):
        h = jax.nn.relu(self.stem(x))
        h = h + self.outer(self.dropout(jax.nn.relu(self.inner(h))))
        return self.head(jax.nn.relu(h))


FACTORIES = '''
import numpy as np
from test_user_models_defs import *  # noqa: F401,F403


def linen(n_classes, hidden=16):
    return LinenNet(n_classes=n_classes, hidden=hidden)


def nnx_residual(input_shape, n_classes, rngs, hidden=16):
    return NnxResidual(int(np.prod(input_shape)), n_classes, hidden, rngs=rngs)


CALLS, TRAINED = [], []


def my_train(data, *, seed, sample_weight=None):
    """A user training function: records its call, returns trained NNX state."""
    import audit
    CALLS.append({"seed": seed, "weighted": sample_weight is not None})
    module = nnx_residual(data.input_shape, data.n_classes, __import__("flax").nnx.Rngs(seed))
    model = audit.models.train(module, data, epochs=1, seed=seed, progress=False, sample_weight=sample_weight)
    TRAINED.append(model)
    return model.params
'''


@pytest.fixture(scope="module")
def user_package(tmp_path_factory):
    """A folder holding the user's code, as a config's python_path names it."""
    folder = tmp_path_factory.mktemp("user_code")
    source = open(__file__).read()
    defs = source[source.index("# ---- user models"):source.index("FACTORIES = ")]
    header = "import flax.linen as nn\nimport jax\nfrom flax import nnx\n\n"
    (folder / "test_user_models_defs.py").write_text(header + defs)
    (folder / "user_factories.py").write_text(textwrap.dedent(FACTORIES))
    return str(folder)


@pytest.fixture(scope="module")
def credit():
    return datasets.load("credit", n=600, seed=0, include_sensitive=True)


# ---- output conventions -------------------------------------------------------------------
def _binary_models():
    rng = np.random.default_rng(0)
    params = {"w1": jnp.asarray(rng.normal(size=(27, 8)) * 0.3, jnp.float32),
              "w2": jnp.asarray(rng.normal(size=(8,)), jnp.float32)}

    def z(p, x):
        return jnp.tanh(x @ p["w1"]) @ p["w2"]

    names = ("no", "yes")
    two = Model.from_function(lambda p, x: jnp.stack([jnp.zeros_like(z(p, x)), z(p, x)], -1), params,
                              input_shape=(27,), class_names=names)
    sigmoid = Model.from_function(lambda p, x: z(p, x)[:, None], params, input_shape=(27,), class_names=names,
                                  output="sigmoid")
    proba = Model.from_function(lambda p, x: jax.nn.softmax(jnp.stack([jnp.zeros_like(z(p, x)), z(p, x)], -1)),
                                params, input_shape=(27,), class_names=names, output="probabilities")
    return two, sigmoid, proba


def test_sigmoid_and_probability_outputs_audit_like_the_two_logit_model(credit):
    two, sigmoid, proba = _binary_models()
    x = credit.test.X
    np.testing.assert_allclose(sigmoid.logits(x), two.logits(x), atol=1e-6)  # (0, z): the same logits
    np.testing.assert_allclose(proba.predict_proba(x), two.predict_proba(x), atol=1e-6)
    config = AuditConfig(seed=0, analyzers={
        "imbalance": {}, "fairness": {"n_bootstrap": 50},
        "robustness": {"n": 100, "eps": [0.05, 0.2], "steps": 5, "bootstrap": 0}})
    reference = run(two, credit, config, progress=False).metrics()
    for model in (sigmoid, proba):
        got = run(model, credit, config, progress=False).metrics()
        assert got.keys() == reference.keys()
        for key, value in reference.items():
            assert got[key] == pytest.approx(value, abs=1e-4, nan_ok=True), key


def test_output_width_and_convention_errors():
    w = jnp.ones((4, 3))
    with pytest.raises(AuditInputError, match=r"outputs 3 values per row but the classes are \['a', 'b'\]"):
        Model.from_function(lambda p, x: x @ p, w, input_shape=(4,), class_names=("a", "b"))
    with pytest.raises(AuditInputError, match="output='sigmoid' needs one logit per row; the model returns 3"):
        Model.from_function(lambda p, x: x @ p, w, input_shape=(4,), class_names=("a", "b"), output="sigmoid")
    with pytest.raises(AuditInputError, match="output 'softmax' is not known"):
        Model.from_function(lambda p, x: x @ p, w, input_shape=(4,), class_names=("a", "b", "c"), output="softmax")


# ---- Orbax ---------------------------------------------------------------------------------
def _linen_variables(seed=0):
    return LinenNet(n_classes=2).init(jax.random.key(seed), jnp.zeros((1, 27)))


def test_orbax_manager_steps_latest_or_chosen_into_linen(tmp_path, credit, user_package):
    manager = ocp.CheckpointManager(str(tmp_path / "run"))
    saved = {}
    for step in (1, 3):
        v = _linen_variables(seed=step)
        saved[step] = v
        manager.save(step, args=ocp.args.StandardSave(v))
    manager.wait_until_finished()
    common = dict(input_shape=credit.input_shape, class_names=credit.class_names, python_path=[user_package])
    latest = from_factory("user_factories:linen", checkpoint=tmp_path / "run", **common)
    first = from_factory("user_factories:linen", checkpoint=tmp_path / "run", step=1, **common)
    x = credit.test.X[:20]
    for model, step in ((latest, 3), (first, 1)):
        expected = LinenNet(n_classes=2).apply(saved[step], x)
        np.testing.assert_allclose(model.logits(x), expected, atol=1e-6)
    with pytest.raises(AuditInputError, match=r"steps \[1, 3\]; step 2 is not one"):
        from_factory("user_factories:linen", checkpoint=tmp_path / "run", step=2, **common)


def test_orbax_nnx_state_and_mismatch_names_the_parameter(tmp_path, credit, user_package):
    module = NnxResidual(27, 2, rngs=nnx.Rngs(5))
    checkpointer = ocp.StandardCheckpointer()
    checkpointer.save(str(tmp_path / "state"), nnx.state(module))
    checkpointer.wait_until_finished()
    common = dict(input_shape=credit.input_shape, class_names=credit.class_names, python_path=[user_package])
    model = from_factory("user_factories:nnx_residual", checkpoint=tmp_path / "state", **common)
    module.eval()
    np.testing.assert_allclose(model.logits(credit.test.X[:8]), module(credit.test.X[:8]), atol=1e-6)
    with pytest.raises(AuditInputError, match=r"parameter head/kernel is \(16, 2\) float32, the model expects "
                                              r"\(8, 2\) float32"):
        from_factory("user_factories:nnx_residual", checkpoint=tmp_path / "state", options={"hidden": 8}, **common)
    with pytest.raises(AuditInputError, match="has no parameter batch_stats/BatchNorm_0/mean; it was saved from a different"):
        from_factory("user_factories:linen", checkpoint=tmp_path / "state", **common)


def test_model_save_orbax_round_trip_opens_in_orbax(tmp_path, credit):
    model = Model.from_nnx(zoo.build("mlp", {"in_features": 27, "n_classes": 2, "norm": "batch"}, seed=3),
                           input_shape=(27,), class_names=credit.class_names)
    path = model.save(tmp_path / "ckpt", format="orbax")
    back = Model.load(path)
    assert back.fingerprint() == model.fingerprint()
    raw = ocp.StandardCheckpointer().restore(os.path.join(path, "params"))
    np.testing.assert_array_equal(raw["head"]["kernel"], np.asarray(model.params["head"]["kernel"][...]))
    with pytest.raises(AuditInputError, match="format 'pickle'"):
        model.save(tmp_path / "x", format="pickle")


# ---- configs -------------------------------------------------------------------------------
def test_config_factory_paths_relative_to_the_config(tmp_path, credit, user_package):
    import shutil

    folder = tmp_path / "project"
    shutil.copytree(user_package, folder / "code")
    module = NnxResidual(27, 2, rngs=nnx.Rngs(1))
    checkpointer = ocp.StandardCheckpointer()
    checkpointer.save(str(folder / "weights"), nnx.state(module, nnx.Param))
    checkpointer.wait_until_finished()  # Orbax saves asynchronously
    (folder / "audit.yaml").write_text(textwrap.dedent("""
        data: {dataset: credit, options: {n: 600, include_sensitive: true}}
        model: {factory: "user_factories:nnx_residual", python_path: [code], checkpoint: weights}
        analyzers: {imbalance: {}}
    """))
    config = AuditConfig.from_yaml(folder / "audit.yaml")
    assert config.model["checkpoint"] == str(folder / "weights")
    from audit.pipeline import run_config

    report, model, data = run_config(config, progress=False)
    module.eval()
    np.testing.assert_allclose(model.logits(data.test.X[:5]), module(data.test.X[:5]), atol=1e-6)
    assert report.metadata["model"]["architecture"]["factory"] == "user_factories:nnx_residual"
    bad = {"data": {"dataset": "credit"}}
    for model_section, message in (
            ({"factory": "no_colon"}, "'package.module:function'"),
            ({"checkpoint": "w"}, "needs 'model.factory'"),
            ({"factory": "a:b", "checkpoint": "w", "format": "zip"}, "must be one of"),
            ({"factory": "a:b"}, "builds an untrained architecture"),
            ({"factory": "a:b", "checkpoint": "w", "output": "softmax"}, "'logits', 'probabilities' or 'sigmoid'")):
        with pytest.raises(AuditInputError, match=message):
            AuditConfig.from_dict({**bad, "model": model_section})
    with pytest.raises(AuditInputError, match="cannot import 'nowhere'"):
        from_factory("nowhere:f", input_shape=(24,), class_names=("a", "b"))


# ---- IBP through the jaxpr -----------------------------------------------------------------
def _sampled(model, lo, hi, draws=64, seed=0):
    rng = np.random.default_rng(seed)
    corners = [lo + (hi - lo) * rng.integers(0, 2, lo.shape) for _ in range(draws // 2)]
    inside = [lo + (hi - lo) * rng.uniform(size=lo.shape) for _ in range(draws // 2)]
    return np.stack([model.logits(p.astype(np.float32)) for p in corners + inside])


def test_jaxpr_ibp_equals_the_zoo_layer_walk():
    from audit.robustness._ibp import _margin_function, interval_function, layer_ops  # noqa: F401

    rng = np.random.default_rng(0)
    for name, config, shape in (("cnn", {"input_shape": [8, 8, 1], "n_classes": 3, "channels": [4, 8],
                                         "hidden": 16}, (8, 8, 1)),
                                ("mlp", {"in_features": 6, "n_classes": 4, "norm": "batch"}, (6,))):
        module = zoo.build(name, config, seed=1)
        model = Model.from_nnx(module, input_shape=shape, class_names=[str(i) for i in range(config["n_classes"])])
        x = rng.normal(size=(7, *shape)).astype(np.float32)
        y = jnp.asarray(rng.integers(0, config["n_classes"], 7))
        walk, params = interval_function(model, module=module)  # module=: the layer walk
        wlo, whi = walk(params, x - 0.05, x + 0.05)
        jlo, jhi = interval_bounds(model.apply, model.params, x - 0.05, x + 0.05)
        np.testing.assert_allclose(jlo, wlo, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(jhi, whi, rtol=1e-5, atol=1e-5)
        margin, params = _margin_function(model, module)
        np.testing.assert_allclose(margin_lower_bound(model.apply, model.params, x - 0.05, x + 0.05, y),
                                   margin(params, x - 0.05, x + 0.05, y), rtol=1e-5, atol=1e-5)


def test_jaxpr_ibp_contains_sampled_logits_of_user_models(credit, user_package):
    common = dict(input_shape=credit.input_shape, class_names=credit.class_names, python_path=[user_package])
    x = credit.test.X[:16]
    for factory in ("user_factories:linen", "user_factories:nnx_residual"):
        model = from_factory(factory, seed=2, **common)
        lo, hi = jax.jit(interval_bounds, static_argnums=0)(model.apply, model.params, x - 0.1, x + 0.1)
        z = _sampled(model, x - 0.1, x + 0.1)
        assert (z >= np.asarray(lo) - 1e-5).all() and (z <= np.asarray(hi) + 1e-5).all(), factory
        assert float(np.mean(np.asarray(hi) - np.asarray(lo))) < 50  # bounded, not vacuous
        y = jnp.asarray(credit.test.y[:16])
        margin = np.asarray(margin_lower_bound(model.apply, model.params, x - 0.1, x + 0.1, y))
        own = np.take_along_axis(z, np.broadcast_to(np.asarray(y)[None, :, None], (len(z), 16, 1)), 2)[..., 0]
        assert (own - z.max(-1, where=~np.eye(2, dtype=bool)[np.asarray(y)][None], initial=-np.inf)
                >= margin[None] - 1e-5).all()
    sin = Model.from_function(lambda p, v: jnp.sin(v @ p), jnp.ones((24, 2)), input_shape=(24,),
                              class_names=("a", "b"))
    with pytest.raises(AuditInputError, match="no interval rule for the primitive 'sin'"):
        check_supported(sin.apply, sin.params, sin.input_shape)


# ---- retraining user architectures ---------------------------------------------------------
def test_retrain_uses_the_factory_or_the_user_function(credit, user_package):
    common = dict(input_shape=credit.input_shape, class_names=credit.class_names, python_path=[user_package])
    linen = from_factory("user_factories:linen", **common)
    fit, _ = retrainer(linen, train_options={"epochs": 2}, seed=0)
    a, b = fit(credit), fit(credit)
    assert a.fingerprint() == b.fingerprint()  # seeded: the same weights twice
    assert set(a.params) == {"params", "batch_stats"} and a.architecture["factory"] == "user_factories:linen"
    assert not np.allclose(np.asarray(a.params["batch_stats"]["BatchNorm_0"]["mean"]), 0)  # stats updated
    user = from_factory("user_factories:nnx_residual", retrain="user_factories:my_train", **common)
    import user_factories

    user_factories.CALLS.clear()
    fit, _ = retrainer(user, seed=4)
    retrained = fit(credit, sample_weight=np.ones(len(credit.splits["train"])))
    assert user_factories.CALLS == [{"seed": 4, "weighted": True}]
    assert retrained.fingerprint() == user_factories.TRAINED[-1].fingerprint()  # its weights, in the factory's model
    np.testing.assert_allclose(retrained.logits(credit.test.X), user_factories.TRAINED[-1].logits(credit.test.X),
                               atol=1e-6)
    plain = Model.from_function(lambda p, v: v[:, :2] @ p, jnp.eye(2), input_shape=(27,), class_names=("a", "b"))
    assert "no recorded architecture" in ANALYZERS["fairness_mitigation"].applies_to(plain, credit)


# ---- every registered analyzer on non-zoo NNX and Linen models -----------------------------
SMALL = {
    "explain": {"n_examples": 2, "lime_samples": 100, "background_size": 16, "stability_samples": 4,
                "permutation_repeats": 1},
    "robustness": {"n": 40, "eps": [0.1], "steps": 3, "bootstrap": 0},
    "certify": {"n": 20, "eps": [0.05], "steps": 3, "attacks": ["fgsm"], "n0": 8, "n_samples": 32,
                "smoothing_attack_steps": 0},
    "explanation_stability": {"n": 8, "attack_steps": 2, "attack_samples": 2},
    "fairness": {"n_bootstrap": 20},
    "imbalance": {},
    "slices": {"max_order": 2, "min_size": 20},
    "missing": {"rates": [0.2]},
    "missing_strategies": {"strategies": ["mean", "median"], "train_options": {"epochs": 1}},
    "corruptions": {"n": 100, "severities": [1, 3]},
    "recourse": {"max_rows": 20, "n_bootstrap": 20},
    "ood": {"n": 100, "autoencoder_epochs": 1, "n_bootstrap": 10, "detectors": ["msp", "energy", "mahalanobis", "knn"]},
    "drift": {"n_permutations": 20, "max_rows": 100},
    "adversarial_detection": {"n": 30, "steps": 3, "detectors": ["energy", "msp"]},
    "transfer": {"epochs": 1, "n": 60, "steps": 3, "eps": [0.1]},
    "fairness_mitigation": {"train_options": {"epochs": 1}, "n_bootstrap": 20},
    "imbalance_mitigation": {"methods": ["none", "class_weight"], "train_options": {"epochs": 1}},
    "adversarial_training": {"epochs": 1, "n": 40, "eval_steps": 3, "bootstrap": 0, "steps": 2,
                             "attacks": ["fgsm"]},
}


@pytest.fixture(scope="module")
def user_models(credit, user_package):
    common = dict(input_shape=credit.input_shape, class_names=credit.class_names, python_path=[user_package])
    out = {}
    for kind, factory in (("linen", "user_factories:linen"), ("nnx", "user_factories:nnx_residual")):
        fit, _ = retrainer(from_factory(factory, **common), train_options={"epochs": 3}, seed=0)
        out[kind] = fit(credit)
    return out


def _cases():
    """Every analyzer on both models; the retraining ones on the Linen model only in the slow run
    (the NNX case already retrains a non-zoo architecture in the default run); missing_strategies
    retrains once per strategy (~20 s each here), so it runs only in the slow run on both."""
    for name in sorted(ANALYZERS):
        for kind in ("nnx", "linen"):
            slow = (kind == "linen" and ANALYZERS[name].retrains) or name == "missing_strategies"
            yield pytest.param(name, kind, marks=[pytest.mark.slow] if slow else [], id=f"{kind}-{name}")


@pytest.mark.parametrize(("name", "kind"), list(_cases()))
def test_every_analyzer_runs_on_user_models(name, kind, user_models, credit):
    from audit.pipeline._registry import check_settings, run_analyzer

    model = user_models[kind]
    settings = dict(SMALL.get(name, {}))
    if name == "fairness_mitigation":
        settings["attribute"] = "sex"
    check_settings(name, settings, lambda key: key)
    assert ANALYZERS[name].applies_to(model, credit) is None
    result = run_analyzer(ANALYZERS[name], model, credit, settings=settings, seed=0, progress=False)
    metrics = result.metrics()
    assert metrics and all(np.isfinite(v) or np.isnan(v) for v in metrics.values())
    assert type(result).from_dict(result.to_dict()).metrics().keys() == metrics.keys()
