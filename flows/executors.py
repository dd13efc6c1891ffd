"""Where a step's pieces run: one interface, in process or on a Dask cluster.

Steps hand an executor a function of a batch of region indices and the indices to compute; they
never see which executor it is. Adding a kind of cluster means adding one implementation here, or
giving :class:`DaskExecutor` that cluster's scheduler address; a batch system's cluster (dask-jobqueue,
:class:`BatchExecutor`) is started when the first piece must be computed.
"""

from __future__ import annotations

import time
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

from strata_errors import InputError, RunError

from .interrupts import raise_kept_interrupt

__all__ = ["Executor", "InProcess", "DaskExecutor", "BatchExecutor", "BatchSystem", "Failure", "tasks_of",
           "TASK_SECONDS"]

Batch = list[int]
Failure = tuple[Batch, BaseException]
Done = Callable[[Batch, Any], None]

# Tasks of about this many seconds when ``per_task`` is "auto": the cluster's own cost per task
# (a few ms of CPU over the scheduler, the worker's event loop and the flow process, on the cores
# the pieces compute on) then stays under 1 % of the work.
TASK_SECONDS = 1.0


def tasks_of(todo: Sequence[int], per_task: int | str, slots: int, piece_seconds: float | None) -> list[Batch]:
    """``todo`` cut into tasks of ``per_task`` items; ``"auto"``: as many as take about
    :data:`TASK_SECONDS` (``piece_seconds``: one item's measured time, if known), but at most what
    leaves two tasks per worker thread (``slots``), so that every worker stays busy to the end;
    one item per task when ``slots`` is 0 (in process: the size changes only the progress shown)."""
    if per_task == "auto":
        k = 1
        if slots > 0 and todo:
            k = -(-len(todo) // (2 * slots))
            if piece_seconds is not None:
                k = min(k, max(1, round(TASK_SECONDS / max(piece_seconds, 1e-3))))
    elif isinstance(per_task, int) and not isinstance(per_task, bool) and per_task >= 1:
        k = per_task
    else:
        raise InputError(f"per_task must be 'auto' or an integer >= 1, got {per_task!r}")
    return [list(todo[i : i + k]) for i in range(0, len(todo), k)]


class Executor(ABC):
    """Runs ``fn(batch)`` for batches of items; a failure stops no other batch."""

    #: worker threads that compute at once (0: in process, one at a time)
    slots: int = 0

    @abstractmethod
    def map(self, fn: Callable[[Batch], Any], items: Sequence[int], *, name: str, retries: int = 0,
            per_task: int | str = "auto", piece_seconds: float | None = None,
            on_done: Done | None = None) -> list[Failure]:
        """Run ``fn`` over ``items`` cut into batches (:func:`tasks_of`); ``on_done(batch,
        result)`` in this process after each success. Returns the failures, in item order.
        Leaving early (an interrupt) cancels what has not run yet."""

    def call(self, fn: Callable[[], Any], *, name: str, retries: int = 0) -> Any:
        """Run ``fn()`` once, on the executor; its result, or its exception raised here."""
        results: list[Any] = []
        failures = self.map(_Call(fn), [0], name=name, retries=retries, per_task=1,
                            on_done=lambda batch, result: results.append(result))
        if failures:
            raise failures[0][1]
        return results[0]

    def close(self) -> None:  # noqa: B027 - most executors hold nothing
        """Release what the executor holds (connections); the cluster itself is not its to stop."""


class _Call:
    """``fn()`` as a function of a batch (picklable when ``fn`` is)."""

    def __init__(self, fn: Callable[[], Any]):
        self.fn = fn

    def __call__(self, batch: Batch) -> Any:
        return self.fn()


class InProcess(Executor):
    """One item at a time, here (the flow's process)."""

    slots = 0

    def map(self, fn: Callable[[Batch], Any], items: Sequence[int], *, name: str, retries: int = 0,
            per_task: int | str = "auto", piece_seconds: float | None = None,
            on_done: Done | None = None) -> list[Failure]:
        failures: list[Failure] = []
        for batch in tasks_of(items, per_task, self.slots, piece_seconds):
            raise_kept_interrupt()
            for attempt in range(retries + 1):
                try:
                    result = fn(batch)
                except Exception as exc:
                    if attempt == retries:
                        failures.append((batch, exc))
                    continue
                if on_done is not None:
                    on_done(batch, result)
                break
        return failures


class DaskExecutor(Executor):
    """Plain Dask tasks on the scheduler at ``address`` (a LocalCluster strata started, an existing
    scheduler, or a batch-system cluster's). A Prefect task per piece would cost 0.12-0.18 s of
    wall time and ~0.3 s of CPU; a Dask task costs a few ms."""

    def __init__(self, address: str):
        from distributed import Client

        self.address = address
        self.client = Client(address, set_as_default=False)

    @property
    def slots(self) -> int:  # type: ignore[override]
        return sum(self.client.nthreads().values())

    #: seconds between two calls of :meth:`_check` while tasks wait
    poll_seconds = 1.0

    def map(self, fn: Callable[[Batch], Any], items: Sequence[int], *, name: str, retries: int = 0,
            per_task: int | str = "auto", piece_seconds: float | None = None,
            on_done: Done | None = None) -> list[Failure]:
        from queue import Empty, SimpleQueue

        batches = tasks_of(items, per_task, self.slots, piece_seconds)
        if not batches:
            return []
        token = uuid.uuid4().hex[:8]
        futures = self.client.map(fn, batches, key=[f"{name}-{b[0]}-{token}" for b in batches],
                                  pure=False, retries=retries)
        batch_of = {f.key: b for f, b in zip(futures, batches, strict=True)}
        finished: SimpleQueue = SimpleQueue()
        for f in futures:
            f.add_done_callback(finished.put)
        failures: list[Failure] = []
        left, checked = len(futures), time.monotonic()
        try:
            while left:
                raise_kept_interrupt()
                if time.monotonic() - checked >= self.poll_seconds:
                    self._check()
                    checked = time.monotonic()
                try:
                    fut = finished.get(timeout=self.poll_seconds)
                except Empty:
                    continue
                left -= 1
                while True:
                    try:
                        result = fut.result(timeout=self.poll_seconds)
                    except Exception as exc:
                        if isinstance(exc, TimeoutError) and fut.status not in ("error", "cancelled"):
                            # its worker died before the result was read: computed again (elsewhere), while the
                            # cluster is checked on
                            self._check()
                            continue
                        failures.append((batch_of[fut.key], exc))
                        break
                    if on_done is not None:
                        on_done(batch_of[fut.key], result)
                    break
        finally:
            pending = [f for f in futures if not f.done()]
            if pending:
                self.client.cancel(pending)
        return sorted(failures, key=lambda f: f[0][0])

    def _check(self) -> None:
        """Called about every :attr:`poll_seconds` while tasks wait: raise to give up on them."""

    def close(self) -> None:
        self.client.close()


class BatchSystem(Protocol):
    """A batch system's cluster of one run, as :class:`BatchExecutor` drives it (``pipelines.batch.BatchCluster``)."""

    slots: int  # worker threads planned

    def start(self, log_dir: Path) -> str: ...           # submits the jobs; the scheduler's address
    def describe(self) -> str: ...                       # one line: jobs, dashboard, logs
    def allow_failures(self, n: int) -> None: ...        # attempts after a worker's job ended
    def waiting(self) -> None: ...                       # tasks start waiting (the start timeout counts)
    def check(self) -> None: ...                         # RunError when the run cannot go on
    def ended(self, worker: str) -> str: ...             # why the worker (address) is gone, one phrase
    def cancel(self) -> None: ...                        # cancel every job now
    def close(self) -> None: ...                         # and stop the scheduler


class BatchExecutor(DaskExecutor):
    """Dask tasks on a batch system's cluster (SLURM, PBS), started when the first piece must be computed: a run
    that computes nothing submits no job. ``log_dir()``: where the jobs' outputs and Dask's logs go (asked at the
    start); ``say``: prints the one line describing the cluster. A piece whose worker's job ends runs again on
    another job, ``retries`` times at most; a cluster that cannot serve the run (a refused job, no worker within
    the start timeout) ends it with :attr:`fatal`, one line."""

    def __init__(self, batch: BatchSystem, log_dir: Callable[[], Path], say: Callable[[str], None] | None = None):
        self.batch, self._log_dir, self._say = batch, log_dir, say
        self.address: str | None = None
        self.client: Any = None
        self.fatal: RunError | None = None
        self.start_seconds = 0.0

    @property
    def slots(self) -> int:  # type: ignore[override]
        return self.batch.slots  # as planned: jobs may still be pending (or not asked for yet)

    def _start(self) -> None:
        if self.client is not None:
            return
        from distributed import Client

        t0 = time.perf_counter()
        self.address = self.batch.start(self._log_dir())
        self.client = Client(self.address, set_as_default=False)
        if self._say is not None:
            self._say(self.batch.describe())
        self.start_seconds = time.perf_counter() - t0

    def map(self, fn: Callable[[Batch], Any], items: Sequence[int], *, name: str, retries: int = 0,
            per_task: int | str = "auto", piece_seconds: float | None = None,
            on_done: Done | None = None) -> list[Failure]:
        if not items:
            return []
        try:
            self._start()
            self.batch.allow_failures(retries)
            self.batch.waiting()
            failures = super().map(fn, items, name=name, retries=retries, per_task=per_task,
                                   piece_seconds=piece_seconds, on_done=on_done)
        except RunError as exc:
            self.fatal = exc
            raise
        return [(batch, self._explain(exc, retries)) for batch, exc in failures]

    def _check(self) -> None:
        self.batch.check()

    def _explain(self, exc: BaseException, retries: int) -> BaseException:
        """A task whose workers' jobs all ended (Dask's KilledWorker): one line saying which job and how."""
        from distributed import KilledWorker

        if not isinstance(exc, KilledWorker):
            return exc
        attempts = f"{retries + 1} attempt{'s' * (retries > 0)}"
        return RunError(f"{self.batch.ended(exc.last_worker.address)} while computing it ({attempts}, "
                        f"--retries {retries})")

    def close(self) -> None:
        self.batch.cancel()  # first: a run stopped by SIGTERM leaves no job behind
        if self.client is not None:
            try:
                self.client.close(timeout=5)
            except Exception:  # pragma: no cover - best effort on shutdown
                pass
            self.client = None
        self.batch.close()
