"""``Step(isolated=True)``: the whole step runs in a child interpreter; its warnings and errors come back."""

from __future__ import annotations

import os
import signal
import warnings

import numpy as np
import pytest
import xarray as xr

from data_catalog import Catalog
from flows.isolated import compute_isolated
from flows.pieces import PieceSpec
from flows.step import Step
from strata_errors import InputError, RunError


def where_am_i(*, value: float) -> xr.Dataset:
    warnings.warn("computed elsewhere", UserWarning, stacklevel=1)
    return xr.Dataset({"pid": ((), os.getpid()), "value": (("i",), np.full(3, value))})


def refuses(*, value: float) -> xr.Dataset:
    raise InputError(f"value {value} is not allowed")


def dies(*, value: float) -> xr.Dataset:
    os._exit(3)


def killed(*, value: float) -> xr.Dataset:
    os.kill(os.getpid(), signal.SIGKILL)


class Unpicklable(Exception):
    def __init__(self, message):
        super().__init__(message)
        self.callback = lambda: None  # a lambda does not pickle


def odd_error(*, value: float) -> xr.Dataset:
    raise Unpicklable(f"{value} and b")


def _spec(tmp_path, fn, name="isolated_test"):
    cat = Catalog(tmp_path / "root")
    storage = cat.storage
    lineage = {"key": "k" * 20, "kind": "test", "step": name, "version": "1"}
    return cat, PieceSpec(name, fn, {"value": 1.5}, (), storage, storage.uri("test", "k" * 20), lineage)


def test_an_isolated_step_runs_in_another_process_and_writes_its_dataset(tmp_path):
    cat, spec = _spec(tmp_path, where_am_i)
    warned = compute_isolated(spec)
    assert warned == [(UserWarning, "computed elsewhere")]
    ds = cat.storage.open(spec.uri, dask=False).load()
    assert int(ds.pid) != os.getpid() and ds.value.values.tolist() == [1.5] * 3
    cat.close()


def test_errors_of_the_child_come_back_with_their_type_and_a_dead_child_is_named(tmp_path):
    _, spec = _spec(tmp_path, refuses)
    with pytest.raises(InputError, match="value 1.5 is not allowed") as info:
        compute_isolated(spec)
    assert info.value.exit_code == 2
    _, spec = _spec(tmp_path, dies, name="dying")
    with pytest.raises(RunError, match="step dying: its process exited with status 3"):
        compute_isolated(spec)


def test_a_child_killed_by_a_signal_and_an_exception_that_does_not_pickle_are_named(tmp_path):
    _, spec = _spec(tmp_path, killed, name="killed")
    with pytest.raises(RunError, match="step killed: its process was killed by SIGKILL"):
        compute_isolated(spec)
    _, spec = _spec(tmp_path, odd_error, name="odd")
    with pytest.raises(RunError, match="Unpicklable: 1.5 and b"):
        compute_isolated(spec)


def test_only_a_whole_step_can_be_isolated():
    with pytest.raises(TypeError, match="only a whole"):
        Step("x", where_am_i, version="1", kind="test", map_over="i", isolated=True)
