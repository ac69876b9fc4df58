"""Issue #13: duplicated headers are refused naming the column; unseen category levels encode as
all-zero one-hots (scikit-learn's handle_unknown="ignore") and rare levels stay in training."""

import numpy as np
import pandas as pd
import pytest
from sklearn.preprocessing import OneHotEncoder

from audit import AuditInputError
from audit.data import from_csv, from_pandas


def frame(n=200, seed=0):
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"income": rng.normal(size=n), "city": rng.choice(["a", "b", "c"], size=n),
                         "y": rng.integers(0, 2, size=n)})


def test_duplicated_csv_header_is_refused_naming_the_column(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("income,city,income,y\n1,a,2,0\n2,b,3,1\n3,a,1,0\n4,b,2,1\n")
    with pytest.raises(AuditInputError, match=r"column 'income' appears more than once"):
        from_csv(path, target="y", categorical=["city"])


def test_duplicated_dataframe_columns_are_refused_naming_the_column():
    df = frame()
    df = pd.concat([df, df[["income"]]], axis=1)
    with pytest.raises(AuditInputError, match=r"column 'income' appears more than once"):
        from_pandas(df, target="y", categorical=["city"])


def test_a_level_in_one_row_stays_in_training_for_every_seed():
    df = frame()
    df.loc[17, "city"] = "rare"
    for seed in range(6):
        data = from_pandas(df, target="y", categorical=["city"], seed=seed)
        assert 17 in data.splits["train"]
        assert sorted(np.concatenate(list(data.splits.values()))) == list(range(len(df)))  # a partition
        assert "city=rare" in data.feature_names


def test_unseen_levels_encode_as_zeros_like_sklearn():
    df = frame()
    data = from_pandas(df, target="y", categorical=["city"])
    new = pd.DataFrame({"income": [0.5, 1.0, -1.0], "city": ["b", "zzz", "a"]})
    raw = data.encoding.raw_matrix(new)
    assert data.encoding.unknown_rows(raw) == {"city": 1}
    ours = data.encoding.encode(raw)[:, 1:]
    sk = OneHotEncoder(handle_unknown="ignore").fit(df.iloc[data.splits["train"]][["city"]])
    np.testing.assert_array_equal(ours, sk.transform(new[["city"]]).toarray())
    with pytest.raises(AuditInputError, match="'zzz' was not seen"):
        data.encoding.raw_matrix(new, handle_unknown="error")


def test_dataset_from_arrays_images_and_string_labels():
    from audit import Dataset

    rng = np.random.default_rng(0)
    X = rng.random((90, 6, 6, 1))
    y = np.array(["cat", "dog", "eel"])[np.arange(90) % 3]
    data = Dataset.from_arrays(X, y, seed=1, sensitive={"site": np.arange(90) % 2})
    assert data.kind == "image" and data.input_shape == (6, 6, 1) and data.class_names == ("cat", "dog", "eel")
    np.testing.assert_array_equal(np.array(data.class_names)[data.y], y)
    assert sorted(np.concatenate(list(data.splits.values()))) == list(range(90))
    assert {k: len(v) for k, v in data.splits.items()} == {"train": 54, "val": 18, "test": 18}
    tab = Dataset.from_arrays(rng.random((40, 3)), np.arange(40) % 2)
    assert tab.kind == "tabular" and tab.feature_names == ("x0", "x1", "x2") and tab.class_names == ("0", "1")
    with pytest.raises(AuditInputError, match="not in class_names"):
        Dataset.from_arrays(X, y, class_names=("cat", "dog"))


def test_new_data_with_the_training_encoding_counts_unknown_levels_as_a_finding(linear_model):
    import jax.numpy as jnp

    from audit import AuditConfig, run
    from audit.models import Model

    train_df = frame()
    train = from_pandas(train_df, target="y", categorical=["city"])
    new = frame(60, seed=1)
    new.loc[[3, 5, 8], "city"] = "atlantis"
    data = from_pandas(new, target="y", categorical=["city"], encoding=train.encoding, name="new")
    assert data.unknown_levels == {"city": 3}
    np.testing.assert_array_equal(data.X[[3, 5, 8], 1:], 0.0)
    params = {"w": jnp.ones((4,), jnp.float32)}
    model = Model.from_function(lambda p, x: jnp.stack([x @ p["w"], -(x @ p["w"])], -1), params,
                                input_shape=(4,), class_names=("0", "1"))
    report = run(model, data, AuditConfig(analyzers={"imbalance": {}}), progress=False)
    finding = next(f for f in report.findings if f.id == "data:unknown_levels")
    assert finding.value == 3 and "city (3 rows)" in finding.message and finding.status == "warn"
