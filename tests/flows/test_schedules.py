"""Scheduled runs: `strata serve` starts the data root's Prefect server on loopback, registers the study's
deployment with a short interval and serves it; scheduled runs write to the catalog with their flow-run and
deployment ids in lineage, a later scheduled run computes nothing, and stopping leaves nothing running."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from data_catalog import Catalog
from tests.conftest import REPO, group_alive

pytestmark = pytest.mark.prefect


def test_served_study_runs_on_schedule_and_a_later_run_computes_nothing(tmp_path, stop_root_servers):
    root = tmp_path / "root"
    env = {k: v for k, v in os.environ.items() if k not in ("PREFECT_API_URL", "STRATA_FAULT")}
    env.update({"STRATA_HOME": str(root), "PYTHONUNBUFFERED": "1"})
    cli = [sys.executable, "-m", "pipelines.cli"]
    stop_root_servers(root)
    serve = subprocess.Popen([*cli, "serve", "mad_gaussian", "--preset", "tiny", "--interval", "3"], cwd=REPO,
                             env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    reports = root / "reports"
    try:
        deadline = time.monotonic() + 240
        while len([d for d in reports.glob("*") if (d / "index.html").exists()]) < 2:  # two runs completed
            assert serve.poll() is None, serve.stdout.read().decode()[-3000:]
            assert time.monotonic() < deadline, "no two scheduled runs completed in 240 s"
            time.sleep(1)
        listed = json.loads(subprocess.run([*cli, "schedules", "--json"], cwd=REPO, env=env, capture_output=True,
                                           text=True, check=True, timeout=60).stdout)
    finally:
        serve.send_signal(signal.SIGTERM)
        serve.wait(60)
    assert not group_alive(serve.pid), group_alive(serve.pid)  # the runner and its flow-run processes stopped

    [dep] = [d for d in listed if d["parameters"]["study"] == "mad_gaussian"]
    assert dep["schedules"] == ["every 3 s"] and dep["parameters"]["preset"] == "tiny"
    cat = Catalog(root)
    try:
        recs = cat.list()
        assert recs and {r.kind for r in recs} >= {f"mad_gaussian_{k}" for k in ("real", "generation", "curves")}
        first = {r.flow_run_id for r in recs}
        assert len(first) == 1  # one scheduled run computed everything
        assert {r.to_json().get("deployment_id") for r in recs} == {dep["id"]}
        assert {r.to_json()["flow_run_id"] for r in recs} == first
    finally:
        cat.close()
    runs = [d.name for d in reports.glob("*") if (d / "index.html").exists()]
    later = [r for r in runs if r not in first]
    assert later, runs
    for run in later:  # computed nothing: no step started in its lineage log
        log = (root / "lineage" / f"{run}.ndjson").read_text().splitlines()
        events = [json.loads(line) for line in log if line]
        started = [e for e in events if e["eventType"] == "START" and "." in e["job"]["name"]]
        assert started == [], started
        assert any(e["eventType"] == "COMPLETE" for e in events)
