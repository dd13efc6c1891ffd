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
