"""Worker and server faults (issue 17, part 1), each injected with ``STRATA_FAULT=<step>:<piece>:<action>``
(flows/faults.py) or by the test, and each compared afterwards with the serial reference run of the study's tiny
preset (``tiny_run``): the same output keys and fingerprints, nothing incomplete visible, finished work kept.

- a Dask worker SIGKILLed while it writes a piece (``killworker``, once): the run succeeds, Dask reruns the piece;
- the root's Prefect server SIGKILLed while a step computes: the run keeps going (its server is started again on
  the same port);
- the disk filling up while a piece and a whole step write (``enospc``, in process): one error naming the dataset,
  the rerun resumes.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from data_catalog import Catalog

from ..conftest import REPO, Strata, fingerprints, region_markers

pytestmark = pytest.mark.prefect
TINY = ["mad_gaussian", "--preset", "tiny"]  # real_samples, 3 loops x 3 generations, curves; 4 pieces per mapped step


@pytest.fixture
def reference(tiny_run):
    """(root, outputs) of the session's serial tiny run of mad_gaussian."""
    ref, proc = tiny_run("mad_gaussian")
    return ref.root, json.loads(proc.stdout)["outputs"]


def _same_as_reference(root: Path, outputs: dict, reference) -> None:
    ref_root, ref_outputs = reference
    assert outputs == ref_outputs
    assert fingerprints(root, outputs.values()) == fingerprints(ref_root, ref_outputs.values())


def _nothing_incomplete_visible(root: Path) -> set[str]:
    """The root verifies (what ``strata catalog verify`` checks) and every listed dataset is complete in storage;
    the listed keys."""
    cat = Catalog(root)
    try:
        assert all(ok for _, ok, _ in cat.verify())
        recs = cat.list()
        assert all(cat.storage.is_complete(r.uri) for r in recs)
        return {r.key for r in recs}
    finally:
        cat.close()


def test_a_dask_worker_killed_mid_piece_is_replaced_and_its_piece_rerun(reference, tmp_path, prefect_server):
    """``real_samples:3:killworker`` SIGKILLs the worker process (alone) writing piece 3, right after its first chunk
    is stored: the nanny starts another worker and the scheduler runs the task again (distributed's allowed-failures,
    3 by default). Pieces 0 and 1 (the first wave, finished before piece 3 was submitted) keep their markers."""
    s = Strata(tmp_path / "root", prefect_server)
    state = tmp_path / "fault-state"
    state.mkdir()
    s.env["STRATA_FAULT_STATE"] = str(state)
    out = s.json("run", *TINY, "--workers", "2", fault="real_samples:3:killworker")
    killed = state / "real_samples-3"
    assert killed.exists()  # the fault fired (once: the rerun of the piece found the file and went through)
    t_kill = killed.stat().st_mtime_ns
    markers = {int(Path(p).name): t for p, t in region_markers(s.root, "mad_gaussian_real").items()}
    assert sorted(markers) == [0, 1, 2, 3]
    assert markers[0] < t_kill and markers[1] < t_kill  # written before the kill, and not rewritten since
    assert markers[3] > t_kill  # the killed piece, written again elsewhere
    _same_as_reference(s.root, out["outputs"], reference)
    _nothing_incomplete_visible(s.root)


def test_the_prefect_server_killed_mid_run(reference, tmp_path, stop_root_servers):
    """The root's own server (no PREFECT_API_URL) SIGKILLed once the first generation step computes: the run
    starts another server on the same port and finishes; nothing incomplete is visible, and the rerun computes
    nothing, ending with the reference's fingerprints."""
    s = Strata(tmp_path / "root", None)
    s.env.pop("PREFECT_API_URL", None)
    s.env.pop("STRATA_EPHEMERAL", None)
    stop_root_servers(s.root)
    proc = subprocess.Popen([sys.executable, "-m", "pipelines.cli", "run", *TINY, "--json"], env=s.env, cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 180
        while not list((s.root / "datasets").glob("mad_gaussian_generation/*.zarr")):
            assert proc.poll() is None and time.monotonic() < deadline, "the run ended before its server was killed"
            time.sleep(0.02)
        info = json.loads((s.root / "prefect" / "server.json").read_text())
        os.killpg(info["pid"], signal.SIGKILL)  # its whole session: `prefect server start` and what it spawned
        out, err = proc.communicate(timeout=240)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 0, err[-3000:]  # it went on (before the watch, it hung for minutes)
    assert f"(pid {info['pid']}) died during the run; started another at {info['url']}" in err
    assert "Traceback" not in err
    _nothing_incomplete_visible(s.root)
    again = s.json("run", *TINY)
    assert again["computed"] == [] and json.loads(out)["outputs"] == again["outputs"]
    _same_as_reference(s.root, again["outputs"], reference)


def test_a_full_disk_leaves_nothing_incomplete_visible(reference, local_run, tmp_path, monkeypatch):
    """``enospc``: the store raises OSError(ENOSPC) right after the first chunk of the write is stored — in piece 2
    of the first generation step (mapped), then in the curves step (whole). Each run fails with the error saying
    the disk is full and naming the dataset (``strata run`` prints it as its one ``error:`` line, exit 1), verify
    clean; the next run resumes (markers kept) and the last one, with space, computes only curves and ends with the
    reference's fingerprints. In process (:func:`flows.study.run_local`): the store is this process's."""
    from strata_errors import RunError

    root = tmp_path / "root"
    monkeypatch.setenv("STRATA_FAULT_STATE", str(tmp_path))
    monkeypatch.setenv("STRATA_FAULT", "generation:2:enospc")
    with pytest.raises(RunError) as failed:
        local_run("mad_gaussian", preset="tiny")
    line = str(failed.value)
    assert line.startswith("step generation: 1 of 4 pieces not written (first: chains 20–29, piece 2: "
                           f"disk full writing {root.resolve()}/datasets/mad_gaussian_generation/"), line
    assert "No space left on device" in line
    _nothing_incomplete_visible(root)
    before = region_markers(root, "mad_gaussian_generation")
    assert len(before) == 3  # pieces 0, 1 and 3 of that step

    monkeypatch.setenv("STRATA_FAULT", "curves:0:enospc")
    with pytest.raises(RunError) as failed:
        local_run("mad_gaussian", preset="tiny")
    line = str(failed.value)
    assert line.startswith(f"step curves: disk full writing {root.resolve()}/datasets/mad_gaussian_curves/"), line
    kept = _nothing_incomplete_visible(root)
    after = region_markers(root, "mad_gaussian_generation")
    assert all(after[k] == v for k, v in before.items())  # the resumed step kept its finished pieces
    assert len(after) == 9 * 4

    monkeypatch.delenv("STRATA_FAULT")
    run = local_run("mad_gaussian", preset="tiny")
    outputs = run.output_keys
    # the failed step, then the claims measured on it (the run stopped before them)
    assert run.computed == [outputs["curves"], outputs["claims"]]
    assert outputs["curves"] not in kept
    _same_as_reference(root, outputs, reference)
    _nothing_incomplete_visible(root)
