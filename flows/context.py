"""The run context: which study run a Step called now belongs to."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from strata_errors import RunError

if TYPE_CHECKING:
    from .study import StudyRun

__all__ = ["current_run", "active"]

_ACTIVE: list[StudyRun] = []


def current_run() -> StudyRun:
    """The study run being executed in this process (a Step called outside one is an error)."""
    if not _ACTIVE:
        raise RunError("a Step was called outside a study flow run")
    return _ACTIVE[-1]


@contextmanager
def active(run: StudyRun) -> Iterator[StudyRun]:
    """Make ``run`` the current run inside the block."""
    _ACTIVE.append(run)
    try:
        yield run
    finally:
        _ACTIVE.remove(run)
