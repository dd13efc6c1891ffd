"""The batch cluster of one run (:class:`BatchCluster`): jobs submitted when the first piece must be computed, logs
in the run's folder, SLURM's answers (a refusal, jobs that never start, jobs that end) as one line each."""

from __future__ import annotations

import logging
import os
import subprocess
import time
from pathlib import Path
from typing import Any

from strata_errors import RunError

from .cluster import ClusterConfig, submit_env, worker_env
from .jobqueue import jobqueue_cluster

__all__ = ["BatchCluster"]

_LOGGERS = ("distributed", "dask_jobqueue", "tornado", "asyncio")
_ENDED = {"BOOT_FAIL", "CANCELLED", "COMPLETED", "COMPLETING", "DEADLINE", "FAILED", "NODE_FAIL", "OUT_OF_MEMORY",
          "PREEMPTED", "REVOKED", "SPECIAL_EXIT", "STOPPED", "TIMEOUT"}
_POLL = 2.0  # s between two looks at the queue while pieces wait


class BatchCluster:
    """The ``slurm``/``pbs`` cluster of one run, for :class:`flows.executors.BatchExecutor`: ``start(log_dir)``
    when the first piece must be computed (submits the jobs); ``check()`` while pieces wait (a refused job, no
    worker after ``start_timeout``, a job that ended before its worker started: :class:`RunError`; a job that
    ended later is replaced); ``ended(worker)`` says why a worker's job ended; ``cancel()`` cancels every job of
    the run at once, ``close()`` also stops the scheduler."""

    def __init__(self, cfg: ClusterConfig, root: str):
        self.cfg, self.root = cfg, root
        self.system = "SLURM" if cfg.kind == "slurm" else "PBS"
        self.cluster: Any = None
        self.log_dir: Path | None = None
        self.refused: list[str] = []
        self.jobs: dict[str, str] = {}        # job id -> worker (spec) name, every job the run submitted
        self.seen: set[str] = set()           # names of the workers that connected once
        self.job_of: dict[str, str] = {}      # worker address -> its job's id
        self.states: dict[str, tuple[str, str]] = {}  # job id -> (state, reason), last seen
        self._since: float | None = None      # since when no worker is connected while pieces wait
        self._polled = 0.0
        self._renamed = 0
        self._saved_logging: list[tuple[logging.Logger, list[logging.Handler], int, bool]] = []

    # -- what the executor knows before the start ---------------------------------------------------
    @property
    def slots(self) -> int:
        """Worker threads the run plans for (one per Dask worker)."""
        jobs = self.cfg.adaptive.maximum if self.cfg.adaptive else self.cfg.workers
        return jobs * self.cfg.processes

    # -- life -----------------------------------------------------------------------------------------
    def start(self, log_dir: Path) -> str:
        """Start the scheduler (here) and submit the jobs; the scheduler's address."""
        import dask

        base = Path(self.cfg.log_directory).expanduser() / log_dir.name if self.cfg.log_directory else log_dir
        self.log_dir = base.resolve()
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self._route_logs(self.log_dir / "dask.log")
        env = worker_env(self.cfg, self.root, os.environ.get("PREFECT_API_URL"))
        # worker-saturation 1: a worker holds only the piece it computes, so a job that ends costs only that
        # piece an attempt; allowed-failures: set per map to the step's retries (the executor)
        with dask.config.set({"distributed.scheduler.worker-saturation": 1.0,
                              "distributed.scheduler.allowed-failures": 0}):
            self.cluster = jobqueue_cluster(self.cfg, env, log_dir=self.log_dir, refused=self.refused, quiet=False)
        (self.log_dir / "job.sh").write_text(self.cluster.job_script())
        self.cluster.sync(self._watch_workers)
        if self.cfg.adaptive is not None:
            # a job idle for 30 s is released (not 3 s: a step follows another within seconds, a new job queues)
            self.cluster.adapt(minimum_jobs=self.cfg.adaptive.minimum, maximum_jobs=self.cfg.adaptive.maximum,
                               wait_count=30, interval="1s")
        else:
            self.cluster.scale(jobs=self.cfg.workers)
        return self.cluster.scheduler_address

    def describe(self) -> str:
        """One line for the terminal: what was asked for, the dashboard, the logs."""
        c = self.cfg
        jobs = (f"adaptive {c.adaptive.minimum}–{c.adaptive.maximum} jobs" if c.adaptive
                else f"{c.workers} job{'s' * (c.workers > 1)}")
        queue = f" on {c.queue}" if c.queue else ""
        return (f"{self.system}: {jobs}{queue} of {c.cores} core{'s' * (c.cores > 1)}, {c.memory}, {c.walltime} · "
                f"dashboard {self.cluster.dashboard_link} · logs {self.log_dir}/")

    def allow_failures(self, n: int) -> None:
        """A piece whose worker's job ends is run again on another, ``n`` times at most."""
        self.cluster.scheduler.allowed_failures = n

    def waiting(self) -> None:
        """Pieces start waiting: the start timeout counts from now while no worker is connected."""
        self._since = None

    def check(self) -> None:
        """While pieces wait: raise :class:`RunError` (one line) when the run cannot go on; replace ended jobs."""
        if self.refused:
            raise RunError(f"{self.system} refused the job ({self._submit_line()}): {self.refused[0]}")
        now = time.monotonic()
        jobs, names = self.cluster.sync(self._snapshot)
        for job_id, name in jobs.items():
            if job_id:
                self.jobs[job_id] = name
        if names:
            self._since = None
        elif self._since is None:
            self._since = now
        if now - self._polled >= _POLL:
            self._polled = now
            self._look_at_queue(jobs)
        if self._since is not None and now - self._since > self.cfg.start_timeout:
            waiting = [j for j in jobs if j]
            self.states.update(self._queue(waiting))
            if not waiting:
                what = "no job submitted"
            elif self.cfg.kind == "slurm":
                what = f"{self.system} " + ", ".join(self._job_line(j) for j in waiting)
            else:
                what = f"{self.system} jobs {', '.join(waiting)} still waiting (`qstat -f JOB` says why)"
            raise RunError(f"no Dask worker started within {self.cfg.start_timeout:g} s (cluster.start_timeout): "
                           f"{what}; job outputs in {self.log_dir}/")

    def ended(self, worker: str) -> str:
        """Why the worker at address ``worker`` is gone: ``SLURM job 12 ended (CANCELLED)``."""
        job_id = self.job_of.get(worker)
        if not job_id:
            return f"its Dask worker {worker} died"
        self.states.update(self._queue([job_id]))
        state = self.states.get(job_id, ("", ""))[0]
        if state in ("RUNNING", "PENDING", "CONFIGURING", "SUSPENDED"):
            return f"its Dask worker in {self.system} job {job_id} died"
        return f"{self.system} job {job_id} ended ({state or 'gone from the queue'})"

    def cancel(self) -> None:
        """Cancel every job of the run at once (one ``scancel``/``qdel``)."""
        if self.cluster is None:
            return
        try:
            jobs, _ = self.cluster.sync(self._snapshot, callback_timeout=5)
            self.jobs.update({j: n for j, n in jobs.items() if j})
        except Exception:  # pragma: no cover - the ids known so far
            pass
        if self.jobs:
            cancel = "scancel" if self.cfg.kind == "slurm" else "qdel"
            try:
                subprocess.run([cancel, *self.jobs], capture_output=True, env=submit_env(), timeout=30, check=False)
            except (OSError, subprocess.TimeoutExpired):  # pragma: no cover - jobqueue's close tries again
                pass

    def close(self) -> None:
        """Cancel the jobs, stop the scheduler, give Dask's loggers back."""
        if self.cluster is not None:
            self.cancel()
            try:
                self.cluster.close(timeout=10)
            except Exception:  # pragma: no cover - best effort on shutdown; the jobs are cancelled
                pass
            self.cluster = None
        self._restore_logs()

    # -- inside ----------------------------------------------------------------------------------------
    async def _watch_workers(self) -> None:
        """Every worker that connects: its name into :attr:`seen`, its job into :attr:`job_of` (by address)."""
        from distributed import SchedulerPlugin

        seen, job_of, cluster = self.seen, self.job_of, self.cluster

        class Seen(SchedulerPlugin):
            name = "strata-seen-workers"

            def add_worker(self, scheduler: Any, worker: str) -> None:
                name = str(scheduler.workers[worker].name)
                seen.add(name)
                for spec, job in list(cluster.workers.items()):
                    if name == spec or name.startswith(f"{spec}-"):
                        job_of[worker] = getattr(job, "job_id", None) or ""

        self.cluster.scheduler.add_plugin(Seen())

    async def _snapshot(self) -> tuple[dict[str, str], set[str]]:
        """({job id or '': spec name} of the jobs the cluster holds, names of the connected workers)."""
        jobs = {(getattr(job, "job_id", None) or ""): name for name, job in list(self.cluster.workers.items())}
        names = {str(ws.name) for ws in self.cluster.scheduler.workers.values()}
        return jobs, names

    def _look_at_queue(self, jobs: dict[str, str]) -> None:
        """Jobs that left the queue: before their worker started, the run fails; after, they are replaced."""
        ids = [j for j in jobs if j]
        if not ids or self.cfg.kind != "slurm":  # PBS: no look at the queue (qstat differs between PBS Pro and Torque)
            return
        seen = self._queue(ids)
        self.states.update(seen)
        gone = [j for j in ids if j not in seen or seen[j][0] in _ENDED]
        if not gone:
            return
        never = [j for j in gone if not any(w == jobs[j] or w.startswith(f"{jobs[j]}-") for w in self.seen)]
        if never:
            j = never[0]
            raise RunError(f"{self.system} job {j} ended ({self.states.get(j, ('gone from the queue', ''))[0]}) "
                           f"before its Dask worker started{self._log_tail(j)}")
        self.cluster.sync(self._replace, [jobs[j] for j in gone])

    async def _replace(self, names: list[str]) -> None:
        """Jobs ``names`` ended: forget them and ask for as many new ones, under new names (a name Dask saw leave is
        closed again 15 s later, ``distributed.deploy.lost-worker-timeout``: it must not be a new job's)."""
        from distributed import Status

        for name in names:
            self._renamed += 1
            self.cluster.worker_spec.pop(name, None)
            job = self.cluster.workers.pop(name, None)
            if job is not None:
                job.status = Status.closed  # its job ended: nothing to cancel
            self.cluster.worker_spec[f"{name.rsplit('-', 1)[0]}-r{self._renamed}"] = self.cluster.new_spec
        self.cluster.scale(jobs=len(self.cluster.worker_spec))  # as many as now: submits the new ones

    def _queue(self, ids: list[str]) -> dict[str, tuple[str, str]]:
        """{job id: (state, reason)} the batch system still knows of, among ``ids``."""
        if not ids or self.cfg.kind != "slurm":
            return {}  # PBS: no look at the queue (qstat's output differs between PBS Pro and Torque)
        try:
            out = subprocess.run(["squeue", "-h", "-t", "all", "-j", ",".join(ids), "-o", "%i|%T|%r"],
                                 capture_output=True, text=True, timeout=30, check=False).stdout
        except (OSError, subprocess.TimeoutExpired):
            return {}
        states = {}
        for line in out.splitlines():
            fields = line.strip().split("|")
            if len(fields) == 3:
                states[fields[0]] = (fields[1], fields[2])
        return states

    def _job_line(self, job_id: str) -> str:
        state, reason = self.states.get(job_id, ("", ""))
        if not state:
            return f"job {job_id} not in the queue"
        why = f" ({reason})" if reason and reason != "None" else ""
        return f"job {job_id} {state.lower()}{why}"

    def _log_tail(self, job_id: str) -> str:
        """``: <last line of the job's error output>`` if there is one."""
        for suffix in ("err", "out"):
            path = self.log_dir / f"strata-{job_id}.{suffix}"
            try:
                lines = [x for x in path.read_text(errors="replace").splitlines() if x.strip()]
            except OSError:
                continue
            if lines:
                return f" ({path}: {lines[-1].strip()[:300]})"
        return f" (no output in {self.log_dir}/)"

    def _submit_line(self) -> str:
        c = self.cfg
        opts = [f"-p {c.queue}" if c.queue else "", f"-A {c.account}" if c.account else ""]
        cmd = "sbatch" if c.kind == "slurm" else "qsub"
        return " ".join([cmd, *filter(None, opts)])

    def _route_logs(self, path: Path) -> None:
        """Dask's, jobqueue's and the event loop's logs to ``path`` (not the terminal) while the cluster lives."""
        handler = logging.FileHandler(path)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        for name in _LOGGERS:
            log = logging.getLogger(name)
            self._saved_logging.append((log, list(log.handlers), log.level, log.propagate))
            log.handlers = [handler]
            log.setLevel(logging.INFO)
            log.propagate = False

    def _restore_logs(self) -> None:
        for log, handlers, level, propagate in self._saved_logging:
            for h in log.handlers:
                if h not in handlers:
                    h.close()
            log.handlers, log.level, log.propagate = handlers, level, propagate
        self._saved_logging = []
