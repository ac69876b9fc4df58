import subprocess
import sys

from audit import cli
from audit.models import Model


def test_help_lists_commands(capsys):
    try:
        cli.main(["--help"])
    except SystemExit as exc:
        assert exc.code == 0
    out = capsys.readouterr().out
    assert "train" in out


def test_train_writes_a_loadable_checkpoint(tmp_path, capsys):
    code = cli.main(["train", "--dataset", "breast_cancer", "--out", str(tmp_path / "bc"),
                     "--epochs", "15", "--quiet"])
    out = capsys.readouterr().out
    assert code == 0
    assert "test accuracy" in out and "checkpoint written to" in out
    accuracy = float(out.split("test accuracy ")[1].split()[0])
    assert accuracy > 0.9
    assert Model.load(tmp_path / "bc").class_names == ("malignant", "benign")


def test_bad_input_exits_2_with_one_line():
    result = subprocess.run([sys.executable, "-m", "audit.cli", "train", "--dataset", "nope", "--out", "x"],
                            capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == ["audit: error: unknown dataset 'nope'; choose one of "
                                                  "['credit', 'breast_cancer', 'digits', 'mnist']."]


def test_console_entry_exits_with_mains_code_after_every_handler_and_all_output(tmp_path):
    marker = tmp_path / "handler-ran"
    script = f"""
import atexit, sys
from audit import cli

def main():  # a command that imports a library registering an exit handler, prints, and fails its policy
    atexit.register(lambda: open({str(marker)!r}, "w").write("ok"))
    print("x" * 100_000)  # more than a pipe's buffer: must be flushed before the process ends
    print("last line")
    return 1

cli.main = main
cli.entry()
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert result.returncode == 1
    assert result.stdout.endswith("last line\n") and len(result.stdout) == 100_011
    assert marker.read_text() == "ok"
