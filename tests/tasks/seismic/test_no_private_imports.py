"""No module of ``tasks/`` uses a private (``_name``) name of another module of the project.

What one module needs from another is public and documented there; a private name may change
without notice. Checked on the source with ``ast``: ``from project.mod import _name`` (relative
or absolute, at any depth of the file) and ``mod._name`` where ``mod`` was imported as a project
module. Dunder names (``__version__``) are public.
"""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _is_project_module(dotted: str) -> bool:
    path = REPO.joinpath(*dotted.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def _package(path: Path) -> list[str]:
    return list(path.relative_to(REPO).with_suffix("").parts[:-1])


def _absolute(node: ast.ImportFrom, path: Path) -> str:
    if not node.level:
        return node.module or ""
    base = _package(path)[: len(_package(path)) - node.level + 1]
    return ".".join([*base, *([node.module] if node.module else [])])


def _dotted(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        head = _dotted(node.value)
        return None if head is None else f"{head}.{node.attr}"
    return None


def private_uses(source: str, path: Path) -> list[str]:
    """``line: what`` for every private name of another project module that ``source`` (the
    text of the module at ``path``, which places its relative imports) uses."""
    tree = ast.parse(source, filename=str(path))
    modules: dict[str, str] = {}  # local name -> the project module it is bound to
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            source = _absolute(node, path)
            if not _is_project_module(source):
                continue
            for alias in node.names:
                if _private(alias.name):
                    found.append(f"{node.lineno}: from {source} import {alias.name}")
                elif _is_project_module(f"{source}.{alias.name}"):
                    modules[alias.asname or alias.name] = f"{source}.{alias.name}"
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if _is_project_module(alias.name):
                    local = alias.asname or alias.name.split(".")[0]
                    modules[local] = alias.name if alias.asname else local
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and _private(node.attr):
            head = _dotted(node.value)
            if head is None:
                continue
            first, _, rest = head.partition(".")
            if first in modules:
                module = ".".join(filter(None, [modules[first], rest]))
                if _is_project_module(module):
                    found.append(f"{node.lineno}: {module}.{node.attr}")
    return found


def test_tasks_use_only_public_names_of_other_modules():
    files = sorted((REPO / "tasks").rglob("*.py"))
    assert len(files) > 10
    bad = {str(f.relative_to(REPO)): uses for f in files if (uses := private_uses(f.read_text(), f))}
    assert bad == {}


def test_the_check_sees_each_form_of_private_use():
    here = REPO / "tasks" / "seismic" / "model.py"  # where relative imports resolve from
    cases = {
        "from tasks.seismic.solver import _operator": True,
        "from .solver import _operator": True,
        "from . import solver\nsolver._operator": True,
        "import tasks.seismic.solver as s\ns._model": True,
        "import tasks.seismic.solver\ntasks.seismic.solver._threads": True,
        "from tasks.seismic.solver import compiled_operator, __all__": False,
        "import numpy as np\nnp._core": False,
        "from collections import _OrderedDictKeysView": False,
        "class A:\n    _x = 1\nA._x": False,
    }
    for source, private in cases.items():
        assert bool(private_uses(source, here)) is private, source
