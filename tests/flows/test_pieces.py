"""How a mapped step's pieces are grouped into tasks, fed their inputs and run (plain functions)."""

from __future__ import annotations

import warnings
from functools import partial

import numpy as np
import pytest
import xarray as xr

from data_catalog import RegionWriter, Storage
from flows import pieces
from flows.executors import TASK_SECONDS, InProcess, tasks_of
from flows.pieces import PieceSpec, compute_pieces, select_piece
from strata_errors import InputError, RunError


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
    for bad in (0, -1, True, "fast", 1.5):
        with pytest.raises(InputError, match="per_task"):
            tasks_of(todo, bad, 1, 0.2)


def test_select_piece_is_sel_with_its_own_attrs():
    ds = xr.Dataset({"a": (("shot", "x"), np.arange(12.0).reshape(4, 3), {"u": 1})},
                    coords={"shot": [10, 11, 12, 13]}, attrs={"k": 1})
    ref = ds.copy(deep=True)
    for part in ([12], [13, 10]):
        out = select_piece(ds, "shot", np.array(part))
        xr.testing.assert_identical(out, ref.sel(shot=part))
        out.attrs["k"] = 2
        xr.testing.assert_identical(ds, ref)  # the shared input is untouched
    with pytest.raises(KeyError):
        select_piece(ds, "shot", np.array([99]))


def _spec(tmp_path, fn, n=4) -> PieceSpec:
    storage = Storage(tmp_path / "root")
    uri = storage.uri("t", "k")
    writer = RegionWriter(storage, uri, "shot", np.arange(n), 1)
    return PieceSpec("s", fn, {}, (), storage, uri, writer=writer, coord_param="shots")


def _piece(shots):
    warnings.warn(f"careful with {len(shots)} shot(s)", UserWarning, stacklevel=1)
    return xr.Dataset({"v": (("shot",), np.asarray(shots, dtype="f4") * 2)}, coords={"shot": shots})


def test_a_retried_task_skips_the_regions_it_wrote(tmp_path, monkeypatch):
    """compute_pieces redoes only the regions without a marker (a retry after a failure mid-task)."""
    spec = _spec(tmp_path, _piece)
    compute_pieces(spec, [1])  # any piece may come first: it lays the dataset out
    compute_pieces(spec, [0])
    done = []
    monkeypatch.setattr(pieces, "compute_piece", lambda spec, i, kept: done.append(i))
    compute_pieces(spec, [1, 2, 3])
    assert done == [2, 3]


def test_pieces_computed_at_once_lay_the_dataset_out_once(tmp_path):
    """Pieces of one dataset computed at the same time: one claims the layout, the others wait for it and
    write; every region lands (a second layout would have wiped the regions written before it)."""
    from concurrent.futures import ThreadPoolExecutor

    spec = _spec(tmp_path, _piece, n=8)
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda i: compute_pieces(spec, [i]), range(8)))
    assert spec.writer.missing() == []
    with spec.storage.open(spec.uri, dask=False) as ds:
        assert ds.v.values.tolist() == [2.0 * i for i in range(8)]


def test_pieces_that_disagree_outside_the_mapped_dim_fail(tmp_path):
    """The layout comes from whichever piece is first: a piece whose attrs differ from it is refused
    (its result would depend on which piece won), naming the step and the piece."""
    def attrs_per_piece(shots):
        return _piece(shots).assign_attrs(first_shot=int(shots[0]))

    spec = _spec(tmp_path, attrs_per_piece)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        compute_pieces(spec, [2])
        with pytest.raises(RunError, match=r"step s piece 1: its attrs.*differ"):
            compute_pieces(spec, [1])


def test_a_layout_left_unfinished_by_a_dead_run_is_cleared(tmp_path):
    spec = _spec(tmp_path, _piece)
    assert spec.storage.claim_layout(spec.uri) and not spec.storage.claim_layout(spec.uri)
    spec.writer.reset()  # the claimant died before the template marker: nothing of it counts
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        compute_pieces(spec, [0])
    spec.writer.reset()  # laid out: kept, with its region
    assert spec.writer.missing() == [1, 2, 3]


def test_pieces_write_through_the_region_writer_and_return_their_warnings_once(tmp_path):
    spec = _spec(tmp_path, _piece)
    with warnings.catch_warnings(record=True) as leaked:
        warnings.simplefilter("always")
        kept = compute_pieces(spec, [0]) + compute_pieces(spec, [1, 2, 3])
    assert [str(w.message) for w in leaked if "careful" in str(w.message)] == []  # they come back instead
    assert kept == [(UserWarning, "careful with 1 shot(s)")] * 2  # once per task
    assert spec.writer.missing() == []
    with spec.storage.open(spec.uri, dask=False) as ds:
        assert ds.v.values.tolist() == [0.0, 2.0, 4.0, 6.0]


def test_in_process_executor_keeps_going_after_a_failure_and_retries():
    ran, finished, tries = [], [], {}

    def fn(batch):
        ran.append(batch)
        tries[batch[0]] = tries.get(batch[0], 0) + 1
        if batch == [1] or (batch == [2] and tries[2] == 1):
            raise ValueError(f"{batch} failed")
        return batch[0] * 10

    failures = InProcess().map(fn, [0, 1, 2, 3], name="t", retries=1,
                               on_done=lambda batch, result: finished.append((batch, result)))
    assert [(b, str(e)) for b, e in failures] == [([1], "[1] failed")]
    assert finished == [([0], 0), ([2], 20), ([3], 30)]
    assert tries == {0: 1, 1: 2, 2: 2, 3: 1}
    assert InProcess().call(partial(sum, [1, 2]), name="c") == 3
