"""The domain stands on its own: nothing in portal/ imports the apps built on it
(workers, deployments, topology), at module level or inside a function."""

import ast
from pathlib import Path

PORTAL = Path(__file__).resolve().parents[1]
ABOVE = {"workers", "deployments", "topology"}


def imported_modules(tree):
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module


def portal_sources():
    for path in sorted(PORTAL.rglob("*.py")):
        parts = path.relative_to(PORTAL).parts
        if "tests" not in parts and "migrations" not in parts:
            yield path


def test_portal_imports_nothing_from_the_apps_above_it():
    crossings = [
        f"{path.relative_to(PORTAL.parent)}: {module}"
        for path in portal_sources()
        for module in imported_modules(ast.parse(path.read_text(), str(path)))
        if module.split(".")[0] in ABOVE
    ]
    assert crossings == []


def test_the_walk_sees_imports_inside_functions():
    tree = ast.parse("def f():\n    from workers.apply import request_apply\n    import topology.views\n")
    assert list(imported_modules(tree)) == ["workers.apply", "topology.views"]
