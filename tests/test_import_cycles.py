"""No import cycle among the project's modules: every import statement of ``flows/``, ``tasks/``, ``pipelines/``
and ``studies/`` — at module level, inside functions and under ``if TYPE_CHECKING:`` alike, relative imports
resolved — is an edge of one graph of project modules, and that graph has no cycle.

A package's ``__init__`` importing its submodules counts like any module. Imports by name at run time
(``importlib.import_module``, e.g. the plot registry discovering ``tasks.plots_*``) are not statements and do not
count: that is how a registry finds its members without a cycle.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("flows", "tasks", "pipelines", "studies", "data_catalog")


@dataclass(frozen=True)
class Edge:
    """``source`` imports ``target`` at ``path:line``; ``how`` is "module", "function" or "type-only"."""

    source: str
    target: str
    path: str
    line: int
    how: str


def modules(root: Path, packages: tuple[str, ...] = PACKAGES) -> dict[str, Path]:
    """Dotted module name -> file, for every ``.py`` file under ``root/<package>`` (``pkg/__init__.py`` is
    ``pkg``); packages that do not exist are skipped."""
    found: dict[str, Path] = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def _type_checking(test: ast.expr) -> bool:
    return ast.unparse(test) in ("TYPE_CHECKING", "typing.TYPE_CHECKING", "t.TYPE_CHECKING")


def _imports(tree: ast.Module):
    """(import node, how) for every import statement of a module, ``how`` = "type-only" under ``if
    TYPE_CHECKING:``, "function" inside a function body, else "module"."""

    def visit(node: ast.AST, how: str):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.Import | ast.ImportFrom):
                yield child, how
            elif isinstance(child, ast.If) and _type_checking(child.test):
                for stmt in child.body:
                    yield from visit(ast.Module(body=[stmt], type_ignores=[]), "type-only")
                for stmt in child.orelse:
                    yield from visit(ast.Module(body=[stmt], type_ignores=[]), how)
            elif isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                yield from visit(child, "type-only" if how == "type-only" else "function")
            else:
                yield from visit(child, how)

    yield from visit(tree, "module")


def _resolve(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    """The absolute name of the module a ``from … import`` names (relative levels resolved)."""
    if node.level == 0:
        return node.module or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _project(name: str, known: dict[str, Path]) -> str | None:
    """The deepest project module that ``name`` (a dotted import target) is or lies in, if any."""
    parts = name.split(".")
    for i in range(len(parts), 0, -1):
        if ".".join(parts[:i]) in known:
            return ".".join(parts[:i])
    return None


def import_graph(root: Path, packages: tuple[str, ...] = PACKAGES) -> dict[str, list[Edge]]:
    """module -> its import edges to other project modules (``from pkg import sub`` is an edge to ``pkg.sub`` when
    that is a module, else to ``pkg``)."""
    known = modules(root, packages)
    graph: dict[str, list[Edge]] = {m: [] for m in known}
    for module, path in known.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        where = str(path.relative_to(root))
        for node, how in _imports(tree):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                base = _resolve(module, path.name == "__init__.py", node)
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]
            for target in targets:
                hit = _project(target, known)
                if hit is not None and hit != module:
                    graph[module].append(Edge(module, hit, where, node.lineno, how))
    return graph


def cycles(graph: dict[str, list[Edge]]) -> list[list[Edge]]:
    """One cycle (as its edges, in order) per strongly connected component of more than one module."""
    adjacency = {m: sorted({e.target for e in edges}) for m, edges in graph.items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def strongconnect(v: str) -> None:  # Tarjan; graphs here are a few hundred modules deep at most
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in adjacency.get(v, ()):
            if w not in index:
                strongconnect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for v in sorted(adjacency):
        if v not in index:
            strongconnect(v)
    return [_cycle_in(graph, set(c), c[0]) for c in sorted(components)]


def _cycle_in(graph: dict[str, list[Edge]], component: set[str], start: str) -> list[Edge]:
    """The shortest cycle through ``start`` inside ``component`` (breadth first), as edges."""
    came: dict[str, Edge] = {}
    frontier = [start]
    while frontier:
        nxt = []
        for v in frontier:
            for e in sorted(graph[v], key=lambda e: (e.target, e.line)):
                if e.target == start:
                    path = [e]
                    while path[0].source != start:
                        path.insert(0, came[path[0].source])
                    return path
                if e.target in component and e.target not in came:
                    came[e.target] = e
                    nxt.append(e.target)
        frontier = nxt
    raise AssertionError(f"no cycle through {start}")  # a strongly connected component always has one


def describe(cycle: list[Edge]) -> str:
    """``a -> b -> a``, then where each import is."""
    chain = " -> ".join([cycle[0].source] + [e.target for e in cycle])
    lines = [f"    {e.source} -> {e.target}: {e.path}:{e.line} ({e.how})" for e in cycle]
    return "\n".join([chain, *lines])


def test_the_project_has_no_import_cycle():
    graph = import_graph(REPO)
    assert {"flows.step", "tasks.plots", "pipelines.registry"} <= set(graph)
    found = cycles(graph)
    assert not found, "import cycles:\n" + "\n".join(describe(c) for c in found)


def _write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def test_the_walker_finds_cycles_of_every_kind(tmp_path):
    _write(tmp_path, {
        "pkg/__init__.py": "from . import a\n",  # the package's __init__ imports its submodule
        "pkg/a.py": "from .sub.b import f\n",
        "pkg/sub/__init__.py": "",
        "pkg/sub/b.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from ..a import X\n",  # type-only
        "pkg/c.py": "def g():\n    import pkg.d\n",  # function-level
        "pkg/d.py": "from pkg import c\nimport os\n",
        "pkg/e.py": "from pkg import a\nfrom pkg.c import g\n",  # imports into cycles, but is in none
        "pkg/f.py": "import pkg\n",  # f -> pkg -> a, no way back
    })
    graph = import_graph(tmp_path, ("pkg", "missing"))
    assert {e.target for e in graph["pkg.d"]} == {"pkg.c"}  # os is not a project module
    assert [describe(c).splitlines()[0] for c in cycles(graph)] == [
        "pkg.a -> pkg.sub.b -> pkg.a",
        "pkg.c -> pkg.d -> pkg.c",
    ]
    text = "\n".join(describe(c) for c in cycles(graph))
    assert "pkg/sub/b.py:3 (type-only)" in text and "pkg/c.py:2 (function)" in text and "(module)" in text

    # a submodule importing a name of its package's __init__, which imports it: a cycle through the __init__
    (tmp_path / "pkg" / "a.py").write_text("from .sub import b\n")
    (tmp_path / "pkg" / "sub" / "b.py").write_text("from pkg import x\n")
    assert [describe(c).splitlines()[0] for c in cycles(import_graph(tmp_path, ("pkg",)))] == [
        "pkg -> pkg.a -> pkg.sub.b -> pkg",
        "pkg.c -> pkg.d -> pkg.c",
    ]
