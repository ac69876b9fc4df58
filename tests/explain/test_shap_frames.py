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


def test_report_shap_plots_with_shap_directly(credit_small, credit_model):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import shap

    from audit import AuditConfig, run

    report = run(credit_model, credit_small, AuditConfig(analyzers={"explain": {"n_examples": 3, "methods": ["shap"],
                                                                                 "stability_samples": 0,
                                                                                 "permutation_repeats": 1}}),
                 progress=False)
    explanation = report.shap
    assert isinstance(explanation, shap.Explanation)
    result = report.sections["explain"].result.shap
    np.testing.assert_array_equal(explanation.values, result.values)
    shap.plots.waterfall(explanation[0], show=False)
    shap.plots.beeswarm(explanation, show=False)
    shap.plots.bar(explanation, show=False)
    plt.close("all")
