"""Imports only go down: data/models -> analyzers -> pipeline -> render -> cli (DESIGN.md)."""

import ast
import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[1] / "audit"
LAYER = {"errors": 0, "_versions": 0, "results": 0, "parallel": 0, "intervals": 0, "data": 0, "datasets": 0, "models": 0,
         "explain": 1, "robustness": 1, "fairness": 1, "imbalance": 1, "recourse": 1, "ood": 1, "slices": 1,
         "missing": 1,
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
    top = {p.name.removesuffix(".py") for p in ROOT.iterdir() if p.name != "__init__.py" and not p.name.startswith("__")
           and (p.suffix == ".py" or any(p.rglob("*.py")))}  # data-only folders (demos/) hold no code
    assert top <= set(LAYER), top - set(LAYER)


# ---- no circles: neither between the packages of audit/ nor between any two files of the tree ----
TREE = ROOT.parent
SCANNED = ("audit", "dashboards", "bench", "tests", "examples", "reports")


def _module_file(name: str, near: pathlib.Path):
    """The file `import name` loads: a module of the tree, or a script's sibling (bench/ adds its
    own folder to sys.path); None for third-party modules."""
    script_dir = () if (near.parent / "__init__.py").exists() else (near.parent,)
    for base in (TREE, *script_dir):
        stem = base / name.replace(".", "/")
        for candidate in (stem.with_suffix(".py"), stem / "__init__.py"):
            if candidate.is_file():
                return candidate
    return None


def _edges(path: pathlib.Path):
    """Every file `path` imports, at module level or inside a function (a local import hides a
    circle from the interpreter, not from readers)."""
    tree = ast.parse(path.read_text())
    typing_only = {id(n) for block in ast.walk(tree) if isinstance(block, ast.If)
                   and ast.unparse(block.test) in ("TYPE_CHECKING", "typing.TYPE_CHECKING")
                   for n in ast.walk(block)}  # imports for annotations only never run
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.Import):
            names = [(alias.name, None) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = path.parent
                for _ in range(node.level - 1):
                    package = package.parent
                prefix = ".".join(package.relative_to(TREE).parts)
                base = f"{prefix}.{base}" if base else prefix
            names = [(base, alias.name) for alias in node.names]
        else:
            continue
        for module, attr in names:
            target = _module_file(f"{module}.{attr}", path) if attr else None  # `from pkg import submodule`
            target = target or _module_file(module, path)
            if target is not None and target != path:
                yield target


def _cycle(graph: dict) -> list:
    """One cycle of `graph` (node -> set of nodes) as a list of nodes, or [] if there is none."""
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph.get(node, ()), key=str):
            if state.get(nxt) == "open":
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        state[node] = "done"
        stack.pop()
        return []

    for node in sorted(graph, key=str):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return []


def _file_graph() -> dict:
    files = [p for top in SCANNED if (TREE / top).is_dir() for p in (TREE / top).rglob("*.py")]
    return {p: set(_edges(p)) for p in files}


def _package(path: pathlib.Path):
    rel = path.relative_to(TREE).parts
    return rel[1].removesuffix(".py") if rel[0] == "audit" and len(rel) > 2 else None


def test_no_circle_between_files():
    cycle = _cycle(_file_graph())
    assert cycle == [], " -> ".join(p.relative_to(TREE).as_posix() for p in cycle)


def test_no_circle_between_packages():
    """fairness -> imbalance -> fairness is a circle even when each file-level arrow is fine."""
    graph: dict = {}
    for src, targets in _file_graph().items():
        a = _package(src)
        for dst in targets:
            b = _package(dst)
            if a and b and a != b and (src.relative_to(ROOT).as_posix(), _dotted(dst)) not in ALLOWED_UP:
                graph.setdefault(a, set()).add(b)
    assert _cycle(graph) == [], " -> ".join(_cycle(graph))


def _dotted(path: pathlib.Path) -> str:
    parts = list(path.relative_to(TREE).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def test_the_circle_checks_can_fail():
    """The checks above find the circles they are meant to find (a check that cannot fail proves nothing)."""
    a, b, c = (pathlib.Path(n) for n in "abc")
    assert _cycle({a: {b}, b: {c}, c: {a}}) == [a, b, c, a]
    assert _cycle({a: {b}, b: {c}, c: set()}) == []
