"""A SIGTERM whose exception a finalizer dropped still stops the run (flows/interrupts.py), and the signal handlers
are left as they are (Prefect checks that its own is installed).

Seen in the SLURM suite under load: SIGTERM reached ``strata run`` while a Dask future's ``__del__`` ran; the
exception of the handler was printed as "Exception ignored in" and the run went on to finish with exit 0."""

from __future__ import annotations

import os
import signal
import sys
from types import SimpleNamespace

import numpy as np
import pytest
import xarray as xr

from data_catalog import Catalog
from flows.interrupts import kept_interrupts, raise_kept_interrupt
from flows.step import Step

pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")


class Terminated(BaseException):
    """What this test's SIGTERM handler raises (as ``strata run``'s raises KeyboardInterrupt)."""


class _SignalsWhenCollected:
    def __del__(self):
        os.kill(os.getpid(), signal.SIGTERM)  # its handler runs here, inside the finalizer: its exception is dropped


class _Raises:
    def __init__(self, exc: BaseException):
        self.exc = exc

    def __del__(self):
        raise self.exc


def _raise(signum, frame):
    raise Terminated(signum)


@pytest.fixture
def sigterm_raises():
    before = signal.signal(signal.SIGTERM, _raise)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, before)


def test_a_signal_a_finalizer_swallowed_is_raised_at_the_next_check(sigterm_raises):
    _SignalsWhenCollected()  # collected at once: the signal's exception is lost …
    raise_kept_interrupt()  # … and nothing kept it outside kept_interrupts()
    hook = sys.unraisablehook
    with kept_interrupts():
        assert signal.getsignal(signal.SIGTERM) is _raise  # the handler in place is not wrapped
        _SignalsWhenCollected()
        with pytest.raises(Terminated):
            raise_kept_interrupt()
        raise_kept_interrupt()  # once
        _Raises(ValueError("an ordinary error"))  # a finalizer's own error is not an interrupt
        raise_kept_interrupt()
    assert sys.unraisablehook is hook


def _pieces(*, items: np.ndarray, seen: list) -> xr.Dataset:
    seen.extend(items.tolist())
    if items[0] == 1:
        _SignalsWhenCollected()
    return xr.Dataset({"v": (("item",), items.astype(float))}, coords={"item": items})


def test_a_run_stops_at_the_next_piece_when_the_signals_exception_was_dropped(tmp_path, sigterm_raises):
    from flows.study import run_local

    seen: list[int] = []
    step = Step("pieces_then_signal", _pieces, version="1", kind="interrupt_test", map_over="item",
                coord_param="items")
    cat = Catalog(tmp_path / "root")
    try:
        with pytest.raises(Terminated):
            run_local(SimpleNamespace(body=lambda cfg: {"out": step(pieces=SimpleNamespace(per_piece=1, per_task=1),
                                                                    items=np.arange(5), seen=seen)}),
                      None, cat, study="interrupt_test")
        assert seen == [0, 1]  # the piece after the signal did not start
        assert cat.list() == []  # nothing complete
    finally:
        cat.close()


def _square(batch: list[int]) -> list[int]:
    return [i * i for i in batch]


def test_a_dask_run_stops_waiting_when_the_signals_exception_was_dropped(sigterm_raises):
    """The wait for a step's Dask tasks: a finalizer in this process (here, in the callback of a finished piece)
    drops the signal's exception; the wait raises it and cancels the tasks not done."""
    from distributed import LocalCluster

    from flows.executors import DaskExecutor

    done: list[list[int]] = []

    def on_done(batch, result):
        done.append(batch)
        if len(done) == 1:
            _SignalsWhenCollected()

    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None) as cluster:
        ex = DaskExecutor(cluster.scheduler_address)
        try:
            with kept_interrupts(), pytest.raises(Terminated):
                ex.map(_square, list(range(50)), name="squares", per_task=1, on_done=on_done)
            assert 1 <= len(done) < 50
        finally:
            ex.close()
