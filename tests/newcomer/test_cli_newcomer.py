"""Issue #13 at the command line: README commands do not collide, a checkpoint that does not fit
the data says which checkpoint and what it was trained on, and `audit demo` shares the exit codes."""

import types

import pytest

import audit.pipeline
from audit import AuditConfig, AuditInputError, cli
from audit.pipeline import load_data, load_model


def test_train_refuses_to_replace_a_checkpoint_without_force(tmp_path, linear_model, capsys):
    linear_model.save(tmp_path / "credit")
    assert cli.main(["train", "--dataset", "credit", "--out", str(tmp_path / "credit"), "--quiet"]) == 2
    assert "already holds a checkpoint" in capsys.readouterr().err and "--force" in cli.build_parser().format_help() + \
        cli.build_parser()._subparsers._group_actions[0].choices["train"].format_help()


def test_checkpoint_that_does_not_fit_names_itself_and_its_training_data(tmp_path, credit_model):
    path = str(tmp_path / "ckpt")
    credit_model.replace(metadata={**credit_model.metadata, "data": {
        **credit_model.metadata["data"], "config": {"dataset": "credit", "options": {"n": 3000}}}}).save(path)
    config = AuditConfig(data={"dataset": "credit", "options": {"n": 3000, "include_sensitive": True}},
                         model={"path": path, "train": {"epochs": 1}})
    data = load_data(config)
    with pytest.raises(AuditInputError) as info:
        load_model(config, data, progress=False)
    message = str(info.value)
    assert f"checkpoint {path!r} does not fit the data 'credit'" in message
    assert "It was trained on data 'credit' (config data section {'dataset': 'credit', 'options': {'n': 3000}})" in message
    assert "inputs the model never saw: ['age', 'sex=female', 'sex=male']" in message
    assert "delete that folder" in message


@pytest.mark.parametrize("passed, incomplete, code", [(True, False, 0), (False, False, 1), (False, True, 2)])
def test_demo_exit_codes_match_audit_run(tmp_path, monkeypatch, passed, incomplete, code):
    failed = types.SimpleNamespace(failed="ValueError: boom") if incomplete else types.SimpleNamespace(failed=None)
    report = types.SimpleNamespace(name="credit", passed=passed, incomplete=incomplete, findings=(),
                                   verdict="pass" if passed else "fail", sections={"robustness": failed})
    seen = []
    monkeypatch.setattr(audit.pipeline, "run_config",
                        lambda config, progress, on_section=None: seen.append(config) or (report, None, None))
    monkeypatch.setattr(cli, "_write_outputs", lambda r, out, renderer=None: (f"{out}/report.json", f"{out}/report.html"))
    monkeypatch.chdir(tmp_path)
    assert cli.main(["demo", "--only", "credit", "--quiet"]) == code
    assert seen[0].model["path"] == str(tmp_path / "models" / "credit")  # models/ under the working folder
