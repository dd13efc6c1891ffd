"""Process-level set-up of a study run: Prefect housekeeping, threads, server, task runner.

Nothing here imports Prefect at module import time: the environment must be set first.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from strata_errors import InputError

from . import server
from .executors import BatchExecutor, BatchSystem, DaskExecutor, Executor, InProcess

__all__ = ["Runtime", "prefect_env", "prefect_home", "use_prefect", "cores", "local_cluster"]


def cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover
        return os.cpu_count() or 1


def prefect_env(prefect_home: Path) -> dict[str, str]:
    """Environment strata sets for Prefect (the housekeeping of docs/architecture.md); user values win."""
    env = {
        "PREFECT_HOME": str(prefect_home),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
        "PREFECT_SERVER_UI_ENABLED": "false",
        "PREFECT_LOGGING_LEVEL": "CRITICAL",  # failures reach the user as one `error:` line
        "PREFECT_RESULTS_PERSIST_BY_DEFAULT": "false",
        "PREFECT_RUNNER_POLL_FREQUENCY": "2",  # `strata serve`: its scheduled runs start within 2 s (default 10)
    }
    return {k: os.environ.get(k, v) for k, v in env.items()}


def prefect_home(catalog: Any) -> Path:
    """The Prefect home of a catalog's data root (in the root's local cache: its server's database and log)."""
    return catalog.storage.cache_dir() / "prefect"


def use_prefect(home: Path, ephemeral: bool = False, wait: bool = True) -> tuple[server.ServerInfo | None, bool]:
    """Set this process up for Prefect, before Prefect is imported: its environment (:func:`prefect_env`), and
    its API: ``PREFECT_API_URL`` when the user set it, Prefect's ephemeral mode when asked, else the data root's
    own server, found or started (and left running). ``wait``: until that server answers, and point
    ``PREFECT_API_URL`` at it; else it boots meanwhile. Returns (the root's server or None, whether it was
    started now). Every command that needs Prefect comes through here."""
    home.mkdir(parents=True, exist_ok=True)  # Prefect reads its home when imported
    os.environ.update(prefect_env(home))
    if ephemeral or os.environ.get("PREFECT_API_URL"):
        return None, False
    info, started = server.ensure(home)
    if wait:
        server.wait_ready(home, info)
        os.environ["PREFECT_API_URL"] = info.url
    return info, started


# A LocalCluster's housekeeping runs beside the pieces: in the worker, Dask's statistical profiler
# samples the running task every 10 ms (a thread that preempts a compute thread 100 times a
# second) and a memory monitor wakes every 100 ms; in strata's process (scheduler and nannies),
# the event-loop tick every 20 ms. Pieces are long numerical kernels: no profiler, and slower
# ticks and monitors (memory limits are still enforced, within a second).
_QUIET_CLUSTER = {
    "distributed.worker.profile.enabled": False,
    "distributed.admin.tick.interval": "500ms",
    "distributed.admin.system-monitor.interval": "2s",
    "distributed.worker.memory.monitor-interval": "1s",
}


def local_cluster(workers: int, threads: int) -> Any:
    """A Dask LocalCluster of ``workers`` processes (one piece at a time each, ``threads`` OpenMP/torch threads),
    on loopback, in this process group: what ``--workers N`` runs on (close it when done). Needs no Prefect: a
    run in process (:func:`flows.study.run_local`) can compute on it through a
    :class:`~flows.executors.DaskExecutor`."""
    import logging

    import dask
    from distributed import LocalCluster

    logging.getLogger("distributed").setLevel(logging.WARNING)
    thread_env = {v: str(threads) for v in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")}
    # worker-saturation inf: every ready piece goes to a worker at once, so a worker finishing
    # one starts the next without a round trip through the scheduler (pieces are uniform).
    # _QUIET_CLUSTER: fewer wake-ups while pieces compute (each one stalls an OpenMP team).
    quiet = {**_QUIET_CLUSTER, "distributed.scheduler.work-stealing": workers > 1}
    with dask.config.set({"distributed.nanny.pre-spawn-environ": thread_env,
                          "distributed.worker.daemon": False,
                          "distributed.scheduler.worker-saturation": float("inf"), **quiet}):
        return LocalCluster(
            n_workers=workers, threads_per_worker=1, processes=True,
            dashboard_address="127.0.0.1:0", host="127.0.0.1", silence_logs=logging.WARNING,
            env={**thread_env, "DEVITO_LANGUAGE": os.environ.get("DEVITO_LANGUAGE", "openmp")},
        )


def _drain_events(timeout: float = 5.0) -> None:
    """Send the Prefect events this process still holds (task runs are orchestrated client-side)."""
    if "prefect.events.worker" not in sys.modules:
        return
    try:
        sys.modules["prefect.events.worker"].EventsWorker.drain_all(timeout=timeout, at_exit=False)
    except Exception:  # pragma: no cover - best effort on shutdown
        pass


class Runtime:
    """``with Runtime(home, workers, address) as rt:`` … ``rt.task_runner()``, ``rt.executor``.

    Prefect: ``PREFECT_API_URL`` when the user set it; else ``ephemeral`` Prefect when asked; else
    the data root's own server (:mod:`flows.server`: found, or started and left running).
    Executor: in process (one piece at a time, OpenMP/torch threads = cores); ``workers=N``: a
    LocalCluster of N processes with cores // N threads each, in strata's process group and
    stopped on exit; ``address``: an existing Dask scheduler; ``batch``: a batch system's cluster
    (:class:`~flows.executors.BatchSystem`), started by the executor when the first piece must be computed
    (its logs in ``log_dir()``, its one line through ``say``), its jobs cancelled on exit.
    ``threads``: OpenMP threads per worker (default: the cores shared among the workers).
    """

    def __init__(self, prefect_home: Path, workers: int | None = None, address: str | None = None,
                 ephemeral: bool = False, batch: BatchSystem | None = None, threads: int | None = None,
                 say: Callable[[str], None] | None = None):
        if workers is not None and workers < 1:
            raise InputError(f"--workers must be ≥ 1, got {workers}")
        if sum(bool(x) for x in (workers, address, batch)) > 1:
            raise InputError("give one of --workers, --dask-address or a cluster, not several")
        self.home = Path(prefect_home)
        self.workers, self.address, self.ephemeral, self.batch = workers, address, ephemeral, batch
        self.threads = threads or (max(1, cores() // workers) if workers else cores())
        self._stack = ExitStack()
        self.server: server.ServerInfo | None = None  # the root's server, when this run uses it
        self.server_started = False
        self.cluster: Any = None
        self.executor: Executor = InProcess()
        self.server_seconds = 0.0
        self.cluster_seconds = 0.0
        self.say = say
        #: where a batch cluster's logs go: ``<root>/logs/<run>`` (the run sets it once it knows its flow run id)
        self.log_dir: Callable[[], Path] = lambda: self.home.parent / "logs" / time.strftime("%Y%m%d-%H%M%S")

    def __enter__(self) -> Runtime:
        for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
            if self.workers or var not in os.environ:  # serial: a user's setting wins
                os.environ[var] = str(self.threads)
        os.environ.setdefault("DEVITO_LANGUAGE", "openmp")
        t0 = time.perf_counter()
        self.server, self.server_started = use_prefect(self.home, self.ephemeral)
        if self.server is not None:  # the root's server: watched while the run uses it
            self._stack.callback(server.watch(self.home, self.server))  # a server that dies is started again
            self._stack.callback(os.environ.pop, "PREFECT_API_URL", None)
            self.server_seconds = time.perf_counter() - t0
        from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

        self._stack.enter_context(temporary_settings({PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}))
        if self.workers:
            self._start_cluster()
        if self.batch is not None:  # a batch system's cluster: its jobs are asked for when a piece must compute
            self.executor = BatchExecutor(self.batch, lambda: self.log_dir(), self.say)
        elif self.workers or self.address:
            t0 = time.perf_counter()
            self.executor = DaskExecutor(self.cluster.scheduler_address if self.workers else self.address)
            self.cluster_seconds += time.perf_counter() - t0
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.executor.close()  # a batch cluster's jobs are cancelled here
        self.cluster_seconds += getattr(self.executor, "start_seconds", 0.0)
        self.executor = InProcess()
        if self.cluster is not None:
            try:
                self.cluster.close(timeout=20)
            except Exception:  # pragma: no cover - best effort on shutdown
                pass
            self.cluster = None
        _drain_events()  # task-run events still queued in this process go out while the server is known
        self._stack.close()

    # -- children ----------------------------------------------------------------------------
    def _start_cluster(self) -> None:
        t0 = time.perf_counter()
        self.cluster = local_cluster(self.workers, self.threads)
        self.cluster_seconds = time.perf_counter() - t0

    def task_runner(self) -> Any:
        """The flow's task runner: steps are Prefect tasks in the flow's process, one at a time,
        whose pieces go to :attr:`executor`; with a cluster, the runner is Prefect's view of it."""
        if self.workers:
            from prefect_dask import DaskTaskRunner

            return DaskTaskRunner(address=self.cluster.scheduler_address)
        if self.address:
            from prefect_dask import DaskTaskRunner

            return DaskTaskRunner(address=self.address)
        from prefect.task_runners import ThreadPoolTaskRunner

        return ThreadPoolTaskRunner(max_workers=1)
