"""How a mapped step's chunks are grouped into tasks and fed their inputs (plain functions)."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from data_catalog import Storage
from flows import steps
from flows.steps import TASK_SECONDS, _dispatch, _select, compute_pieces, tasks_of
from strata_errors import RunError


def test_auto_tasks_last_about_a_second_and_keep_every_slot_busy():
    todo = list(range(1, 16))
    # 0.2 s pieces on one worker thread: five to a task (1 s), not one (the cluster's cost per
    # task would be paid 15 times) nor all fifteen
    assert tasks_of(todo, "auto", 1, 0.2) == [todo[0:5], todo[5:10], todo[10:15]]
    assert [len(t) for t in tasks_of(todo, "auto", 1, 0.2 * TASK_SECONDS)] == [5, 5, 5]
    # long pieces: one each
    assert tasks_of(todo, "auto", 1, 30.0) == [[i] for i in todo]
    # many slots: at least two tasks per slot, whatever the piece time
    assert all(len(t) <= 2 for t in tasks_of(list(range(40)), "auto", 10, 0.001))
    assert len(tasks_of(list(range(40)), "auto", 10, 0.001)) == 20
    # time unknown (a resumed dataset): two tasks per slot
    assert [len(t) for t in tasks_of(todo, "auto", 2, None)] == [4, 4, 4, 3]
    # no cluster: one chunk each (the size changes nothing but the progress shown)
    assert tasks_of(todo, "auto", 0, 0.01) == [[i] for i in todo]
    # a number is taken as it is; every chunk exactly once, in order
    assert tasks_of(todo, 4, 1, 0.2) == [todo[0:4], todo[4:8], todo[8:12], todo[12:15]]
    assert tasks_of([], "auto", 1, 0.2) == []
    for k in ("auto", 1, 7):
        assert sum(tasks_of(todo, k, 3, 0.05), []) == todo


def test_select_is_sel_with_its_own_attrs():
    ds = xr.Dataset({"a": (("shot", "x"), np.arange(12.0).reshape(4, 3), {"u": 1})},
                    coords={"shot": [10, 11, 12, 13]}, attrs={"k": 1})
    ref = ds.copy(deep=True)
    for part in ([12], [13, 10]):
        out = _select(ds, "shot", np.array(part))
        xr.testing.assert_identical(out, ref.sel(shot=part))
        out.attrs["k"] = 2
        out["a"].attrs["u"] = 5
        xr.testing.assert_identical(ds, ref)  # the shared input is untouched
    with pytest.raises(KeyError):
        _select(ds, "shot", np.array([99]))


def test_a_retried_task_skips_the_chunks_it_wrote(tmp_path, monkeypatch):
    """compute_pieces redoes only the chunks without a marker (a retry after a failure mid-task)."""
    storage = Storage(tmp_path / "root")
    uri = storage.uri("t", "retry")
    ds = xr.Dataset({"v": (("shot",), np.arange(4.0))}, coords={"shot": np.arange(4)})
    storage.create_template(uri, ds.isel(shot=[0]), "shot", ds.shot.values, 1)
    storage.write_region(uri, 1, ds.isel(shot=[1]), "shot", 1)
    done = []
    monkeypatch.setattr(steps, "compute_piece", lambda spec, i, make: done.append((i, make)))
    spec = {"root": storage.root, "storage_options": {}, "uri": uri}
    assert compute_pieces(spec, [1, 2, 3], False) == [1, 2, 3]
    assert done == [(2, False), (3, False)]
    done.clear()
    compute_pieces(spec, [0, 1], True)  # the piece that lays out the dataset always runs
    assert done == [(0, True)]


def test_a_task_without_its_layout_stops_before_any_work(tmp_path, monkeypatch):
    """A chunk queued behind the one that lays out the dataset, when that one failed: one clear
    error, and its function never called."""
    storage = Storage(tmp_path / "root")
    called = []
    monkeypatch.setattr(steps, "compute_piece", lambda spec, i, make: called.append(i))
    spec = {"root": storage.root, "storage_options": {}, "uri": storage.uri("t", "none"), "step": "survey"}
    with pytest.raises(RunError, match="not laid out"):
        compute_pieces(spec, [1, 2], False, after_layout=True)
    assert called == []


def test_dispatch_runs_the_calls_that_done_adds(monkeypatch):
    """Without a cluster: in order, the added ones numbered after those before them; a failure
    is kept with its number and stops nothing."""
    monkeypatch.setattr(steps, "_dask_client", lambda: None)
    ran, finished = [], []

    def fn(x):
        ran.append(x)
        if x == "b":
            raise ValueError("b failed")

    def done(i):
        finished.append(i)
        return [("c",), ("d",)] if i == 0 else None

    failures = _dispatch(fn, [("a",), ("b",)], "t", 0, done)
    assert ran == ["a", "b", "c", "d"]
    assert finished == [0, 2, 3]
    assert [(i, str(e)) for i, e in failures] == [(1, "b failed")]
