"""Import direction: pipelines → flows → {tasks, data_catalog}; light commands stay light."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
FORBIDDEN = {
    "tasks": {"flows", "pipelines", "data_catalog", "prefect", "prefect_dask"},
    "data_catalog": {"flows", "pipelines", "tasks", "prefect", "prefect_dask", "torch", "devito"},
    "flows": {"pipelines"},
}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_import_direction(package):
    bad = []
    for path in sorted((REPO / package).rglob("*.py")):
        hit = _imports(path) & FORBIDDEN[package]
        if hit:
            bad.append(f"{path.relative_to(REPO)} imports {', '.join(sorted(hit))}")
    assert not bad, "layering violated:\n" + "\n".join(bad)


def test_the_walker_sees_violations(tmp_path):
    bad = tmp_path / "m.py"
    bad.write_text("import os\nfrom flows.steps import Step\ndef f():\n    import pipelines.cli\n")
    assert {"flows", "pipelines"} <= _imports(bad)


@pytest.mark.parametrize("argv", [["--help"], ["catalog", "list"], ["studies"]])
def test_light_commands_do_not_import_prefect_or_torch(argv, tmp_path):
    code = ("import sys, contextlib; from pipelines.cli import main\n"
            "with contextlib.suppress(SystemExit): main(%r)\n"
            "heavy = [m for m in ('prefect', 'torch', 'devito', 'distributed') if m in sys.modules]; "
            "print('HEAVY', heavy)") % (argv + (["--root", str(tmp_path)] if argv[0] != "--help" else []),)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert "HEAVY []" in proc.stdout, proc.stdout + proc.stderr
