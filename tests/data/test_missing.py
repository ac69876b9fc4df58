"""Missing values: a clear error by default; scikit-learn imputers fitted on the training rows only."""

import numpy as np
import pandas as pd
import pytest
from sklearn.experimental import enable_iterative_imputer  # noqa: F401
from sklearn.impute import IterativeImputer, KNNImputer, MissingIndicator, SimpleImputer

import audit
from audit.data import _credit
from audit.data._encoding import TabularEncoding


def _frame(n=400, seed=0):
    rng = np.random.default_rng(seed)
    a = rng.normal(size=n)
    b = a * 2 + rng.normal(size=n) * 0.1
    c = rng.normal(size=n)
    y = (a + c > 0).astype(int)
    df = pd.DataFrame({"a": a, "b": b, "c": c, "kind": rng.choice(["x", "z"], n), "y": y})
    df.loc[rng.random(n) < 0.2, "a"] = np.nan
    df.loc[rng.random(n) < 0.1, "c"] = np.nan
    return df


def test_missing_without_option_names_columns_and_option():
    with pytest.raises(audit.AuditInputError, match=r"\['a', 'c'\].*missing=\{'strategy'"):
        audit.data.from_pandas(_frame(), target="y", categorical=["kind"])


def test_bad_strategy_is_one_clear_error():
    with pytest.raises(audit.AuditInputError, match="strategy is 'zero'"):
        audit.data.from_pandas(_frame(), target="y", missing={"strategy": "zero"})


@pytest.mark.parametrize("strategy,make", [
    ("mean", lambda: SimpleImputer(strategy="mean")),
    ("median", lambda: SimpleImputer(strategy="median")),
    ("most_frequent", lambda: SimpleImputer(strategy="most_frequent")),
    ("knn", lambda: KNNImputer(n_neighbors=5)),
    ("iterative", lambda: IterativeImputer(max_iter=10, random_state=0)),
])
def test_imputation_equals_sklearn_by_hand_on_the_training_split(strategy, make):
    df = _frame()
    data = audit.data.from_pandas(df, target="y", categorical=["kind"], missing={"strategy": strategy})
    numeric = df[["a", "b", "c"]].to_numpy()
    train = data.splits["train"]
    expected = make().fit(numeric[train]).transform(numeric)
    raw = data.raw[:, [data.raw_feature_names.index(c) for c in ("a", "b", "c")]]
    np.testing.assert_allclose(raw, expected, rtol=0, atol=1e-9)
    # model inputs are the imputed values scaled by the imputed training rows' statistics
    mean, std = expected[train, 0].mean(), expected[train, 0].std()
    np.testing.assert_allclose(data.X[:, 0], (expected[:, 0] - mean) / std, atol=1e-5)
    np.testing.assert_array_equal(data.missing_mask[:, :3], np.isnan(numeric))


def test_imputer_never_sees_test_rows():
    """Changing only the test rows' observed values must not move any imputed value."""
    df = _frame()
    data = audit.data.from_pandas(df, target="y", categorical=["kind"], missing={"strategy": "mean"})
    test = data.splits["test"]
    shifted = df.copy()
    shifted.loc[test, "a"] = shifted.loc[test, "a"] + 100.0  # NaN stays NaN
    other = audit.data.from_pandas(shifted, target="y", categorical=["kind"], missing={"strategy": "mean"})
    np.testing.assert_array_equal(other.splits["test"], test)
    filled = data.missing_mask[:, 0]
    np.testing.assert_array_equal(data.raw[filled, 0], other.raw[filled, 0])
    assert data.raw[filled, 0][0] == pytest.approx(np.nanmean(df["a"].to_numpy()[data.splits["train"]]))


def test_indicator_masks_are_inputs_grouped_with_their_column():
    df = _frame()
    data = audit.data.from_pandas(df, target="y", categorical=["kind"], missing={"strategy": "indicator"})
    names = data.feature_names
    assert names[:5] == ("a", "a__missing", "b", "c", "c__missing")
    assert data.feature_groups[0] == (0, 1) and data.feature_groups[2] == (3, 4)
    expected = MissingIndicator(features="missing-only").fit(df[["a", "b", "c"]].to_numpy()[data.splits["train"]])
    np.testing.assert_array_equal(expected.features_, [0, 2])
    np.testing.assert_array_equal(data.X[:, 1], df["a"].isna().to_numpy())
    # the encoding round-trips JSON and imputes new data the same way
    enc = TabularEncoding.from_dict(data.encoding.to_dict())
    assert enc == data.encoding
    again = audit.data.from_pandas(df, target="y", categorical=["kind"], encoding=enc)
    np.testing.assert_array_equal(again.X, data.X)


def test_drop_removes_incomplete_rows():
    df = _frame()
    data = audit.data.from_pandas(df, target="y", categorical=["kind"], missing={"strategy": "drop"})
    assert len(data) == int(df[["a", "c"]].notna().all(axis=1).sum())
    assert data.missing_mask is None and data.encoding.imputation is None


def test_credit_mnar_plants_the_documented_missingness():
    frame = _credit.credit_frame(20_000, missing="mnar")
    clean = _credit.credit_frame(20_000)
    pd.testing.assert_frame_equal(frame.drop(columns="income"), clean.drop(columns="income"))
    hole = frame["income"].isna()
    women, default = frame["sex"] == "female", frame["default"] == "yes"
    assert hole[women & ~default].mean() == pytest.approx(0.25, abs=0.02)
    assert hole[~women & ~default].mean() == pytest.approx(0.05, abs=0.01)
    assert hole[~women & default].mean() == pytest.approx(0.20, abs=0.05)
    mcar = _credit.credit_frame(20_000, missing="mcar")["income"].isna()
    assert mcar.mean() == pytest.approx(hole.mean(), abs=0.01)
    assert abs(mcar[women].mean() - mcar[~women].mean()) < 0.02
    data = audit.datasets.load("credit", n=2000, missing="mnar")
    assert data.encoding.imputation.strategy == "median" and np.isfinite(data.X).all()


def test_mask_inputs_are_discrete_and_attributed_to_their_column():
    df = _frame()
    data = audit.data.from_pandas(df, target="y", categorical=["kind"], missing={"strategy": "indicator"})
    assert data.encoding.categorical_mask.tolist()[:5] == [False, True, False, False, True]
    np.testing.assert_allclose(data.encoding.decode(data.X)[:, 0], data.raw[:, 0], atol=1e-4)
    # one SHAP player per raw column: the value and its mask move together
    assert len(data.feature_groups) == len(data.raw_feature_names) == 4
