"""Issue #12: raw values shown as the user's data has them (SHAP waterfalls, LIME): the
encoding's inverse rounds to each column's precision, integers stay integers, categoricals by name."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest

from audit.data import from_pandas
from audit.data._encoding import TabularEncoding, format_value, precision
from audit.models import Model


@pytest.fixture(scope="module")
def frame():
    rng = np.random.default_rng(0)
    n = 400
    return pd.DataFrame({
        "income": rng.integers(20, 120, n) * 550,  # whole numbers in the tens of thousands
        "late_payments": rng.poisson(0.4, n),  # mostly 0
        "debt_ratio": np.round(rng.random(n), 2),
        "sex": rng.choice(["female", "male"], n),
        "score": rng.normal(size=n),  # measured, full precision
        "default": rng.integers(0, 2, n)})


def test_precision_of_columns(frame):
    assert precision(frame["income"].to_numpy(float)) == 0
    assert precision(frame["debt_ratio"].to_numpy()) == 2
    assert precision(frame["score"].to_numpy()) is None
    enc = TabularEncoding.fit(frame.drop(columns="default"), categorical=["sex"])
    assert [c.decimals for c in enc.columns] == [0, 0, 2, None, None]
    assert TabularEncoding.from_dict(enc.to_dict()) == enc


def test_decode_inverts_encode_at_the_columns_precision(frame):
    data = from_pandas(frame, target="default", categorical=["sex"])
    enc = data.encoding
    raw = data.raw
    back = enc.decode(data.X)  # float32 inputs: the naive inverse carries noise such as -1.27e-08
    naive = data.X[:, 1].astype(np.float64) * enc.columns[1].std + enc.columns[1].mean
    assert np.any((naive != 0) & (raw[:, 1] == 0))
    np.testing.assert_array_equal(back[:, :4], raw[:, :4])  # exact where the precision is known
    np.testing.assert_allclose(back[:, 4], raw[:, 4], rtol=1e-5, atol=1e-6)
    shown = enc.display(back[:3])
    assert all(type(v) is int for v in shown[:, 0]) and all(type(v) is int for v in shown[:, 1])
    assert set(shown[:, 3]) <= {"female", "male"}
    assert format_value(62150) == "62150" and format_value(62150.0) == "62150"
    assert format_value(0.35) == "0.35" and format_value(-0.0) == "0" and format_value("male") == "male"


def test_waterfall_and_lime_label_raw_values(frame):
    from audit.explain import compute_shap
    from audit.render.figures import saliency, shap as shapfig

    data = from_pandas(frame, target="default", categorical=["sex"])
    w = np.linspace(-1, 1, data.X.shape[1]).astype(np.float32)
    model = Model.from_function(lambda p, x: jnp.stack([jnp.zeros(len(x)), x @ p], axis=1), jnp.asarray(w),
                                input_shape=(data.X.shape[1],), class_names=("no", "yes"))
    test = data.test
    zero = int(np.flatnonzero(test.raw[:, 1] == 0)[0])
    result = compute_shap(model, test.X[zero:zero + 1], data.part("train").X[:20], data=data, target=1)
    labels = [t.get_text() for t in shapfig.waterfall(result, 0).axes[0].get_yticklabels()]
    row = frame.iloc[data.splits["test"][zero]]
    assert f"income = {int(row.income)}" in labels and "late_payments = 0" in labels
    assert f"sex = {row.sex}" in labels and f"debt_ratio = {format_value(row.debt_ratio)}" in labels
    assert not any("e-0" in label or "e+0" in label for label in labels)
    from audit.explain import Attribution
    lime = Attribution(method="lime", values=result.values, target=np.array([1]), level="raw",
                       feature_names=data.raw_feature_names)
    shown = tuple(format_value(v) for v in data.encoding.display(test.raw[zero:zero + 1])[0])
    labels = [t.get_text() for t in saliency.lime_weights(lime, shown=shown).axes[0].get_yticklabels()]
    assert f"sex = {row.sex}" in labels and "late_payments = 0" in labels
