"""Issue #13: fairness metrics with fairlearn's call shape equal fairlearn's numbers, with
sample weights, several sensitive columns (intersected) and string labels."""

import fairlearn.metrics as fl
import numpy as np
import pandas as pd
import pytest

import audit
from audit import AuditInputError

NAMES = ("demographic_parity_difference", "demographic_parity_ratio", "equalized_odds_difference",
         "equalized_odds_ratio", "equal_opportunity_difference", "equal_opportunity_ratio")


@pytest.fixture(scope="module")
def rows():
    rng = np.random.default_rng(0)
    n = 600
    sex = rng.choice(["f", "m"], n)
    age = rng.choice(["young", "mid", "old"], n, p=[0.3, 0.5, 0.2])
    y = rng.integers(0, 2, n)
    pred = np.where(rng.random(n) < 0.7 + 0.1 * (sex == "m"), y, 1 - y)
    w = rng.uniform(0.2, 3.0, n)
    return y, pred, sex, age, w


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("method", ["between_groups", "to_overall"])
def test_equals_fairlearn(rows, name, method):
    y, pred, sex, age, w = rows
    ours, theirs = getattr(audit.fairness, name), getattr(fl, name)
    for features in (sex, pd.DataFrame({"sex": sex, "age": age})):
        for weight in (None, w):
            expected = theirs(y, pred, sensitive_features=features, method=method, sample_weight=weight)
            got = ours(y, pred, sensitive_features=features, method=method, sample_weight=weight)
            assert got == pytest.approx(expected, abs=1e-12), (name, method, weight is None)


def test_string_labels_with_pos_label(rows):
    y, pred, sex, _, w = rows
    labels = np.array(["no", "yes"])
    got = audit.fairness.equalized_odds_difference(labels[y], labels[pred], sensitive_features=sex,
                                                   pos_label="yes", sample_weight=w)
    assert got == pytest.approx(fl.equalized_odds_difference(y, pred, sensitive_features=sex, sample_weight=w))
    with pytest.raises(AuditInputError, match="pos_label="):
        audit.fairness.demographic_parity_difference(labels[y], labels[pred], sensitive_features=sex)


def test_by_group_matches_metricframe(rows):
    y, pred, sex, age, w = rows
    features = pd.DataFrame({"sex": sex, "age": age})
    table = audit.fairness.by_group(y, pred, sensitive_features=features, sample_weight=w)
    frame = fl.MetricFrame(metrics={"selection_rate": fl.selection_rate, "true_positive_rate": fl.true_positive_rate},
                           y_true=y, y_pred=pred, sensitive_features=features,
                           sample_params={"selection_rate": {"sample_weight": w}, "true_positive_rate": {"sample_weight": w}})
    for (s, a), row in frame.by_group.iterrows():
        assert table.loc[f"{s},{a}", "selection_rate"] == pytest.approx(row["selection_rate"])
        assert table.loc[f"{s},{a}", "true_positive_rate"] == pytest.approx(row["true_positive_rate"])
    assert isinstance(table, pd.DataFrame) and table["count"].sum() == len(y)


def test_assess_result_converts_to_pandas(rows):
    y, pred, sex, _, _ = rows
    result = audit.fairness.assess(y, pred, sex, name="sex", n_bootstrap=0)
    frame = result.by_group
    assert isinstance(frame, pd.DataFrame) and list(frame.index) == list(result.groups)
    rates = fl.MetricFrame(metrics=fl.selection_rate, y_true=y, y_pred=pred, sensitive_features=sex).by_group
    for g in result.groups:
        assert frame.loc[g, "selection_rate"] == pytest.approx(rates[g])
    both = result.to_frame()
    assert both.index.names == ["class", "sex"] and len(both) == len(result.tables) * len(result.groups)
