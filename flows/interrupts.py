"""An interrupt that reaches a run is never lost.

Python runs a signal's handler in the main thread, between two bytecodes of whatever runs there. When that is a
finalizer (an object's ``__del__``, a weakref callback: a Dask future released, an HTTP session closed), the
exception the handler raises — ``KeyboardInterrupt`` of SIGINT, ``strata run``'s SIGTERM, Prefect's
``TerminationSignal`` while a flow runs — cannot propagate: Python hands it to :func:`sys.unraisablehook` ("Exception
ignored in …") and the run goes on as if no signal had come (seen: SIGTERM sent to a SLURM run that then finished
and exited 0).

:func:`kept_interrupts` wraps the unraisable hook for the duration of a run: an interrupt (an exception that is not
an :class:`Exception`, such as those above) dropped there is kept, and :func:`raise_kept_interrupt`, called where a
run waits or moves on (before each step, between pieces, while Dask tasks are awaited), raises it from ordinary
code. The signal handlers themselves are not touched (Prefect checks that its own is the one installed).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["kept_interrupts", "raise_kept_interrupt"]

_kept: list[BaseException] = []


@contextmanager
def kept_interrupts() -> Iterator[None]:
    """Keep each interrupt a finalizer drops inside the block (it is still reported as before)."""
    previous = sys.unraisablehook

    def keep(unraisable: Any) -> None:
        exc = unraisable.exc_value
        if exc is not None and not isinstance(exc, (Exception, GeneratorExit)):
            _kept.append(exc)
        previous(unraisable)

    sys.unraisablehook = keep
    try:
        yield
    finally:
        if sys.unraisablehook is keep:  # not replaced meanwhile by someone else
            sys.unraisablehook = previous
        _kept.clear()


def raise_kept_interrupt() -> None:
    """Raise the first interrupt a finalizer dropped inside :func:`kept_interrupts`, once."""
    if _kept:
        exc = _kept[0]
        _kept.clear()
        raise exc
