"""Imports only go down: data/models -> analyzers -> pipeline -> render -> cli (DESIGN.md)."""

import ast
import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[1] / "audit"
LAYER = {"errors": 0, "_versions": 0, "results": 0, "data": 0, "datasets": 0, "models": 0,
         "explain": 1, "robustness": 1, "fairness": 1, "imbalance": 1, "ood": 1,
         "pipeline": 2, "render": 3, "cli": 4}
# AuditReport.to_html is part of the public contract (DESIGN.md); it imports the renderer lazily.
ALLOWED_UP = {("pipeline/_report.py", "audit.render.html")}


def imports(path):
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module


def layer_of(module: str):
    parts = module.split(".")
    return LAYER.get(parts[1]) if parts[0] == "audit" and len(parts) > 1 else None


def test_imports_only_go_down():
    violations = []
    for path in ROOT.rglob("*.py"):
        rel = path.relative_to(ROOT).as_posix()
        own = LAYER.get(rel.split("/")[0].removesuffix(".py"))
        if own is None:
            continue
        for module in imports(path):
            target = layer_of(module)
            if target is not None and target > own and (rel, module) not in ALLOWED_UP:
                violations.append(f"{rel} imports {module}")
    assert violations == []


def test_every_module_has_a_layer():
    top = {p.name.removesuffix(".py") for p in ROOT.iterdir() if p.name != "__init__.py" and not p.name.startswith("__")}
    assert top <= set(LAYER), top - set(LAYER)
