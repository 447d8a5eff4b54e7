"""The import structure of medops, read from the source with ``ast`` (nothing is imported).

Two rules, checked over every ``import`` in ``src/medops`` (function bodies included, ``if
TYPE_CHECKING:`` blocks excluded, since they never run):

1. no import cycle between packages (``medops.X`` for a subpackage, the module itself for a
   top-level module such as ``medops.events``);
2. no module imports a package of a higher layer (``LAYERS`` below).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
ROOT = "medops"

# Layers, low to high: a package may import its own layer and the layers below it, never above.
# Packages on one layer may import one another (rule 1 still forbids cycles between them).
LAYERS: list[set[str]] = [
    {"medops", "medops.errors", "medops.paths", "medops.content"},  # root, errors, cache dirs, message parts
    {"medops.models"},  # one async chat interface, backends, pricing and run cost accounting
    {"medops.events"},  # typed run / call / row events and their bus (imports models.base only)
    {"medops.datasets"},  # files -> validated examples; built-in names and their download cache
    {"medops.prompts", "medops.grading", "medops.scoring"},
    {"medops.rewards"},  # TRL / verl reward functions: beside grading (imports grading.extract)
    {"medops.privacy"},  # PHI detection and redaction (Presidio + medops recognizers)
    {"medops.store"},
    {"medops.audit"},  # the hash-chained audit trail: records through the store, subscribes to run events
    {"medops.accounts"},  # dashboard users, API tokens, sessions: Argon2 hashes in the store, audited
    {"medops.evaluation"},  # runs: rubric, exam, meta-eval, through one benchmark contract
    {"medops.ops"},  # compare, gate
    {"medops.rl"},  # RL prepare / difficulty / train / before-after (pairs runs with ops.compare)
    {"medops.monitor"},  # production: gateway, recorder, online grading, canaries, drift, alerts
    {"medops.reports"},
    {"medops.tracking"},  # MLflow: an event subscriber
    {"medops.api"},
    {"medops.web"},  # medops serve: FastAPI pages and /api/ over medops.api
    {"medops.testing"},  # test support that ships with medops: may import anything below cli
    {"medops.cli"},
]
LAYER = {package: rank for rank, packages in enumerate(LAYERS) for package in packages}

# Upward imports in modules whose owners have not fixed them yet, as (importing module, imported
# module). Each entry is a debt with its fix noted; the integrator empties this list. An entry
# that no longer occurs fails the test, so the list only shrinks.
KNOWN_VIOLATIONS: set[tuple[str, str]] = set()


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def package_of(module: str) -> str:
    """``medops.X`` for anything inside a subpackage ``medops/X/``; a top-level module is its own."""
    parts = module.split(".")
    return ".".join(parts[:2])


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(node: ast.AST, module: str, is_package: bool) -> Iterator[str]:
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.If) and _is_type_checking(child.test):
            for inner in child.orelse:  # the else branch does run
                yield from _imports_of_statement(inner, module, is_package)
            continue
        yield from _imports_of_statement(child, module, is_package)


def _imports_of_statement(node: ast.AST, module: str, is_package: bool) -> Iterator[str]:
    if isinstance(node, ast.Import):
        for alias in node.names:
            yield alias.name
    elif isinstance(node, ast.ImportFrom):
        if node.level:
            base = module.split(".")
            base = base if is_package else base[:-1]
            base = base[: len(base) - (node.level - 1)]
            target = ".".join([*base, node.module] if node.module else base)
        else:
            target = node.module or ""
        yield target
        for alias in node.names:  # ``from medops.x import y`` may name the module medops.x.y
            yield f"{target}.{alias.name}"
    else:
        yield from _imports(node, module, is_package)


def import_graph() -> dict[str, set[str]]:
    """Module -> the medops modules it imports (names that are not modules resolve to their module)."""
    files = {module_name(p): p for p in sorted((SRC / ROOT).rglob("*.py"))}
    graph: dict[str, set[str]] = {}
    for module, path in files.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        targets = set()
        for name in _imports(tree, module, path.name == "__init__.py"):
            if name != ROOT and not name.startswith(ROOT + "."):
                continue
            while name not in files:  # medops.x.y where y is a function: the module is medops.x
                name = name.rpartition(".")[0]
            if name != module:
                targets.add(name)
        graph[module] = targets
    return graph


def strongly_connected(graph: dict[str, set[str]]) -> list[set[str]]:
    """Tarjan's algorithm, iterative."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[set[str]] = []
    for start in graph:
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            for child in children:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            else:
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
                    components.append(component)
    return components


def package_edges(graph: dict[str, set[str]]) -> dict[tuple[str, str], list[tuple[str, str]]]:
    """(package, package) -> the module imports behind that edge."""
    edges: dict[tuple[str, str], list[tuple[str, str]]] = {}
    for module, targets in graph.items():
        for target in targets:
            a, b = package_of(module), package_of(target)
            if a != b and b != ROOT:
                edges.setdefault((a, b), []).append((module, target))
    return edges


def test_the_graph_is_read():
    graph = import_graph()
    assert "medops.events" in graph and "medops.models.base" in graph["medops.events"]
    assert all(package_of(m) in LAYER for m in graph), sorted({package_of(m) for m in graph} - set(LAYER))


def test_no_import_cycle_between_packages():
    edges = package_edges(import_graph())
    graph: dict[str, set[str]] = {}
    for (a, b), imports in edges.items():
        if all(edge in KNOWN_VIOLATIONS for edge in imports):
            continue
        graph.setdefault(a, set()).add(b)
        graph.setdefault(b, set())
    cycles = [sorted(c) for c in strongly_connected(graph) if len(c) > 1]
    detail = [
        f"{a} -> {b}: {', '.join(f'{m} imports {t}' for m, t in edges[(a, b)])}"
        for cycle in cycles
        for a in cycle
        for b in cycle
        if (a, b) in edges
    ]
    assert not cycles, "import cycles between packages:\n" + "\n".join(detail)


def test_no_module_imports_a_higher_layer():
    graph = import_graph()
    upward = sorted(
        (module, target)
        for module, targets in graph.items()
        for target in targets
        if LAYER[package_of(target)] > LAYER[package_of(module)]
    )
    unexpected = [edge for edge in upward if edge not in KNOWN_VIOLATIONS]
    assert not unexpected, "imports of a higher layer:\n" + "\n".join(f"{m} imports {t}" for m, t in unexpected)
    fixed = sorted(KNOWN_VIOLATIONS - set(upward))
    assert not fixed, f"fixed: remove from KNOWN_VIOLATIONS: {fixed}"


def test_the_reader_sees_imports_in_functions_and_skips_type_checking_blocks():
    source = (
        "import medops.a\n"
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from medops.hidden import X\nelse:\n    from medops.shown import Y\n"
        "def f():\n    from medops.b import c\n"
        "class K:\n    def m(self):\n        from . import sibling\n"
    )
    found = set(_imports(ast.parse(source), "medops.pkg.mod", is_package=False))
    assert {"medops.a", "medops.shown", "medops.b", "medops.b.c", "medops.pkg.sibling"} <= found
    assert not any(name.startswith("medops.hidden") for name in found)
