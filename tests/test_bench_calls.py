"""bench/ scripts call the audit API with keywords it still takes. CI does not install the peers
the benches race (torch, ART), so it cannot run them; this reads their calls instead (a renamed
keyword once left bench rows silently unrunnable)."""

import ast
import importlib
import inspect
import pathlib

import pytest

BENCH = pathlib.Path(__file__).resolve().parents[1] / "bench"


def audit_names(tree: ast.Module) -> dict[str, object]:
    """Names a script binds from `audit` (modules and functions), resolved to the objects."""
    names = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "audit" and node.level == 0:
            module = importlib.import_module(node.module)
            for alias in node.names:
                target = getattr(module, alias.name, None)
                if target is None:  # a submodule not loaded by its package
                    target = importlib.import_module(f"{node.module}.{alias.name}")
                names[alias.asname or alias.name] = target
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "audit" and alias.asname:
                    names[alias.asname] = importlib.import_module(alias.name)
    return names


def called(func: ast.expr, names: dict[str, object]):
    if isinstance(func, ast.Name):
        return names.get(func.id)
    if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and func.value.id in names:
        return getattr(names[func.value.id], func.attr, None)
    return None


def unknown_keywords(path: pathlib.Path) -> list[str]:
    tree = ast.parse(path.read_text())
    names = audit_names(tree)
    problems = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        target = called(node.func, names)
        if not callable(target):
            continue
        try:
            parameters = inspect.signature(target).parameters
        except (TypeError, ValueError):
            continue
        if any(p.kind is p.VAR_KEYWORD for p in parameters.values()):
            continue
        for keyword in node.keywords:
            if keyword.arg is not None and keyword.arg not in parameters:
                problems.append(f"{path.name}:{node.lineno} {ast.unparse(node.func)}(... {keyword.arg}=)")
    return problems


@pytest.mark.parametrize("path", sorted(BENCH.glob("*.py")), ids=lambda p: p.name)
def test_bench_calls_use_keywords_the_api_takes(path):
    assert unknown_keywords(path) == []


def test_the_check_catches_a_renamed_keyword(tmp_path):
    script = tmp_path / "old.py"
    script.write_text("from audit.explain import compute_shap\ncompute_shap(m, X, bg, class_index=1)\n")
    assert unknown_keywords(script) == ["old.py:2 compute_shap(... class_index=)"]
