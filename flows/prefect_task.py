"""A study run's steps in Prefect, or not: the task wrapper a run gives its steps, and a mapped step's progress.

A study run wraps each step's work with its ``as_task(fn, name)``: :func:`prefect_task` (one Prefect task run
of the flow run; ``strata run``, scheduled runs) or :func:`inline` (the work called as it is: an in-process run,
:func:`flows.study.run_local`). A mapped step's progress goes to a Prefect progress artifact of its task run,
when there is one (:class:`ProgressArtifact`).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any

__all__ = ["TaskWrapper", "prefect_task", "inline", "ProgressArtifact"]

TaskWrapper = Callable[[Callable[..., Any], str], Callable[..., Any]]


def prefect_task(fn: Callable[..., Any], name: str) -> Callable[..., Any]:
    """``fn`` as a Prefect task named ``name``, never cached (the catalog is the cache)."""
    from prefect import task
    from prefect.cache_policies import NO_CACHE

    return task(fn, name=name, cache_policy=NO_CACHE, persist_result=False)


def inline(fn: Callable[..., Any], name: str) -> Callable[..., Any]:
    """``fn`` itself: the step's work runs in the caller, outside Prefect."""
    return fn


class ProgressArtifact:
    """A Prefect progress artifact (percent of pieces done) of the current task run; nothing outside one."""

    def __init__(self, description: str, total: int, done: int, every: float = 1.0):
        self.total, self.done, self.every, self.id, self.sent = max(total, 1), done, every, None, 0.0
        if "prefect" not in sys.modules:  # no Prefect in this process: no task run (and no import for nothing)
            return
        try:
            from prefect.artifacts import create_progress_artifact
            from prefect.context import TaskRunContext

            if TaskRunContext.get() is not None:
                self.id = create_progress_artifact(self._percent(), description=f"{description}: pieces done")
                self.sent = time.monotonic()
        except Exception:  # pragma: no cover - progress display must never fail a step
            self.id = None

    def _percent(self) -> float:
        return round(100.0 * self.done / self.total, 1)

    def advance(self, n: int = 1) -> None:
        self.done += n
        if self.id is not None and time.monotonic() - self.sent >= self.every:
            self._send()

    def close(self) -> None:
        if self.id is not None:
            self._send()

    def _send(self) -> None:
        from prefect.artifacts import update_progress_artifact

        try:
            update_progress_artifact(self.id, self._percent())
        except Exception:  # pragma: no cover
            pass
        self.sent = time.monotonic()
