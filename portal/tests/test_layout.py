"""Imports point one way: the domain (portal/) at the bottom, workers/ above it,
deployments/, topology/ and notifications/ on top (none of the three imports another);
no module imports the apps above its own, and no import cycle exists, counting imports
inside functions too. (The same layers are import-linter contracts in pyproject.toml:
`.venv/bin/lint-imports`.)"""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
APPS = ("portal", "workers", "deployments", "topology", "notifications")
# What each app may not import.
TOP = {"deployments", "topology", "notifications"}
FORBIDDEN = {
    "portal": {"workers", *TOP},
    "workers": TOP,
    **{app: TOP - {app} for app in TOP},
}


def modules():
    """{dotted module name: path} of the product code (tests and migrations left out)."""
    found = {}
    for app in APPS:
        for path in sorted((ROOT / app).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            if "tests" in parts or "migrations" in parts:
                continue
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def imported_names(module, path, tree):
    """Every dotted name an import in `tree` may refer to, relative imports resolved."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1])
                target = f"{base}.{node.module}" if node.module else base
            else:
                target = node.module
            yield target
            yield from (f"{target}.{alias.name}" for alias in node.names)


def import_graph():
    mods = modules()
    edges = {m: set() for m in mods}
    for module, path in mods.items():
        for name in imported_names(module, path, ast.parse(path.read_text(), str(path))):
            while name not in mods and "." in name:
                name = name.rpartition(".")[0]
            if name in mods and name != module and not module.startswith(f"{name}."):
                edges[module].add(name)
    return edges


def cycles(edges):
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index, low, on_stack, stack, found, counter = {}, {}, set(), [], [], 0
    for start in edges:
        if start in index:
            continue
        work = [(start, iter(sorted(edges[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.add(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_no_app_imports_the_apps_above_it():
    crossings = [
        f"{module} imports {target}"
        for module, targets in import_graph().items()
        for target in targets
        if target.split(".")[0] in FORBIDDEN.get(module.split(".")[0], ())
    ]
    assert crossings == []


def test_no_import_cycle():
    assert cycles(import_graph()) == []


def test_the_walk_sees_imports_inside_functions_and_relative_ones():
    tree = ast.parse("def f():\n    from workers.apply import request_apply\n    from . import graph\n")
    names = list(imported_names("portal.plan", Path("plan.py"), tree))
    assert names == ["workers.apply", "workers.apply.request_apply", "portal", "portal.graph"]


def test_the_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
