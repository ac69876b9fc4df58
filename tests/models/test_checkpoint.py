import json
import os

import jax
import numpy as np
import pytest

from audit import AuditInputError
from audit.models import Model


def leaves_equal(a, b):
    la, lb = jax.tree.leaves(a.params), jax.tree.leaves(b.params)
    return len(la) == len(lb) and all(np.array_equal(x, y) and x.dtype == y.dtype for x, y in zip(la, lb))


def test_zoo_round_trip_is_bit_identical(tmp_path, credit_small, credit_model):
    path = credit_model.save(tmp_path / "credit")
    loaded = Model.load(path)
    assert leaves_equal(credit_model, loaded)
    assert np.array_equal(credit_model.logits(credit_small.X), loaded.logits(credit_small.X))
    assert loaded.class_names == credit_model.class_names and loaded.input_shape == credit_model.input_shape
    assert loaded.metadata["training"] == credit_model.metadata["training"]
    manifest = json.loads((tmp_path / "credit" / "manifest.json").read_text())
    assert manifest["architecture"]["name"] == "mlp" and "jax" in manifest["libraries"]
    assert not any(name.endswith((".pkl", ".pickle")) for name in os.listdir(path))


def test_cnn_round_trip(tmp_path, digits, digits_cnn):
    loaded = Model.load(digits_cnn.save(tmp_path / "cnn"))
    assert leaves_equal(digits_cnn, loaded)
    assert np.array_equal(digits_cnn.logits(digits.X[:50]), loaded.logits(digits.X[:50]))


def test_zoo_load_initialises_no_weights_and_keeps_batch_norm_and_gradients(tmp_path, credit_small):
    from audit.models import zoo

    config = {"in_features": credit_small.X.shape[1], "n_classes": 2, "widths": [16, 8], "norm": "batch",
              "dropout": 0.3}
    model = Model.from_nnx(zoo.build("mlp", config, seed=3), input_shape=credit_small.input_shape,
                           class_names=credit_small.class_names)
    template = zoo.rebuild({"name": "mlp", "config": config}, model_cls=Model, input_shape=model.input_shape,
                           class_names=model.class_names, initialise=False)
    assert all(isinstance(leaf, jax.ShapeDtypeStruct) for leaf in jax.tree.leaves(template.params))
    loaded = Model.load(model.save(tmp_path / "bn"))
    assert leaves_equal(model, loaded)  # batch statistics included
    x = credit_small.X[:40]
    assert np.array_equal(model.logits(x), loaded.logits(x))
    grad = lambda m: np.asarray(jax.grad(lambda v: m.apply(m.params, v)[:, 1].sum())(x))
    assert np.array_equal(grad(model), grad(loaded))


def test_custom_model_needs_like(tmp_path, linear_model):
    path = linear_model.save(tmp_path / "linear")
    with pytest.raises(AuditInputError, match="like=model"):
        Model.load(path)
    loaded = Model.load(path, like=linear_model)
    assert leaves_equal(linear_model, loaded)


def test_corrupted_parameters_fail_clearly(tmp_path, linear_model):
    path = linear_model.save(tmp_path / "m")
    blob = bytearray(open(os.path.join(path, "params.msgpack"), "rb").read())
    blob[-3] ^= 0xFF
    open(os.path.join(path, "params.msgpack"), "wb").write(bytes(blob))
    with pytest.raises(AuditInputError, match="corrupt.*checksum"):
        Model.load(path, like=linear_model)


def test_corrupted_manifest_and_missing_files(tmp_path, linear_model):
    path = linear_model.save(tmp_path / "m")
    with open(os.path.join(path, "manifest.json"), "w") as f:
        f.write("{not json")
    with pytest.raises(AuditInputError, match="manifest .* is corrupt"):
        Model.load(path, like=linear_model)
    with pytest.raises(AuditInputError, match="no manifest.json"):
        Model.load(tmp_path / "nothing")


def test_mismatched_architecture(tmp_path, credit_model, linear_model):
    path = credit_model.save(tmp_path / "credit")
    with pytest.raises(AuditInputError, match="lacks parameter"):
        Model.load(path, like=linear_model)


def test_save_replaces_atomically(tmp_path, linear_model):
    path = tmp_path / "m"
    linear_model.save(path)
    bumped = linear_model.replace(params=jax.tree.map(lambda v: v + 1, linear_model.params))
    bumped.save(path)
    assert leaves_equal(Model.load(path, like=linear_model), bumped)
    assert sorted(os.listdir(tmp_path)) == ["m"]  # no staging directories left behind


def test_save_never_deletes_a_folder_that_is_not_a_checkpoint(tmp_path, linear_model):
    folder = tmp_path / "work"
    (folder / "mine").mkdir(parents=True)
    (folder / "mine" / "thesis.tex").write_text("precious")
    with pytest.raises(AuditInputError, match="is not a checkpoint"):
        linear_model.save(folder)
    assert (folder / "mine" / "thesis.tex").read_text() == "precious"
    (tmp_path / "empty").mkdir()
    linear_model.save(tmp_path / "empty")  # an empty folder is fine
    assert (tmp_path / "empty" / "manifest.json").exists()
