"""Shared fixtures: one Prefect server for the whole test session; a `strata` CLI runner."""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

from flows.server import free_port

REPO = Path(__file__).resolve().parents[1]

# OpenMP's default busy-waiting crawls when test processes oversubscribe the 2 CI cores
os.environ.setdefault("OMP_WAIT_POLICY", "passive")
os.environ.setdefault("DEVITO_LANGUAGE", "openmp")


def group_alive(pgid: int) -> list[str]:
    """Processes of a process group still running (zombies are dead, awaiting a reaper)."""
    out = subprocess.run(["ps", "-eo", "pid=,pgid=,stat=,args="], capture_output=True, text=True).stdout
    return [line for line in out.splitlines() if line.split()[1] == str(pgid) and not line.split()[2].startswith("Z")]


_SHARED_URL = "STRATA_TEST_PREFECT_URL"  # the controller's server, inherited by pytest-xdist workers
_SHARED = pytest.StashKey[tuple[subprocess.Popen, Path]]()


def _start_prefect_server(home: Path) -> tuple[subprocess.Popen, str]:
    """A real Prefect server on loopback, its data in ``home``; (its process, its API URL) once healthy."""
    port = free_port()
    env = {**os.environ, "PREFECT_HOME": str(home), "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
           "PREFECT_SERVER_UI_ENABLED": "false", "PREFECT_LOGGING_LEVEL": "WARNING"}
    with open(home / "server.log", "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1",
                                 "--port", str(port)], stdout=log, stderr=subprocess.STDOUT, env=env,
                                start_new_session=True)
    url = f"http://127.0.0.1:{port}/api"
    deadline = time.monotonic() + 120
    while True:
        try:
            with urllib.request.urlopen(url + "/health", timeout=2):
                return proc, url
        except OSError:
            if time.monotonic() > deadline or proc.poll() is not None:
                os.killpg(proc.pid, signal.SIGKILL)
                log_tail = (home / "server.log").read_text()[-2000:]
                raise RuntimeError(f"Prefect server did not start: {log_tail}") from None
            time.sleep(0.3)


def _stop_prefect_server(proc: subprocess.Popen) -> None:
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)


def pytest_configure(config):
    """Under pytest-xdist (``-n N``) the controller starts the one Prefect server its workers share: a flow run
    made on one worker (a shared tiny run) is known to the server the other asks."""
    if (getattr(config.option, "numprocesses", None) and not os.environ.get("PYTEST_XDIST_WORKER")
            and not os.environ.get("PREFECT_API_URL")):
        home = Path(tempfile.mkdtemp(prefix="strata-test-prefect-"))
        proc, url = _start_prefect_server(home)
        config.stash[_SHARED] = (proc, home)
        os.environ[_SHARED_URL] = url


def pytest_unconfigure(config):
    if _SHARED in config.stash:
        proc, home = config.stash[_SHARED]
        _stop_prefect_server(proc)
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="session")
def prefect_server(tmp_path_factory):
    """A real Prefect server on loopback shared by every test that runs flows (and by every xdist worker)."""
    url = os.environ.get("PREFECT_API_URL") or os.environ.get(_SHARED_URL)
    if url:
        yield url
        return
    proc, url = _start_prefect_server(tmp_path_factory.mktemp("prefect-home"))
    yield url
    _stop_prefect_server(proc)


class Strata:
    """Run the CLI in a subprocess (its own session, so kill tests can kill its group)."""

    def __init__(self, root: Path, api_url: str | None):
        self.root = root
        self.env = {**os.environ, "STRATA_HOME": str(root), "PYTHONUNBUFFERED": "1"}
        self.env.pop("STRATA_FAULT", None)
        if api_url:
            self.env["PREFECT_API_URL"] = api_url

    def __call__(self, *args: str, fault: str | None = None, check: bool = True, timeout: float = 300):
        env = dict(self.env)
        if fault:
            env["STRATA_FAULT"] = fault
        proc = subprocess.run([sys.executable, "-m", "pipelines.cli", *args], capture_output=True, text=True,
                              env=env, cwd=REPO, timeout=timeout, start_new_session=True)
        if check and proc.returncode != 0:
            raise AssertionError(f"strata {' '.join(args)} exited {proc.returncode}:\n{proc.stderr[-3000:]}")
        return proc

    def json(self, *args: str, **kw):
        proc = self(*args, "--json", **kw)
        return json.loads(proc.stdout)


def fingerprints(root: Path, keys) -> dict[str, str]:
    """{key: fingerprint} of complete datasets under a root."""
    from data_catalog import Catalog

    cat = Catalog(root)
    try:
        return {k: cat.get(k).fingerprint for k in keys}
    finally:
        cat.close()


def region_markers(root: Path, kind: str) -> dict[str, int]:
    """{marker path: mtime_ns} of the per-region completion markers of one kind's datasets."""
    return {str(p.relative_to(root)): p.stat().st_mtime_ns
            for p in (root / "datasets" / kind).rglob(".strata/regions/*")}


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory, prefect_server):
    """``tiny_run(study) -> (Strata, proc)``: one serial ``strata run STUDY --preset tiny --json`` per study and
    test session, shared by the study contract suite (its reference run) and study-specific checks. Under
    pytest-xdist the workers share it too: the first to ask runs it (under a file lock), the others read its
    root and its recorded output. Tests may rerun on that root (everything reused) at the same time: a test
    that needs a root no one else touches makes its own run."""
    shared = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        shared = shared.parent  # the session's folder, above each worker's own
    runs: dict[str, tuple[Strata, subprocess.CompletedProcess]] = {}

    def get(study: str) -> tuple[Strata, subprocess.CompletedProcess]:
        if study not in runs:
            base = shared / f"tiny-run-{study}"
            base.mkdir(exist_ok=True)
            s = Strata(base / "root", prefect_server)
            with open(base / "lock", "w") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX)
                done = base / "run.json"
                if not done.exists():
                    p = s("run", study, "--preset", "tiny", "--json")
                    done.write_text(json.dumps({"args": p.args, "returncode": p.returncode, "stdout": p.stdout,
                                                "stderr": p.stderr}))
                rec = json.loads(done.read_text())
            runs[study] = (s, subprocess.CompletedProcess(rec["args"], rec["returncode"], rec["stdout"],
                                                          rec["stderr"]))
        return runs[study]

    return get


@pytest.fixture
def strata(tmp_path, prefect_server):
    return Strata(tmp_path / "root", prefect_server)


_CLUSTER: dict[tuple, object] = {}  # the LocalCluster of this test process's runs on workers: see shared_cluster
_WORKER_ENV = ("STRATA_", "DEVITO_", "AWS_", "OMP_")  # what the workers read from the environment they start with


def shared_cluster(workers: int):
    """A LocalCluster of ``workers`` processes, as ``--workers N`` starts them (:func:`flows.runtime.local_cluster`,
    one OpenMP/torch thread each), kept and reused by the in-process runs on workers of this test process.
    Measured: a new one costs ≈8 s of CPU (its processes, and importing torch, Devito and xarray in each worker),
    which ≈18 such runs paid each time. Reuse changes no bytes: a worker computes one piece at a time from the inputs
    it is given, never trains multi-threaded (trainings run in a child process), and every piece starts from the
    default floating-point environment (flows/fpenv.py); what it keeps between runs (imports, compiled operators,
    its input cache) changes no result — the contract suite checks each study's bytes on workers that ran other
    studies before. Workers read the environment they were started with: a run asking for another size or other
    ``STRATA_*``/``DEVITO_*``/``AWS_*``/``OMP_*`` values (a study package registered for a test) gets a new
    cluster, and the previous one is closed (one at a time)."""
    from flows.runtime import local_cluster

    which = (workers, tuple(sorted((k, v) for k, v in os.environ.items() if k.startswith(_WORKER_ENV))))
    if which not in _CLUSTER:
        close_shared_cluster()
        _CLUSTER[which] = local_cluster(workers, threads=1)
    return _CLUSTER[which]


def close_shared_cluster() -> None:
    while _CLUSTER:
        try:
            _CLUSTER.popitem()[1].close()
        except Exception as exc:  # noqa: BLE001 - a cluster that does not close cleanly fails no test
            print(f"closing the shared LocalCluster: {exc!r}", file=sys.stderr)


def pytest_sessionfinish(session, exitstatus):
    close_shared_cluster()


def run_in_process(study: str, *sets: str, root: Path, preset: str | None = None, workers: int | None = None):
    """A study run in this process with the whole step runtime (keys, reuse, zarr, lineage, index, pieces, resume)
    and no CLI, no Prefect (:func:`flows.study.run_local`); ``sets`` as ``--set`` takes them; ``workers``: its
    pieces on a LocalCluster of that many processes, as ``--workers N`` (:func:`shared_cluster`; a run that fails
    closes it, so no piece of it still runs there for the next).
    Devito's bits in a process where torch ran multi-threaded are not reproducible: compare fingerprints of Devito
    results computed in a process that did not (the CLI's, or the workers')."""
    from data_catalog import Catalog
    from flows.executors import DaskExecutor
    from flows.study import run_local
    from pipelines.config import load_study
    from pipelines.registry import load_flow, models

    loaded = load_study(study, preset, list(sets), models())
    cat = Catalog(root)
    executor = DaskExecutor(shared_cluster(workers).scheduler_address) if workers else None
    finished = False
    try:
        result = run_local(load_flow(loaded.name), loaded.config, cat, study=loaded.name, preset=loaded.preset,
                           overrides=loaded.overrides, executor=executor)
        finished = True
        return result
    finally:
        if executor is not None:
            executor.close()
            if not finished:
                close_shared_cluster()
        cat.close()


@pytest.fixture
def local_run(tmp_path):
    """``local_run(study, *sets, preset=None, root=None, workers=None) -> RunResult``: :func:`run_in_process` on
    ``root`` (default: the ``strata`` fixture's root). For tests of science or runtime behaviour the CLI adds
    nothing to."""

    def run(study: str, *sets: str, preset: str | None = None, root: Path | None = None, workers: int | None = None):
        return run_in_process(study, *sets, root=root or tmp_path / "root", preset=preset, workers=workers)

    return run


@pytest.fixture
def strata_offline(tmp_path):
    """The CLI without a Prefect server (catalog, plot and bad-input commands need none)."""
    return Strata(tmp_path / "root", None)


@pytest.fixture
def stop_root_servers():
    """``stop_root_servers(root)``: the Prefect server a run starts for that root is stopped at teardown."""
    roots: list[Path] = []
    yield roots.append
    for root in roots:
        subprocess.run([sys.executable, "-m", "pipelines.cli", "server", "stop", "--root", str(root)], cwd=REPO,
                       capture_output=True, timeout=60)


def pytest_collection_modifyitems(session, config, items):
    """In-process Devito tests run before any test that runs torch in this process.

    Measured: after one multi-threaded torch CPU op (a 200x200 matmul) in a process, two identical
    Devito runs in that process no longer agree bit for bit (with torch on one thread they do);
    the bitwise-reproducibility tests of tasks/seismic would then fail depending on test order.
    The root cause (suspected: floating-point state of OpenMP threads shared by torch and Devito's
    compiled code) is open: whoever puts training and Devito in one worker (ASPIRE) must fix it.
    """
    items.sort(key=lambda item: 0 if "tasks/seismic" in item.nodeid.replace("\\", "/") else 1)


S3_BUCKET = "strata-test"
S3_KEY_ID, S3_SECRET = "testing-key-5e1f", "testing-secret-5e1f"  # moto takes any; tests look for these where
# none may be (the root, lineage)


@pytest.fixture(scope="session")
def s3_endpoint():
    """An S3-compatible server (moto's) on loopback for the session, with the bucket ``S3_BUCKET``. The standard
    AWS variables (credentials, region, ``AWS_ENDPOINT_URL``) point this process and the CLI's subprocesses at it:
    strata reads no endpoint or credential of its own."""
    import logging

    import boto3
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one access-log line per request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    with pytest.MonkeyPatch.context() as mp:
        for name, value in {"AWS_ACCESS_KEY_ID": S3_KEY_ID, "AWS_SECRET_ACCESS_KEY": S3_SECRET,
                            "AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT_URL": url}.items():
            mp.setenv(name, value)
        for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
            mp.delenv(name, raising=False)
        boto3.client("s3").create_bucket(Bucket=S3_BUCKET)
        yield url
    server.stop()


@pytest.fixture
def s3_root(s3_endpoint):
    """A fresh ``s3://`` data root (a prefix of its own) on the session's S3 server."""
    import uuid

    return f"s3://{S3_BUCKET}/{uuid.uuid4().hex[:12]}"
