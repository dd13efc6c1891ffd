"""Import direction: pipelines → studies → flows → {tasks, data_catalog}; light commands stay light."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
FORBIDDEN = {
    "tasks": {"flows", "studies", "pipelines", "data_catalog", "prefect", "prefect_dask"},
    "data_catalog": {"flows", "studies", "pipelines", "tasks", "prefect", "prefect_dask", "torch", "devito"},
    "flows": {"studies", "pipelines"},
    "studies": {"pipelines", "prefect", "prefect_dask"},  # a study declares steps; the runtime runs them
    "pipelines": {"prefect", "prefect_dask"},  # Prefect lives in flows/ (imports inside functions count too)
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
    full = argv + (["--root", str(tmp_path)] if argv[0] != "--help" else [])
    code = ("import sys, contextlib; from pipelines.cli import main\n"
            f"with contextlib.suppress(SystemExit): main({full!r})\n"
            "heavy = [m for m in ('prefect', 'torch', 'devito', 'distributed') if m in sys.modules]; "
            "print('HEAVY', heavy)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert "HEAVY []" in proc.stdout, proc.stdout + proc.stderr


def _shot_records(n_shot: int = 2, n_rec: int = 3, nt: int = 5):
    import numpy as np
    import xarray as xr

    data = np.arange(n_shot * n_rec * nt, dtype="f4").reshape(n_shot, n_rec, nt)
    return xr.Dataset(
        {"data": (("shot", "receiver", "time"), data)},
        coords={"shot": np.arange(n_shot), "receiver": np.arange(n_rec), "time": ("time", 0.002 * np.arange(nt),
                                                                                  {"units": "s"}),
                "src_x": ("shot", [100.0, 200.0]), "rec_x": ("receiver", [0.0, 10.0, 20.0])},
    )


def test_segy_commands_do_not_import_prefect_or_torch(tmp_path):
    from tasks.seismic.segy import write_segy

    sgy = tmp_path / "in.sgy"
    write_segy(_shot_records(), sgy)
    root = str(tmp_path / "root")
    out = str(tmp_path / "out.sgy")
    code = ("import sys, json, io, contextlib; from pipelines.cli import main\n"
            "buf = io.StringIO()\n"
            f"argv = ['segy', 'import', {str(sgy)!r}, '--json', '--root', {root!r}]\n"
            "with contextlib.redirect_stdout(buf): rc = main(argv)\n"
            "key = json.loads(buf.getvalue())['key']\n"
            f"rc2 = main(['segy', 'export', key, {out!r}, '--root', {root!r}])\n"
            "heavy = [m for m in ('prefect', 'torch', 'devito', 'distributed') if m in sys.modules]; "
            "print('RC', rc, rc2, 'HEAVY', heavy)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert "RC 0 0 HEAVY []" in proc.stdout, proc.stdout + proc.stderr
    assert (tmp_path / "out.sgy").read_bytes() == sgy.read_bytes()


# -- public APIs of dependencies only ----------------------------------------------------------------
PROJECT = {"data_catalog", "tasks", "flows", "studies", "pipelines", "strata_errors", "tests", "conftest"}
SCANNED = ["data_catalog", "tasks", "flows", "studies", "pipelines", "tests", "strata_errors.py"]
# modules a dependency documents as internal although their names have no underscore
INTERNAL = ("zarr.core", "xarray.core", "xarray.backends", "xarray.coding", "xarray.conventions",
            "prefect.server", "distributed.protocol")


def _dependency(module: str) -> bool:
    """A third-party module (not the project's, not the standard library's)."""
    top = module.split(".")[0]
    return top not in PROJECT and top not in sys.stdlib_module_names


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _dependency_privates(path: Path) -> list[str]:
    """`import a._b`, `from a._b import c`, `from a import _c`, internal modules, and `a._c` on an
    imported dependency module (a name bound by import), for every non-project module."""
    tree = ast.parse(path.read_text(), filename=str(path))
    bad: list[str] = []
    modules: dict[str, str] = {}  # local name -> dependency module

    def check_module(mod: str, where: int) -> None:
        if not _dependency(mod):
            return
        if any(_private(part) for part in mod.split(".")) or mod.startswith(INTERNAL):
            bad.append(f"{path.relative_to(REPO)}:{where} imports {mod}")

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                check_module(a.name, node.lineno)
                if _dependency(a.name):
                    modules[a.asname or a.name.split(".")[0]] = a.name if a.asname else a.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            check_module(node.module, node.lineno)
            if _dependency(node.module):
                for a in node.names:
                    if _private(a.name):
                        bad.append(f"{path.relative_to(REPO)}:{node.lineno} imports {a.name} from {node.module}")
                    modules.setdefault(a.asname or a.name, f"{node.module}.{a.name}")
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and _private(node.attr):
            base = node.value
            while isinstance(base, ast.Attribute):
                base = base.value
            if isinstance(base, ast.Name) and base.id in modules:
                bad.append(f"{path.relative_to(REPO)}:{node.lineno} uses {ast.unparse(node)} of {modules[base.id]}")
    return bad


def test_no_private_module_or_name_of_a_dependency():
    bad = []
    for entry in SCANNED:
        paths = [REPO / entry] if entry.endswith(".py") else sorted((REPO / entry).rglob("*.py"))
        for path in paths:
            bad += _dependency_privates(path)
    assert not bad, "private API of a dependency used:\n" + "\n".join(bad)


def test_the_private_api_walker_sees_violations(tmp_path):
    bad = tmp_path / "m.py"
    bad.write_text("import zarr\nimport fsspec as fs\nfrom zarr.core.sync import sync\nfrom xarray.backends.zarr "
                   "import FillValueCoder\nfrom prefect import _x\nimport dask._compat\n"
                   "def f(runner):\n    fs._strip_protocol('a')\n    zarr.storage._x\n    runner._client\n"
                   "    return sync\n")
    bad.rename(REPO / "tests" / "_walker_probe.py")
    try:
        found = _dependency_privates(REPO / "tests" / "_walker_probe.py")
    finally:
        (REPO / "tests" / "_walker_probe.py").unlink()
    text = "\n".join(found)
    for expected in ("zarr.core.sync", "xarray.backends.zarr", "_x from prefect", "dask._compat",
                     "fs._strip_protocol", "zarr.storage._x"):
        assert expected in text, (expected, text)
    assert "runner._client" not in text  # a local object: not resolvable statically


# -- no import cycle inside flows ---------------------------------------------------------------------
def test_runtime_modules_stay_small():
    sizes = {str(p.relative_to(REPO)): len(p.read_text().splitlines())
             for package in ("flows", "data_catalog", "pipelines") for p in (REPO / package).rglob("*.py")}
    big = {k: v for k, v in sizes.items() if v > 300}
    assert not big, f"modules over 300 lines: {big}"
