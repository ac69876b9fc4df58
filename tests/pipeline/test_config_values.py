"""Issue #13: impossible values, choices, cross-setting constraints and policy metric names are
rejected when the config loads (key, file and line named), and data-dependent settings before
any model is trained."""

import os
import textwrap

import pytest

from audit import AuditConfig, AuditInputError
from audit.pipeline import run_config

BASE = """\
name: values
seed: 0
data:
  dataset: credit
  options: {n: 600}
model:
  path: models/values
  train: {arch: mlp, epochs: 1}
analyzers:
  imbalance: {}
  robustness:
    n: 20
    eps: [0.1, 0.2]
    attacks: [fgsm, pgd]
    norm: linf
  fairness: {favorable_class: "no", n_bootstrap: 10}
  certify: {n: 10}
policy:
  - {metric: imbalance.min_class_recall, min: 0.5}
"""


def write(tmp_path, text):
    path = tmp_path / "config.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def test_base_config_is_valid(tmp_path):
    config = AuditConfig.from_yaml(write(tmp_path, BASE))
    assert config.analyzers["robustness"]["eps"] == [0.1, 0.2]


@pytest.mark.parametrize("old, new, message", [
    ("    n: 20", "    n: -5", r"'analyzers.robustness.n' \(.*config.yaml, line 12\) must be an integer >= 1, got -5"),
    ("eps: [0.1, 0.2]", "eps: [0.1, -0.2]", r"'analyzers.robustness.eps.1' \(.*line 13\) must be a finite number >= 0, got -0.2"),
    ("eps: [0.1, 0.2]", "eps: []", r"'analyzers.robustness.eps' .* is empty"),
    ("attacks: [fgsm, pgd]", "attacks: [pgd, nonsense]", r"'analyzers.robustness.attacks.1' \(.*line 14\) is 'nonsense', not one of \["),
    ("attacks: [fgsm, pgd]", "attacks: [fgsm, pdg]", r"Did you mean 'pgd'\?"),
    ("    norm: linf", "    norm: l7", r"'analyzers.robustness.norm' \(.*line 15\) is 'l7', not one of \['linf', 'l2'\]"),
    ("  certify: {n: 10}", "  certify: {n: 10, domain: foo}", r"'analyzers.certify.domain' .* takes a Python object"),
    ("  certify: {n: 10}", "  certify: {n: 10, alpha: 0.7}", r"'analyzers.certify.alpha' .* in \(0, 0.5\)"),
    ("  certify: {n: 10}", "  certify: {n: 10, methods: [ibp], norm: l2}", r"IBP bounds an L-inf box"),
    ("  imbalance: {}", "  imbalance: {split: testing}", r"'analyzers.imbalance.split' .* not one of \['train', 'val', 'test'\]. Did you mean 'test'\?"),
    ("  imbalance: {}", "  imbalance: {max_ece: 2}", r"'analyzers.imbalance.max_ece' .* in \[0, 1\], got 2"),
    ("n_bootstrap: 10}", "n_bootstrap: 10, attribution: lime}", r"'analyzers.fairness.attribution' .* not one of"),
    ("min_class_recall, min", "min_class_recal, min", None),  # checked below when the result declares METRICS
    ("metric: imbalance.min_class_recall", "metric: imbalanse.min_class_recall",
     r"policy.0.metric' \(.*line 19\) asks for 'imbalanse.min_class_recall', but no configured analyzer is called 'imbalanse'.*Did you mean 'imbalance.'"),
    ("metric: imbalance.min_class_recall", "metric: explain.ig_completeness_error",
     r"no configured analyzer is called 'explain'"),
])
def test_impossible_values_are_rejected_at_load(tmp_path, old, new, message):
    assert old in BASE
    path = write(tmp_path, BASE.replace(old, new))
    if message is None:
        from audit.imbalance import ImbalanceReport
        if not getattr(ImbalanceReport, "METRICS", None):
            pytest.skip("ImbalanceReport does not declare METRICS yet")
        message = r"'imbalance.min_class_recal', which the 'imbalance' analyzer does not produce. Did you mean"
    with pytest.raises(AuditInputError, match=message):
        AuditConfig.from_yaml(path)


def test_python_configs_are_checked_too():
    with pytest.raises(AuditInputError, match=r"'analyzers.robustness.n' must be an integer >= 1"):
        AuditConfig(analyzers={"robustness": {"n": 0}})
    with pytest.raises(AuditInputError, match="no configured analyzer is called 'fairnes'"):
        AuditConfig(analyzers={"fairness": {}}, policy=[{"metric": "fairnes.demographic_parity_difference:sex", "max": 0.1}])
    AuditConfig(policy=[{"metric": "fairness.demographic_parity_difference:sex", "max": 0.1}])  # default analyzers


@pytest.mark.parametrize("old, new, message", [
    ('favorable_class: "no"', "favorable_class: maybe", r"'analyzers.fairness.favorable_class' \(.*line 16\) is 'maybe', but the data 'credit' has classes \['no', 'yes'\]"),
    ('favorable_class: "no"', "favorable_class: 2", r"favorable_class.*is 2"),
    ('favorable_class: "no"', "attributes: [sex, gender]", r"'analyzers.fairness.attributes' .* names 'gender', which is not a sensitive attribute"),
    ("    norm: linf", "    norm: linf\n    immutable: [incomee]", r"'analyzers.robustness.immutable.0' .* names 'incomee'.*Did you mean 'income'\?"),
])
def test_data_dependent_settings_fail_before_training(tmp_path, monkeypatch, old, new, message):
    assert old in BASE
    config = AuditConfig.from_yaml(write(tmp_path, BASE.replace(old, new)))
    import audit.models
    monkeypatch.setattr(audit.models, "train", lambda *a, **k: pytest.fail("trained before the check"))
    with pytest.raises(AuditInputError, match=message):
        run_config(config, progress=False)
    assert not os.path.exists(tmp_path / "models" / "values")


def test_relative_paths_resolve_against_the_config_folder(tmp_path, monkeypatch):
    (tmp_path / "sub").mkdir()
    path = tmp_path / "sub" / "config.yaml"
    path.write_text("data: {csv: ../data/x.csv, target: y}\nmodel: {path: ../models/m}\n")
    monkeypatch.chdir("/")
    config = AuditConfig.from_yaml(path)
    assert config.data["csv"] == str(tmp_path / "data" / "x.csv")
    assert config.model["path"] == str(tmp_path / "models" / "m")
