"""A run on an existing Dask cluster: a `dask scheduler` and two `dask worker` processes on loopback, reached
with --dask-address (and with a cluster file of kind address): the same keys and fingerprints as the serial run,
the pieces computed on those workers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import Strata, fingerprints

pytestmark = pytest.mark.prefect
DASK = str(Path(sys.executable).with_name("dask"))


@pytest.fixture
def dask_cluster(tmp_path):
    """A scheduler and two single-threaded workers, each its own process, on loopback."""
    from distributed import Client

    sched_file = tmp_path / "scheduler.json"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    procs = [subprocess.Popen([DASK, "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                               "--scheduler-file", str(sched_file)], env=env, stderr=subprocess.DEVNULL)]
    deadline = time.monotonic() + 60
    while not sched_file.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    for _ in range(2):
        procs.append(subprocess.Popen([DASK, "worker", "--scheduler-file", str(sched_file), "--nthreads", "1",
                                       "--no-dashboard", "--host", "127.0.0.1"], env=env, stderr=subprocess.DEVNULL))
    address = json.loads(sched_file.read_text())["address"]
    client = Client(address, set_as_default=False)
    try:
        client.wait_for_workers(2, timeout=60)
        yield address, client
    finally:
        client.close()
        for p in reversed(procs):
            p.terminate()
        for p in procs:
            p.wait(timeout=30)


def test_survey_through_dask_address_matches_the_serial_run(tiny_run, dask_cluster, tmp_path, prefect_server):
    from distributed import get_task_stream

    address, client = dask_cluster
    ref, proc = tiny_run("seismic_survey")
    ref_out = json.loads(proc.stdout)["outputs"]
    strata = Strata(tmp_path / "root", prefect_server)
    with get_task_stream(client) as stream:
        out = strata.json("run", "seismic_survey", "--preset", "tiny", "--dask-address", address)["outputs"]
    assert out == ref_out
    assert fingerprints(strata.root, out.values()) == fingerprints(ref.root, ref_out.values())
    ran = {t["key"] if isinstance(t["key"], str) else t["key"][0] for t in stream.data}
    assert any(k.startswith("survey-") for k in ran), ran  # the shots ran on the cluster's workers
    assert len({t["worker"] for t in stream.data}) == 2  # both workers took pieces

    # the same cluster from a cluster file (kind address): everything reused
    f = tmp_path / "cluster.yaml"
    f.write_text(f"cluster:\n  kind: address\n  address: {address}\n")
    again = strata.json("run", "seismic_survey", "--preset", "tiny", "--cluster", str(f))
    assert again["outputs"] == ref_out and again["computed"] == []
