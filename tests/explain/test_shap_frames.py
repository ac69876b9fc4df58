"""Issue #13: shap_values accepts pandas DataFrames (model inputs by name, or raw columns with
the Dataset's encoding) and gives the same values as the array call."""

import numpy as np
import pandas as pd
import pytest

from audit import AuditInputError
from audit.explain import shap_values


def test_dataframe_of_inputs_and_of_raw_columns(credit_small, credit_model):
    test = credit_small.part("test")
    x, bg = test.X[:3], credit_small.part("train").X[:8]
    expected = shap_values(credit_model, x, bg, data=credit_small).values
    shuffled = pd.DataFrame(x, columns=credit_small.feature_names).iloc[:, ::-1]  # order by name, not position
    got = shap_values(credit_model, shuffled, bg, data=credit_small).values
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-7)
    enc = credit_small.encoding
    raw = pd.DataFrame({c.name: (np.asarray(c.categories)[test.raw[:3, j].astype(int)] if c.kind == "categorical"
                                 else test.raw[:3, j]) for j, c in enumerate(enc.columns)})
    got_raw = shap_values(credit_model, raw, bg, data=credit_small).values
    np.testing.assert_allclose(got_raw, expected, rtol=1e-5, atol=1e-6)
    with pytest.raises(AuditInputError, match="expected the model's inputs"):
        shap_values(credit_model, raw.rename(columns={"income": "incom"}), bg, data=credit_small)
