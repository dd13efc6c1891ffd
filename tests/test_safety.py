"""Safety: YAML is safe-loaded; nothing in a data root is a pickle and nothing is unpickled from one (Prefect
persists no results); kinds and keys cannot leave the root; files follow the user's umask; the root's Prefect
server (and a --workers cluster's dashboard) listen on loopback unless told otherwise."""

from __future__ import annotations

import ast
import inspect
import json
import os
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from data_catalog import Catalog
from data_catalog.storage import Storage
from strata_errors import InputError

from .conftest import REPO, Strata

PICKLE_MAGIC = (b"\x80\x02", b"\x80\x03", b"\x80\x04", b"\x80\x05")


def _one_error_line(proc: subprocess.CompletedProcess) -> None:
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("error:") and "Traceback" not in proc.stderr


def test_study_yaml_is_safe_loaded(strata_offline, tmp_path):
    """A Python tag in a study file, a --set value or a cluster file is refused (exit 2, one line); it runs nothing."""
    pwned = tmp_path / "pwned"
    tag = f'!!python/object/apply:os.system ["touch {pwned}"]'
    study = tmp_path / "evil.yaml"
    study.write_text(f"study: seismic_survey\nconfig:\n  model: {tag}\npresets: {{tiny: {{}}}}\n")
    cluster = tmp_path / "cluster.yaml"
    cluster.write_text(f"cluster: {tag}\n")
    said = []
    for args in (["run", str(study), "--preset", "tiny"], ["studies", str(study)],
                 ["run", "seismic_survey", "--preset", "tiny", "--set", f"model={tag}"],
                 ["run", "seismic_survey", "--preset", "tiny", "--cluster", str(cluster)]):
        proc = strata_offline(*args, check=False)
        _one_error_line(proc)
        assert not pwned.exists(), args
        said.append(proc.stderr)
    assert "YAML tag not allowed" in said[0], said  # the study file; the --set value and the cluster file:
    assert all("python/object/apply:os.system" in e for e in said[2:]), said
    assert not strata_offline.root.exists()  # nothing ran: not even the root was made


def _unpickling_calls(path: Path) -> list[str]:
    """Calls in ``path`` that could unpickle: pickle/cloudpickle/dill/joblib load(s), torch.load, yaml.load and
    yaml.unsafe_load/full_load, np.load without allow_pickle=False."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        owner = node.func.value.id if isinstance(node.func.value, ast.Name) else ""
        name = node.func.attr
        kw = {k.arg: k.value for k in node.keywords}
        if (owner in ("pickle", "cloudpickle", "dill", "joblib", "torch") and name in ("load", "loads")
                or owner == "yaml" and name in ("load", "unsafe_load", "full_load", "load_all")
                or owner in ("np", "numpy") and name == "load"
                and not (isinstance(kw.get("allow_pickle"), ast.Constant) and kw["allow_pickle"].value is False)):
            out.append(f"{path.relative_to(REPO)}:{node.lineno}: {owner}.{name}")
    return out


def test_nothing_is_unpickled_from_a_data_root():
    """The only unpickling in strata is flows/isolated.py's hand-over between a step and the child process that
    computes it (stdin, and a result file in its own temporary directory, never under a data root)."""
    calls = [c for pkg in ("data_catalog", "flows", "pipelines", "tasks") for p in sorted((REPO / pkg).rglob("*.py"))
             for c in _unpickling_calls(p)]
    assert calls and all(c.startswith("flows/isolated.py:") for c in calls), calls
    assert "tempfile.TemporaryDirectory(" in (REPO / "flows" / "isolated.py").read_text()


def _prefect_decorations(path: Path) -> list[tuple[int, bool]]:
    """(line, sets persist_result=False) of every Prefect ``task``/``flow`` decorator or call in ``path``."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        for deco in getattr(node, "decorator_list", []):
            if isinstance(deco, ast.Name) and deco.id in ("task", "flow"):
                out.append((deco.lineno, False))  # bare @task / @flow: Prefect's defaults
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("task", "flow"):
            off = any(k.arg == "persist_result" and isinstance(k.value, ast.Constant) and k.value.value is False
                      for k in node.keywords)
            out.append((node.lineno, off))
    return out


def test_flows_and_tasks_persist_no_results():
    """Every Prefect flow and task strata makes says persist_result=False, and a run's default is not to persist."""
    from flows.runtime import prefect_env

    env_before = os.environ.pop("PREFECT_RESULTS_PERSIST_BY_DEFAULT", None)
    try:
        assert prefect_env(Path("/nonexistent"))["PREFECT_RESULTS_PERSIST_BY_DEFAULT"] == "false"
    finally:
        if env_before is not None:
            os.environ["PREFECT_RESULTS_PERSIST_BY_DEFAULT"] = env_before
    found = {f"{p.relative_to(REPO)}:{line}": off for pkg in ("flows", "pipelines")
             for p in sorted((REPO / pkg).rglob("*.py")) for line, off in _prefect_decorations(p)}
    assert len(found) >= 3 and all(found.values()), found  # study flows, step tasks, the serve flow


def _modes(root: Path) -> dict[str, int]:
    return {str(p.relative_to(root)): stat.S_IMODE(p.lstat().st_mode) for p in [root, *root.rglob("*")]}


def _run_under_umask(umask: int, args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(args, capture_output=True, text=True, env=env, cwd=REPO, timeout=300,
                          preexec_fn=lambda: os.umask(umask))


@pytest.mark.prefect
def test_a_run_writes_no_pickle_no_prefect_result_and_follows_the_umask(tmp_path, prefect_server):
    """A tiny study run under umask 027, with Prefect told to persist results by default: the decorators win, so no
    result storage is written; no file under the root is a pickle; none is group-writable or world-readable."""
    s = Strata(tmp_path / "root", prefect_server)
    storage = tmp_path / "prefect-storage"
    home_storage = Path.home() / ".prefect" / "storage"
    before = sorted(home_storage.rglob("*")) if home_storage.exists() else []
    env = {**s.env, "PREFECT_RESULTS_PERSIST_BY_DEFAULT": "true", "PREFECT_LOCAL_STORAGE_PATH": str(storage)}
    proc = _run_under_umask(0o027, [sys.executable, "-m", "pipelines.cli", "run", "seismic_survey", "--preset", "tiny"],
                            env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert not storage.exists() and not (s.root / "prefect" / "storage").exists()
    assert (sorted(home_storage.rglob("*")) if home_storage.exists() else []) == before
    files = [p for p in s.root.rglob("*") if p.is_file()]
    assert len(files) > 20 and any(p.suffix == ".png" for p in files) and (s.root / "catalog.db").is_file()
    pickles = [p for p in files if p.suffix in (".pkl", ".pickle", ".pck") or p.read_bytes()[:2] in PICKLE_MAGIC]
    assert not pickles, pickles
    loose = {p: oct(m) for p, m in _modes(s.root).items() if m & (stat.S_IWGRP | stat.S_IRWXO)}
    assert not loose, loose


_WRITE = textwrap.dedent("""
    import sys
    import numpy as np
    import xarray as xr
    from data_catalog import Catalog, EventLog, make_key, owner_id
    cat = Catalog(sys.argv[1])
    ds = xr.Dataset({"v": ("x", np.arange(6.0))}, coords={"x": np.arange(6)})
    lineage = {"step": "a", "version": "1", "params": {}, "inputs": [], "code": {}}
    a = make_key("a", "1", {}, [])
    assert cat.claim(a, owner_id("run"), "thing", "a", "1") is None
    cat.write(a, "thing", ds, lineage)
    b = make_key("b", "1", {}, [a])
    assert cat.claim(b, owner_id("run"), "pieces", "b", "1") is None
    w = cat.create(b, "pieces", "x", np.arange(6), 2, template=ds.isel(x=slice(0, 2)))
    for i in range(3):
        w.write(i, ds.isel(x=slice(2 * i, 2 * i + 2)))
    cat.finish(w, {**lineage, "key": b, "kind": "pieces", "step": "b", "inputs": [a]})
    EventLog(cat.lineage_dir, "run", cat.root).emit("COMPLETE", job="t.b", run_id="run")
    cat.index.put_run("run", study="t", status="COMPLETE")
    import os, stat
    print(oct(stat.S_IMODE(os.stat(str(cat.index.path) + "-wal").st_mode)))  # the WAL lives while the index is open
    cat.close()
""")


@pytest.mark.parametrize("umask", [0o027, 0o002])
def test_catalog_writes_follow_the_umask(tmp_path, umask):
    """Every file and folder a catalog write makes (datasets, region markers, the index and its WAL, the event
    log) has exactly the modes the umask leaves: none group-writable or world-readable under 027, group-writable
    under 002 (a root shared by a group)."""
    root = tmp_path / "root"
    proc = _run_under_umask(umask, [sys.executable, "-c", _WRITE, str(root)], dict(os.environ))
    assert proc.returncode == 0, proc.stderr[-3000:]
    modes = _modes(root)
    assert any(p.startswith("lineage/") for p in modes) and "catalog.db" in modes and len(modes) > 30, modes
    assert proc.stdout.split() == [oct(0o666 & ~umask)]  # the index's WAL
    want = {p: oct((0o777 if (root / p).is_dir() else 0o666) & ~umask) for p in modes}
    assert {p: oct(m) for p, m in modes.items()} == want


@pytest.mark.parametrize("bad", ["..", "../x", "a/../../b", "/etc", "a/b", ".hidden", "", "x\\..\\y", "a\x00b"])
def test_kinds_and_keys_cannot_leave_the_root(tmp_path, bad):
    storage = Storage(tmp_path / "root")
    assert storage.uri("shot_records", "0123456789abcdef0123").startswith(f"{tmp_path}/root/datasets/")
    with pytest.raises(InputError, match="kind"):
        storage.uri(bad, "0123456789abcdef0123")
    with pytest.raises(InputError, match="key"):
        storage.uri("thing", bad)
    cat = Catalog(tmp_path / "root")
    with pytest.raises(InputError):
        cat.claim("0123456789abcdef0123", "owner", bad, "step", "1")
    cat.close()
    assert not (tmp_path / "x").exists() and not (tmp_path / "b").exists()


def test_names_from_the_command_line_cannot_leave_the_root(strata_offline, tmp_path):
    study = tmp_path / "escape.yaml"
    study.write_text("study: ../../escape\nconfig: {}\n")
    for args in (["run", str(study)], ["run", "../../seismic_survey"], ["catalog", "show", "../../etc/passwd"],
                 ["catalog", "rm", "/etc"]):
        _one_error_line(strata_offline(*args, check=False))
    assert not strata_offline.root.exists()


def test_the_root_server_listens_on_loopback_unless_told(tmp_path, monkeypatch):
    """The command line the root's server is started with (no server is started here)."""
    from flows import server
    from pipelines.cli import build_parser

    assert server.DEFAULT_HOST == "127.0.0.1"
    assert inspect.signature(server.ensure).parameters["host"].default == server.DEFAULT_HOST
    assert build_parser().parse_args(["server", "start"]).host == "127.0.0.1"
    started = []

    class Spawned:  # what ensure() spawns, recorded instead
        def __init__(self, args, **kw):
            started.append(args)
            self.pid = 2**22 + 4321  # not running: the next ensure() starts another

    monkeypatch.setattr(server.subprocess, "Popen", Spawned)
    monkeypatch.delenv("PREFECT_API_DATABASE_CONNECTION_URL", raising=False)
    info, fresh = server.ensure(tmp_path / "home")
    assert fresh and info.host == "127.0.0.1" and info.url.startswith("http://127.0.0.1:")
    server.ensure(tmp_path / "home2", "0.0.0.0", 4321)  # configured otherwise: strata server start --host
    hosts = [args[args.index("--host") + 1] for args in started]
    assert hosts == ["127.0.0.1", "0.0.0.0"] and started[1][-1] == "4321"
    assert started[0][1:5] == ["-m", "prefect", "server", "start"]


_LISTEN = textwrap.dedent("""
    import json, sys
    import psutil
    from flows.runtime import Runtime
    with Runtime(sys.argv[1], workers=1, ephemeral=True):  # its LocalCluster; no Prefect server
        procs = [psutil.Process(), *psutil.Process().children(recursive=True)]
        print(json.dumps([c.laddr.ip for p in procs for c in p.net_connections(kind="inet")
                          if c.status == psutil.CONN_LISTEN]))
""")


def test_a_workers_cluster_listens_on_loopback_only(tmp_path):
    """`--workers N`: the LocalCluster's scheduler, workers and dashboard (the dashboard was on 0.0.0.0) bind
    loopback."""
    proc = subprocess.run([sys.executable, "-c", _LISTEN, str(tmp_path / "prefect")], capture_output=True, text=True,
                          cwd=REPO, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    hosts = json.loads(proc.stdout.strip().splitlines()[-1])
    assert len(hosts) >= 3 and set(hosts) == {"127.0.0.1"}, hosts
