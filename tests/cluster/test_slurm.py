"""``kind: slurm`` against a real one-node SLURM (the ``slurm`` fixture, conftest.py), through the CLI (issue 27).

The scheduler and the workers talk on loopback (``interface: lo``); each run's jobs are told apart by their outputs
in ``<root>/logs/<flow run id>/strata-<job id>.out`` (SLURM writes them when a job starts) and checked in the queue
with ``squeue -t all`` (no accounting here: ``sacct`` has nothing).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from data_catalog import Catalog

from ..conftest import REPO, Strata, fingerprints
from .conftest import unavailable

if unavailable():  # one line for the module, not one per test
    pytest.skip(unavailable(), allow_module_level=True)

pytestmark = pytest.mark.prefect

SURVEY = ["seismic_survey", "--preset", "tiny"]
# shots of ~0.3 s instead of ~0.05 s: time to act while the pieces after the first compute (other keys than the
# tiny preset's)
SLOW_SURVEY = [*SURVEY, "--set", "geometry.record_length=3.0"]


class Cli:
    """``strata run`` in a subprocess, on the session's Prefect server and the test's SLURM, run from a folder of its
    own (SLURM's default place for job outputs, which must stay empty)."""

    def __init__(self, tmp_path: Path, prefect_server: str, slurm, **cluster):
        self.root = tmp_path / "root"
        self.cwd = tmp_path / "cwd"
        self.cwd.mkdir()
        self.env = {**Strata(self.root, prefect_server).env, "SLURM_CONF": slurm.env["SLURM_CONF"]}
        self.cluster = tmp_path / "slurm.yaml"
        section = {"kind": "slurm", "cores": 1, "memory": "1GiB", "walltime": "00:10:00", "interface": "lo",
                   **cluster}
        self.cluster.write_text(json.dumps({"cluster": section}))  # YAML is a superset of JSON

    def argv(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "pipelines.cli", "run", *args, "--cluster", str(self.cluster)]

    def __call__(self, *args: str, timeout: float = 240, **env: str) -> subprocess.CompletedProcess:
        return subprocess.run(self.argv(*args), capture_output=True, text=True, cwd=self.cwd,
                              env={**self.env, **env}, timeout=timeout, start_new_session=True)

    def popen(self, *args: str, **env: str) -> subprocess.Popen:
        return subprocess.Popen(self.argv(*args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                cwd=self.cwd, env={**self.env, **env}, start_new_session=True)

    def jobs(self) -> list[str]:
        """Ids of the jobs that started for this root (their outputs), in order."""
        return sorted((p.name.split("-")[1].split(".")[0] for p in (self.root / "logs").glob("*/strata-*.out")),
                      key=int)

    def log_dirs(self) -> list[Path]:
        return sorted((self.root / "logs").glob("*")) if (self.root / "logs").exists() else []


def _ended(slurm, ids: list[str]) -> dict[str, str]:
    """{job id: state} of ``ids`` as the controller has them now (ended jobs stay listed for MinJobAge, 300 s)."""
    out = subprocess.run(["squeue", "-h", "-t", "all", "-j", ",".join(ids), "-o", "%i %T"], env=slurm.env,
                         capture_output=True, text=True).stdout
    return dict(line.split() for line in out.splitlines())


def _gone(slurm, ids: list[str], within: float = 10.0) -> float:
    """Seconds until none of ``ids`` is pending or running (fails after ``within``)."""
    t0 = time.monotonic()
    while set(ids) & set(slurm.queue()):
        assert time.monotonic() - t0 < within, f"jobs still queued: {slurm.queue()}"
        time.sleep(0.05)
    return time.monotonic() - t0


def _quiet(stderr: str) -> None:
    """Only strata's lines: no Dask logging, no traceback; the cluster described once."""
    assert "Traceback" not in stderr and "distributed." not in stderr and " INFO " not in stderr, stderr[-3000:]
    assert len(re.findall(r"dashboard http://", stderr)) == 1, stderr


def _one_error_line(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr and "distributed." not in proc.stderr, proc.stderr[-3000:]
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and proc.stderr.strip().splitlines()[-1] == errors[0], proc.stderr[-3000:]
    return errors[0]


def _only_complete_datasets(cli: Cli) -> None:
    verify = subprocess.run([sys.executable, "-m", "pipelines.cli", "catalog", "verify"], capture_output=True,
                            text=True, cwd=REPO, env=cli.env, timeout=120)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    cat = Catalog(cli.root)
    try:
        assert all(cat.storage.is_complete(r.uri) for r in cat.list())
    finally:
        cat.close()


def _markers(root: Path) -> list[int]:
    return sorted(int(p.name) for p in (root / "datasets").glob("shot_records/*.zarr/.strata/regions/*"))


def _wait_for_marker(proc: subprocess.Popen, root: Path, n: int, within: float = 180) -> None:
    deadline = time.monotonic() + within
    while len(_markers(root)) < n:
        assert proc.poll() is None, proc.communicate()[1][-3000:]
        assert time.monotonic() < deadline, "no piece finished in time"
        time.sleep(0.02)


def _run_like_the_serial_run(cli, tiny_run, study: str, *args: str):
    """``strata run STUDY ARGS --json`` on the cluster: it succeeds, quietly, with the shared serial tiny run's
    output keys and fingerprints. Returns (proc, its JSON document, seconds)."""
    ref, ref_proc = tiny_run(study)
    ref_out = json.loads(ref_proc.stdout)["outputs"]
    t0 = time.monotonic()
    proc = cli(study, *args, "--json")
    seconds = time.monotonic() - t0
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout)
    assert out["outputs"] == ref_out
    assert fingerprints(cli.root, ref_out.values()) == fingerprints(ref.root, ref_out.values())
    _quiet(proc.stderr)
    return proc, out, seconds


def test_survey_on_adaptive_slurm_jobs_is_the_local_run_and_a_cached_rerun_submits_no_job(slurm, tiny_run, tmp_path,
                                                                                          prefect_server):
    """The survey on jobs that adaptive scaling asks for (0 to 2) gives the serial run's keys and fingerprints; the
    jobs really ran (their outputs, the controller's record), at most 2, and are gone afterwards; logs in
    <root>/logs/<run>/, none in the folder strata ran from; a fully cached rerun and a dry run submit no job."""
    cli = Cli(tmp_path, prefect_server, slurm, adaptive={"minimum": 0, "maximum": 2})
    proc, out, seconds = _run_like_the_serial_run(cli, tiny_run, "seismic_survey", *SURVEY[1:])
    line = next(x for x in proc.stderr.splitlines() if x.startswith("SLURM: adaptive 0–2 jobs of 1 core, 1GiB"))
    port = int(re.search(r"dashboard http://127\.0\.0\.1:(\d+)/status", line).group(1))
    assert port != 8787  # a free port
    [logs] = cli.log_dirs()
    assert logs.name == out["flow_run_id"] and f"logs {logs}/" in line
    jobs = cli.jobs()
    assert 1 <= len(jobs) <= 2 and (logs / f"strata-{jobs[0]}.err").exists() and (logs / "dask.log").stat().st_size
    assert set(_ended(slurm, jobs).values()) <= {"CANCELLED", "COMPLETED"}  # submitted, ran, ended
    assert not set(jobs) & set(slurm.queue())
    script = (logs / "job.sh").read_text()
    assert f"#SBATCH -o {logs}/strata-%J.out" in script and "PREFECT_API_URL" not in script
    assert list(cli.cwd.iterdir()) == []  # no slurm-N.out where strata was started
    print(f"\nadaptive survey run: {seconds:.1f} s, jobs {jobs}")

    known = slurm.known()
    again = cli(*SURVEY, "--json")
    assert again.returncode == 0, again.stderr[-3000:]
    assert json.loads(again.stdout)["computed"] == [] and "SLURM" not in again.stderr
    dry = cli(*SURVEY, "--dry-run")
    assert dry.returncode == 0, dry.stderr[-3000:]
    assert cli.log_dirs() == [logs] and cli.jobs() == jobs
    assert slurm.known() == known  # no job since


def test_a_learning_study_on_a_slurm_job(slurm, tiny_run, tmp_path, prefect_server):
    """aspire_location's tiny preset: its normalizing flow is trained inside the job (the isolated training step, a
    child process of the job's worker), then its summaries and metrics: the serial run's keys and fingerprints; one
    job, none left."""
    cli = Cli(tmp_path, prefect_server, slurm, memory="2GiB")
    proc, out, seconds = _run_like_the_serial_run(cli, tiny_run, "aspire_location", "--preset", "tiny")
    assert "SLURM: 1 job of 1 core, 2GiB, 00:10:00" in proc.stderr
    cat = Catalog(cli.root)
    try:
        trained = [r.key for r in cat.list() if r.step == "train_posterior"]
    finally:
        cat.close()
    assert trained and set(trained) <= set(out["computed"])  # trained in this run, i.e. in the job
    [job] = cli.jobs()
    assert not {job} & set(slurm.queue())
    print(f"\naspire_location: {seconds:.1f} s, job {job}")


def test_adaptive_scaling_stops_at_its_maximum(slurm, tmp_path, prefect_server):
    """Eight shots and a scheduler that asks for a worker per waiting piece (Dask's adaptive target duration
    10 ms): adaptive 0–2 reaches two jobs and never has more in the queue, pending or running."""
    cli = Cli(tmp_path, prefect_server, slurm, adaptive={"minimum": 0, "maximum": 2})
    seen: list[int] = []
    done = threading.Event()

    def watch():
        while not done.is_set():
            seen.append(len(slurm.queue()))
            time.sleep(0.1)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        proc = cli(*SLOW_SURVEY, "--set", "geometry.n_shots=8", "--set", "geometry.shot_spacing=50",
                   "--json", DASK_DISTRIBUTED__ADAPTIVE__TARGET_DURATION="10ms")
    finally:
        done.set()
        watcher.join()
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert _markers(cli.root) == list(range(8))
    _quiet(proc.stderr)
    jobs = cli.jobs()
    assert max(seen) == 2, seen  # reached the maximum, never above it
    assert 2 <= len(jobs) and not set(jobs) & set(slurm.queue())
    print(f"\nadaptive 0–2 with 8 pieces: jobs {jobs}, most in the queue at once {max(seen)}")


def test_a_partition_that_does_not_exist_is_one_error_line_within_seconds(slurm, tmp_path, prefect_server):
    cli = Cli(tmp_path, prefect_server, slurm, queue="nosuch")
    t0 = time.monotonic()
    proc = cli(*SURVEY)
    seconds = time.monotonic() - t0
    line = _one_error_line(proc)
    assert line == ("error: SLURM refused the job (sbatch -p nosuch): invalid partition specified: nosuch; "
                    "Batch job submission failed: Invalid partition name specified"), line
    assert seconds < 30
    assert cli.jobs() == [] and slurm.queue() == {}
    _only_complete_datasets(cli)
    print(f"\nunknown partition: error after {seconds:.1f} s")


def test_jobs_that_never_start_end_the_run_after_the_start_timeout(slurm, tmp_path, prefect_server):
    """A partition that is down: both jobs pend (PartitionDown); after start_timeout the run names them and their
    reason, and cancels them."""
    cli = Cli(tmp_path, prefect_server, slurm, queue="down", workers=2, start_timeout=5)
    t0 = time.monotonic()
    proc = cli(*SURVEY)
    seconds = time.monotonic() - t0
    line = _one_error_line(proc)
    m = re.fullmatch(r"error: no Dask worker started within 5 s \(cluster\.start_timeout\): SLURM job (\d+) "
                     r"pending \(PartitionDown\), job (\d+) pending \(PartitionDown\); job outputs in (\S+)/", line)
    assert m, line
    assert seconds < 5 + 30
    ids = [m.group(1), m.group(2)]
    assert _ended(slurm, ids) == dict.fromkeys(ids, "CANCELLED") and not set(ids) & set(slurm.queue())
    _only_complete_datasets(cli)
    print(f"\npartition down: error after {seconds:.1f} s (start_timeout 5 s), jobs {ids}")


def test_a_job_that_ends_before_its_worker_starts_is_one_error_line(slurm, tmp_path, prefect_server):
    """A prologue that fails (a module that does not load, no Python on the nodes): the job's last line of error
    output, at once, not a wait for the start timeout."""
    cli = Cli(tmp_path, prefect_server, slurm, prologue=["echo no python here >&2", "exit 3"])
    t0 = time.monotonic()
    proc = cli(*SURVEY)
    seconds = time.monotonic() - t0
    line = _one_error_line(proc)
    [job] = cli.jobs()
    [logs] = cli.log_dirs()
    assert line == (f"error: SLURM job {job} ended (FAILED) before its Dask worker started "
                    f"({logs}/strata-{job}.err: no python here)"), line
    assert not set(cli.jobs()) & set(slurm.queue())
    _only_complete_datasets(cli)
    print(f"\njob ended before its worker: error after {seconds:.1f} s")


def test_a_job_that_dies_mid_piece_fails_the_piece_in_one_line_without_retries(slurm, tmp_path, prefect_server):
    """``survey:2:kill`` SIGKILLs the job's processes as piece 2 (the last) starts, as a failing node would: with
    --retries 0 the run ends naming the step, the piece and the job; pieces 0 and 1 are kept for a rerun; no job is
    left."""
    cli = Cli(tmp_path, prefect_server, slurm)
    t0 = time.monotonic()
    proc = cli(*SURVEY, "--retries", "0", STRATA_FAULT="survey:2:kill")
    seconds = time.monotonic() - t0
    line = _one_error_line(proc)
    job, *again = cli.jobs()  # one more job if the dead job held a piece whose result was not yet read
    assert len(again) <= 1
    # The job dies as piece 2 starts; piece 1 may still be held by it (computed, result not yet read), and then it
    # is the piece charged, while piece 2 runs on the replacement job. Either way exactly one piece is lost.
    lost = 3 - len(_markers(cli.root))
    named = re.search(r"first: shot (\d), piece \1:", line)
    assert lost == 1 and named and int(named[1]) in (1, 2), line
    piece = int(named[1])
    assert line == (f"error: step survey: 1 of 3 pieces not written (first: shot {piece}, piece {piece}: SLURM job "
                    f"{job} ended (FAILED) while computing it (1 attempt, --retries 0)); finished pieces are kept and "
                    f"a rerun resumes"), line
    assert _markers(cli.root) == [p for p in range(3) if p != piece]
    assert not set(cli.jobs()) & set(slurm.queue())
    _only_complete_datasets(cli)
    print(f"\njob killed, no retry: error after {seconds:.1f} s")


def test_jobs_cancelled_mid_piece_are_replaced_and_the_run_completes(slurm, tmp_path, prefect_server):
    """``scancel`` of the run's job while piece 1 computes: a new job is submitted, the piece runs again there
    (--retries 1), the run completes."""
    cli = Cli(tmp_path, prefect_server, slurm)
    proc = cli.popen(*SLOW_SURVEY, "--retries", "1", "--json")
    try:
        _wait_for_marker(proc, cli.root, 1)
        first = cli.jobs()
        subprocess.run(["scancel", *first], env=slurm.env, check=True)
        out, err = proc.communicate(timeout=240)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 0, err[-3000:]
    jobs = cli.jobs()
    assert len(first) == 1 and len(jobs) == 2 and jobs[0] == first[0], jobs
    assert _markers(cli.root) == [0, 1, 2]
    assert not set(jobs) & set(slurm.queue())
    assert len(json.loads(out)["computed"]) == 3
    _only_complete_datasets(cli)


def test_sigterm_mid_run_cancels_the_jobs_at_once(slurm, tmp_path, prefect_server):
    """SIGTERM (Ctrl-C, a scheduler's stop) while a piece computes: exit 130 and the run's job leaves the queue
    within seconds. While it ran, its environment had no loopback URL (the session's Prefect server is one)."""
    cli = Cli(tmp_path, prefect_server, slurm)
    assert "127.0.0.1" in cli.env["PREFECT_API_URL"]
    proc = cli.popen(*SLOW_SURVEY)
    try:
        _wait_for_marker(proc, cli.root, 1)
        [job] = cli.jobs()
        envs = _job_environments(job)
        assert envs, "no process of the job found"
        for env in envs:
            assert "PREFECT_API_URL" not in env
            assert not [k for k, v in env.items() if re.search(r"://(127\.|localhost)", v)], env
        t0 = time.monotonic()
        os.kill(proc.pid, signal.SIGTERM)
        seconds = _gone(slurm, [job])
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130 and err.strip().splitlines()[-1] == "error: interrupted", err[-3000:]
    assert "Traceback" not in err
    assert seconds < 5
    assert _ended(slurm, [job]) == {job: "CANCELLED"}
    print(f"\nSIGTERM: job {job} gone after {seconds:.2f} s, strata exited after {time.monotonic() - t0:.1f} s")


def _job_environments(job: str) -> list[dict[str, str]]:
    """The environments of this machine's processes that belong to SLURM job ``job``."""
    envs = []
    for p in Path("/proc").iterdir():
        if not p.name.isdigit():
            continue
        try:
            raw = (p / "environ").read_bytes()
        except OSError:
            continue
        env = dict(x.split("=", 1) for x in raw.decode(errors="replace").split("\0") if "=" in x)
        if env.get("SLURM_JOB_ID") == job:
            envs.append(env)
    return envs
