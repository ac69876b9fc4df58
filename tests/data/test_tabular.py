import numpy as np
import pandas as pd
import pytest

from audit import AuditInputError, Dataset
from audit.data import from_csv, from_pandas


def frame(n=200, seed=0):
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "x1": rng.normal(size=n), "x2": rng.integers(0, 5, size=n),
        "color": rng.choice(["red", "green", "blue"], size=n),
        "group": rng.choice(["a", "b"], size=n),
        "label": rng.choice(["bad", "good"], size=n),
    })


def test_encoding_standardises_on_train_rows_and_groups_one_hots():
    data = from_pandas(frame(), target="label", categorical=["color"], sensitive=["group"])
    assert data.raw_feature_names == ("x1", "x2", "color")
    assert data.feature_names == ("x1", "x2", "color=blue", "color=green", "color=red")
    assert data.feature_groups == ((0,), (1,), (2, 3, 4))
    train = data.X[data.splits["train"]]
    assert np.allclose(train[:, :2].mean(0), 0, atol=1e-6) and np.allclose(train[:, :2].std(0), 1, atol=1e-5)
    assert np.all(data.X[:, 2:].sum(1) == 1)
    assert np.array_equal(data.encoding.encode(data.raw), data.X)
    assert set(data.sensitive["group"]) == {"a", "b"}


def test_sensitive_columns_can_be_model_inputs():
    data = from_pandas(frame(), target="label", categorical=["color", "group"], sensitive=["group"],
                       include_sensitive=True)
    assert "group" in data.raw_feature_names


def test_csv_round_trip(tmp_path):
    df = frame()
    path = tmp_path / "data.csv"
    df.to_csv(path, index=False)
    a = from_csv(path, target="label", categorical=["color"], sensitive=["group"])
    b = from_pandas(df, target="label", categorical=["color"], sensitive=["group"], name="data")
    assert a.name == "data"
    assert np.array_equal(a.X, b.X) and np.array_equal(a.y, b.y)
    assert np.array_equal(a.sensitive["group"], b.sensitive["group"])


@pytest.mark.parametrize("mutate, kwargs, message", [
    (lambda d: d.assign(x1=d.x1.where(d.index != 7)), {}, r"\['x1'\] have missing values \(x1: 1 rows, first at row 7\).*missing="),
    (lambda d: d.assign(x1=d.x1.where(d.index != 3, np.inf)), {}, r"column 'x1' row 3"),
    (lambda d: d.assign(x2=d.x2.astype(object).where(d.index != 5, "n/a")), {}, r"column 'x2' row 5: value 'n/a' is not a number"),
    (lambda d: d, {"target": "missing"}, r"target column\(s\) \['missing'\] not found"),
    (lambda d: d, {"sensitive": ["race"]}, r"sensitive column\(s\) \['race'\] not found"),
    (lambda d: d, {"categorical": ["shape"]}, r"categorical column\(s\) \['shape'\] not found"),
    (lambda d: d.assign(label="good"), {}, r"single class"),
    (lambda d: d.assign(label=d.label.where(d.index != 4)), {}, r"target column 'label' row 4 is missing"),
    (lambda d: d.assign(label=d.x1), {}, r"target 'label' holds continuous values \(row 0"),
])
def test_validation_errors_name_the_problem(mutate, kwargs, message):
    options = {"target": "label", "categorical": ["color"], "sensitive": ["group"], **kwargs}
    with pytest.raises(AuditInputError, match=message):
        from_pandas(mutate(frame()), **options)


def test_unreadable_csv(tmp_path):
    with pytest.raises(AuditInputError, match="does not exist"):
        from_csv(tmp_path / "nope.csv", target="y")
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(AuditInputError, match="cannot read CSV"):
        from_csv(empty, target="y")


def test_dataset_validation():
    X, y = np.zeros((4, 2), np.float32), np.array([0, 1, 0, 1])
    with pytest.raises(AuditInputError, match="sensitive attribute 'sex' has shape"):
        Dataset(X=X, y=y, feature_names=("a", "b"), class_names=("n", "p"), sensitive={"sex": np.zeros(3)})
    bad = X.copy()
    bad[2, 1] = np.nan
    with pytest.raises(AuditInputError, match="first at row 2, feature 'b'"):
        Dataset(X=bad, y=y, feature_names=("a", "b"), class_names=("n", "p"))
    with pytest.raises(AuditInputError, match="y has shape"):
        Dataset(X=X, y=y[:3], feature_names=("a", "b"), class_names=("n", "p"))
    with pytest.raises(AuditInputError, match=r"integer class ids in \[0, 2\)"):
        Dataset(X=X, y=np.array([0, 1, 2, 1]), feature_names=("a", "b"), class_names=("n", "p"))
    with pytest.raises(AuditInputError, match="2 feature names for 3"):
        Dataset(X=np.zeros((4, 3)), y=y, feature_names=("a", "b"), class_names=("n", "p"))


def test_unseen_category_is_reported():
    data = from_pandas(frame(), target="label", categorical=["color"], drop=["group"])
    with pytest.raises(AuditInputError, match="category 'purple' was not seen"):
        data.encoding.raw_matrix(frame().assign(color="purple"), handle_unknown="error")
    raw = data.encoding.raw_matrix(frame().assign(color="purple"))  # default: unknown, all-zero one-hot
    assert data.encoding.unknown_rows(raw) == {"color": len(frame())}


def test_integral_float_target_is_classes():
    df = frame()
    df["label"] = (df["label"] == "good").astype(float)  # 0.0 / 1.0, as after a NaN round trip
    data = from_pandas(df, target="label", categorical=["color"], sensitive=["group"])
    assert data.class_names == ("0.0", "1.0")
    np.testing.assert_array_equal(data.y, df["label"].to_numpy().astype(int))
    named = from_pandas(df, target="label", categorical=["color"], sensitive=["group"], class_names=[0.0, 1.0])
    np.testing.assert_array_equal(named.y, data.y)


def test_one_encoding_for_numpy_and_jax():
    """LIME encodes perturbed raw rows inside jitted code with the data's own encoding: the jax
    map equals the numpy one (out-of-range and fractional codes are rounded and clipped alike)."""
    import jax
    import jax.numpy as jnp

    from audit import datasets
    from audit.data import TabularEncoding

    data = datasets.load("credit", n=400, seed=0)
    raw = data.raw[:50].copy()
    cat = [j for j, c in enumerate(data.encoding.columns) if c.kind == "categorical"][0]
    raw[:3, cat] = (-2.0, 0.6, 99.0)
    expected = data.encoding.encode(raw)
    got = jax.jit(lambda r: data.encoding.encode(r, xp=jnp))(jnp.asarray(raw, jnp.float32))
    np.testing.assert_allclose(np.asarray(got), expected, rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(data.encoding.encode(data.raw[:20]), data.X[:20])
    assert TabularEncoding.from_dict(data.encoding.to_dict()) == data.encoding
