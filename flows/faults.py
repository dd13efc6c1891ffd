"""Fault injection for tests: ``STRATA_FAULT=<step>:<piece>:<action>`` makes a chosen piece of a chosen step fail.

The worker side (:mod:`flows.pieces`) calls :func:`maybe_fault` as a piece starts and wraps the write of its
result in :func:`write_fault`; with ``STRATA_FAULT`` unset both do nothing. The actions: ``raise`` (the piece
fails), ``kill`` (SIGKILL to the run's process group), ``flaky`` (fails the first time only: a transient failure),
``killworker`` (SIGKILL to this process alone, once, right after the piece stored its first chunk: a Dask worker
dying mid-piece) and ``enospc`` (an ``OSError(ENOSPC)`` at that point: the disk filling up; local roots). "Once" is
remembered by a file in the directory ``$STRATA_FAULT_STATE``.
"""

from __future__ import annotations

import errno
import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from strata_errors import InputError

__all__ = ["maybe_fault", "write_fault"]

_ACTIONS = ("raise", "kill", "flaky", "killworker", "enospc")


def _armed(step: str, piece: int) -> str | None:
    """The action ``STRATA_FAULT=<step>:<piece>:<action>`` arms at (``step``, ``piece``), else None."""
    spec = os.environ.get("STRATA_FAULT")
    if not spec:
        return None
    try:
        name, idx, action = spec.rsplit(":", 2)
        idx_i = int(idx)
    except ValueError:
        raise InputError(f"STRATA_FAULT={spec!r}: expected <step>:<piece>:<{'|'.join(_ACTIONS)}>") from None
    if action not in _ACTIONS:
        raise InputError(f"STRATA_FAULT action must be one of {', '.join(_ACTIONS)}, not {action!r}")
    return action if (name, idx_i) == (step, piece) else None


def _first_time(step: str, piece: int, action: str) -> bool:
    """Is this the first time the fault fires? (remembered by a file in ``$STRATA_FAULT_STATE``, a directory,
    created just before the fault fires: its mtime is the moment of the fault)"""
    state = os.environ.get("STRATA_FAULT_STATE")
    if not state:
        raise InputError(f"STRATA_FAULT=...:{action} needs STRATA_FAULT_STATE, a directory to remember it in")
    try:
        os.close(os.open(os.path.join(state, f"{step}-{piece}"), os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    except FileExistsError:
        return False  # fired once already: this attempt goes through
    return True


def maybe_fault(step: str, piece: int) -> None:
    """Tests hit a chosen point with ``STRATA_FAULT=<step>:<piece>:<action>``; here, as the piece starts:
    ``raise`` fails it, ``kill`` SIGKILLs the process group (the run), ``flaky`` raises the first time only
    (a transient failure; see :func:`_first_time`). ``killworker`` and ``enospc`` fire while the piece's
    result is written (:func:`write_fault`)."""
    action = _armed(step, piece)
    if action == "kill":
        os.killpg(os.getpgrp(), signal.SIGKILL)
    if action == "raise":
        raise RuntimeError(f"injected fault at {step}:{piece}")
    if action == "flaky" and _first_time(step, piece, action):
        raise RuntimeError(f"injected transient fault at {step}:{piece}")


@contextmanager
def write_fault(step: str, piece: int) -> Iterator[None]:
    """While the piece's result is written: the faults of ``STRATA_FAULT`` that hit storage. Right after the first
    data chunk is stored (the region is half written, its marker missing), ``killworker`` SIGKILLs this process
    alone, the first time only (a Dask worker dying mid-piece; its nanny starts another), and ``enospc`` raises
    ``OSError(ENOSPC)`` naming the chunk (the disk filled up). Local roots only: it wraps zarr's ``LocalStore.set``
    for the duration (one piece at a time per process: strata's workers have one thread)."""
    action = _armed(step, piece)
    if action not in ("killworker", "enospc"):
        yield
        return
    from zarr.storage import LocalStore

    original = LocalStore.set

    async def faulty_set(store: LocalStore, key: str, value: Any) -> None:
        await original(store, key, value)
        if key.rsplit("/", 1)[-1] == "zarr.json":  # metadata: not yet
            return
        if action == "enospc":
            raise OSError(errno.ENOSPC, "No space left on device (injected)", str(store.root / key))
        if _first_time(step, piece, action):
            os.kill(os.getpid(), signal.SIGKILL)

    LocalStore.set = faulty_set  # type: ignore[method-assign]
    try:
        yield
    finally:
        LocalStore.set = original  # type: ignore[method-assign]
