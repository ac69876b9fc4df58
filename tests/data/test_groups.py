"""Issue #12: one grouping of a sensitive attribute, owned by the data layer, used by fairness,
robustness per group and the dashboard, so 'age' means the same bands in every section."""

from __future__ import annotations

import numpy as np
import pytest

from audit.data import attribute_groups, make_grouping
from audit.errors import AuditInputError


def test_a_subset_keeps_the_bands_of_all_rows(credit_small):
    full = make_grouping(credit_small.sensitive["age"], "age")
    rows = credit_small.splits["test"][:40]  # a small sample has other quartiles
    g = attribute_groups(credit_small, "age", rows)
    assert set(g.labels) <= set(full.labels)
    assert [g.labels[c] for c in g.codes] == [full.labels[c] for c in full.codes[rows]]
    cross = attribute_groups(credit_small, "sex&age", rows)
    assert all("&" in label for label in cross.labels) and len(cross.codes) == len(rows)
    with pytest.raises(AuditInputError, match="no sensitive attribute 'height'"):
        attribute_groups(credit_small, "height")


def test_fairness_robustness_and_dashboard_share_the_groups(credit_small, credit_model):
    from audit.fairness import evaluate as fairness
    from audit.robustness import evaluate as robustness

    fair = fairness(credit_model, credit_small, attributes=["age"], n_bootstrap=0, proxies=False)
    rob = robustness(credit_model, credit_small, eps=[0.05], attacks=["fgsm"], n=80, min_perturbation_n=0,
                     impute_k=(), bootstrap=0, examples_per_eps=0, sanity=False)
    bands = set(fair.attribute("age").groups)
    rob_bands = {c.name for c in rob.curves_of("group", attribute="age")}
    assert rob_bands <= bands and len(rob_bands) >= 2
    pooled = sum(c.n * c.accuracy for c in rob.curves_of("group", attribute="age")) / rob.n
    np.testing.assert_allclose(pooled, rob.curve("ensemble").accuracy, atol=1e-12)
    # a group too small to judge never realises robustness's per-group gap either
    import dataclasses
    sex = rob.curves_of("group", attribute="sex")
    tiny = dataclasses.replace(sex[0], name="tiny", n=1, accuracy=sex[0].accuracy * 0 - 1)
    bigger = dataclasses.replace(rob, curves=rob.curves + (tiny,))
    key = "robust_accuracy_gap:sex@0.05"
    assert bigger.metrics().get(key) == rob.metrics().get(key)
    assert all(c.n >= 30 for c in sex) == (key in rob.metrics())


def test_dashboard_grouping_is_the_data_layers(credit_small):
    pytest.importorskip("streamlit")
    from dashboards import _live

    settings = {"bins": {"age": [30, 50]}, "n_bins": 4}
    live = _live.grouping(credit_small, "sex&age", settings=settings)
    ref = attribute_groups(credit_small, "sex&age", credit_small.splits["test"], edges={"age": [30, 50]})
    assert live.labels == ref.labels and np.array_equal(live.codes, ref.codes)
    assert any("[30, 50)" in label for label in live.labels)
