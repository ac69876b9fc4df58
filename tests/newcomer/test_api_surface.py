"""`import audit` reaches every public subpackage lazily, in a fresh interpreter (issue #13)."""

import subprocess
import sys

SUBPACKAGES = ("data", "datasets", "explain", "fairness", "imbalance", "models", "pipeline", "robustness")


def test_subpackages_reachable_after_import_audit():
    code = ("import sys, audit\n"
            "assert 'jax' not in sys.modules, 'import audit must stay cheap'\n"
            f"for name in {SUBPACKAGES!r}:\n"
            "    assert getattr(audit, name).__name__ == 'audit.' + name\n"
            "assert callable(audit.data.from_pandas) and callable(audit.fairness.assess)\n"
            "try:\n    audit.nonexistent\nexcept AttributeError:\n    pass\n"
            "else:\n    raise SystemExit('no AttributeError')\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
