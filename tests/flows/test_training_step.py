"""A training step through the real runtime: the same checkpoint bytes serially and on two workers."""

from __future__ import annotations

import os
import re
import warnings

import pytest

from data_catalog import Catalog
from flows.study import run_study
from tasks.nn.checkpoint import from_dataset

from .training_study import TrainingConfig, training_study


def _run(root, workers):
    """(ref, loaded Trained, pid of the process that trained it)."""
    cat = Catalog(root)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            res = run_study(training_study, TrainingConfig(), catalog=cat, study="training_test", preset=None,
                            overrides=[], workers=workers)
        pids = {int(m[1]) for w in caught if (m := re.fullmatch(r"trained in process (\d+)", str(w.message)))}
        ref = res.outputs["model"]
        assert [s.status for s in res.steps] == ["computed"]
        assert cat.verify(ref.key) == [(ref.key, True, "ok")]
        with cat.open(ref.key, dask=False) as ds:
            trained = from_dataset(ds.load())
        return ref, trained, pids
    finally:
        cat.close()


@pytest.fixture
def environ_kept():
    """The runtime sets Prefect and thread variables in this process: they are put back afterwards."""
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)


@pytest.mark.prefect
def test_a_training_step_writes_the_same_checkpoint_serially_and_on_two_workers(tmp_path, prefect_server,
                                                                                 monkeypatch, environ_kept):
    monkeypatch.setenv("PREFECT_API_URL", prefect_server)
    serial, a, serial_pids = _run(tmp_path / "serial", None)
    parallel, b, worker_pids = _run(tmp_path / "parallel", 2)
    assert serial_pids == {os.getpid()}  # in process …
    assert len(worker_pids) == 1 and os.getpid() not in worker_pids  # … and on a Dask worker (it imported this module)
    assert serial.kind == "checkpoint" and serial.key == parallel.key
    assert serial.fingerprint == parallel.fingerprint
    assert a.history == b.history and len(a.history["validation"]) >= 1
