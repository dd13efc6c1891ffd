"""A termination signal that reaches a run is never lost.

Python runs a signal's handler in the main thread, between two bytecodes of whatever runs there. When that is a
finalizer (an object's ``__del__``, a weakref callback: a Dask future released, an HTTP session closed), the
exception the handler raises — ``KeyboardInterrupt`` of SIGINT, ``strata run``'s SIGTERM, Prefect's
``TerminationSignal`` while a flow runs — is printed as "Exception ignored in …" and dropped: the run goes on as if
no signal had come (seen: SIGTERM sent to a SLURM run that then finished and exited 0).

:func:`latched` wraps the SIGTERM and SIGINT handlers in place for the duration of a run: each also records the
signal. :func:`raise_if_signalled`, called where a run waits or moves on (between pieces and between steps), calls
the recorded signal's handler once more, from ordinary code, where its exception propagates.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["latched", "raise_if_signalled"]

_SIGNALS = (signal.SIGTERM, signal.SIGINT)
_pending: list[tuple[int, Callable[..., Any]]] = []  # (signal, the handler it was meant for)


@contextmanager
def latched() -> Iterator[None]:
    """Record each SIGTERM/SIGINT that arrives inside the block (the handlers in place still run as they are). In
    the main thread only (elsewhere signals cannot be handled); signals whose handler is not a function (default
    action, ignored) are left alone."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    ours: dict[int, Callable[..., Any]] = {}
    previous: dict[int, Callable[..., Any]] = {}
    for signum in _SIGNALS:
        handler = signal.getsignal(signum)
        if callable(handler):
            previous[signum] = handler
            ours[signum] = _recording(signum, handler)
            signal.signal(signum, ours[signum])
    try:
        yield
    finally:
        for signum, handler in previous.items():
            if signal.getsignal(signum) is ours[signum]:  # not replaced meanwhile by someone else
                signal.signal(signum, handler)
        _pending.clear()


def _recording(signum: int, handler: Callable[..., Any]) -> Callable[..., Any]:
    def record_then_handle(num: int, frame: Any) -> Any:
        _pending.append((signum, handler))
        return handler(num, frame)

    return record_then_handle


def raise_if_signalled() -> None:
    """If a signal came inside :func:`latched` (its exception may have been dropped by a finalizer): its handler
    again, here, once."""
    if _pending:
        signum, handler = _pending[0]
        _pending.clear()
        handler(signum, None)
