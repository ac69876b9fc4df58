import textwrap

import pytest

from audit import AuditConfig, AuditInputError
from audit.pipeline import Rule


GOOD = """\
name: unit
seed: 3
data:
  dataset: credit
  options: {n: 400}
model:
  path: models/unit
  train: {arch: mlp, epochs: 2}
analyzers:
  accuracy: {split: test, warn_below: 0.7}
policy:
  - {metric: accuracy.accuracy, min: 0.8}
  - {metric: accuracy.recall:1, min: 0.1, severity: warn}
"""


def write(tmp_path, text):
    path = tmp_path / "config.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def test_yaml_round_trip(tmp_path, registry):
    config = AuditConfig.from_yaml(write(tmp_path, GOOD), registry=registry)
    assert config.seed == 3 and config.analyzers["accuracy"]["warn_below"] == 0.7
    assert config.policy[1] == Rule(metric="accuracy.recall:1", min=0.1, severity="warn")
    again = AuditConfig.from_yaml(write(tmp_path, config.to_yaml()), registry=registry)
    assert again.to_dict() == config.to_dict()
    assert AuditConfig.from_dict(config.to_dict(), registry=registry).to_dict() == config.to_dict()


@pytest.mark.parametrize("change, message", [
    (("seed: 3", "seeds: 3"), r"unknown key 'seeds' \(.*config.yaml, line 2\)"),
    (("  accuracy: {split: test, warn_below: 0.7}", "  acuracy: {}"), r"unknown analyzer 'analyzers.acuracy' \(.*line 10\)"),
    (("warn_below: 0.7", "warn_bellow: 0.7"), r"unknown setting 'analyzers.accuracy.warn_bellow' .*line 10.*allowed: \['sample', 'split', 'warn_below'\]"),
    (("warn_below: 0.7", "warn_below: high"), r"'analyzers.accuracy.warn_below' .* must be of type float"),
    (("seed: 3", "seed: -1"), r"'seed' .* must be a non-negative integer"),
    (("epochs: 2", "epochs: 0"), r"'model.train.epochs' .*line 8.* positive integer"),
    (("epochs: 2", "epochs: 2, learning_rate: fast"), r"'model.train.learning_rate' .* positive number, got 'fast'"),
    (("warn_below: 0.7", "warn_below: 0.7, sample: [1]"), r"'analyzers.accuracy.sample' .* must be of type int"),
    (("arch: mlp", "arch: mlp, depth: 3"), r"unknown key 'model.train.depth'"),
    (("min: 0.8}", "min: 0.9, max: 0.2}"), r"policy.0.*min 0.9 is above max 0.2"),
    (("min: 0.8}", "minimum: 0.8}"), r"policy.0.*unknown key\(s\) \['minimum'\]"),
    (("metric: accuracy.accuracy", "metric: accuracy"), r"'section.name'"),
    (("severity: warn", "severity: loud"), r"'severity' must be 'fail' or 'warn'"),
    (("  dataset: credit", "  dataset: credit\n  csv: x.csv"), r"exactly one of 'dataset'"),
    (("name: unit", "name: [unit"), r"not valid YAML at line"),
])
def test_malformed_configs_name_the_key(tmp_path, change, message, registry):
    old, new = change
    assert old in GOOD
    with pytest.raises(AuditInputError, match=message):
        AuditConfig.from_yaml(write(tmp_path, GOOD.replace(old, new)), registry=registry)


def test_missing_and_empty_files(tmp_path):
    with pytest.raises(AuditInputError, match="does not exist"):
        AuditConfig.from_yaml(tmp_path / "nope.yaml")
    with pytest.raises(AuditInputError, match="is empty"):
        AuditConfig.from_yaml(write(tmp_path, ""))


def test_python_configs_are_validated_too():
    with pytest.raises(AuditInputError, match="unknown analyzer"):
        AuditConfig(analyzers={"nope": {}})
    with pytest.raises(AuditInputError, match="give 'min' and/or 'max'"):
        AuditConfig(policy=[{"metric": "accuracy.accuracy"}])
