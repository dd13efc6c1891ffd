"""``strata run --dry-run``: the plan of a run from the catalog alone — every step's key and whether it would be
computed or reused — with nothing started, computed or written."""

from __future__ import annotations

import json

import pytest


def _snapshot(root):
    """Every file under the data root's datasets folder with its size and mtime, and the index's bytes."""
    files = {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns)
             for p in (root / "datasets").rglob("*") if p.is_file()}
    return files, (root / "catalog.db").read_bytes()


def _plan(strata, *sets: str) -> dict:
    args = [a for s in sets for a in ("--set", s)]
    proc = strata("run", "seismic_survey", "--preset", "tiny", "--dry-run", "--json", *args)
    assert "Prefect" not in proc.stderr  # nothing started
    return json.loads(proc.stdout)


@pytest.mark.prefect
def test_dry_run_lists_reused_and_changed_steps_and_writes_nothing(strata, local_run):
    # a run in process on its own root, the CLI's (the index's bytes are compared)
    keys = local_run("seismic_survey", preset="tiny").output_keys
    before = _snapshot(strata.root)

    plan = _plan(strata)
    assert [(s["step"], s["status"]) for s in plan["steps"]] == [
        ("velocity_model", "reuse"), ("geometry", "reuse"), ("survey", "reuse")]
    assert plan["outputs"] == keys  # the same keys as the run's
    assert plan["config"]["geometry"]["n_shots"] == 3 and plan["compute"] == 0

    # a parameter of the survey only: that step alone, all of its shots (the geometry is known)
    plan = _plan(strata, "simulation.noise_snr_db=10")
    status = {s["step"]: s for s in plan["steps"]}
    assert [status[k]["status"] for k in ("velocity_model", "geometry", "survey")] == ["reuse", "reuse", "compute"]
    assert (status["survey"]["pieces"], status["survey"]["missing"]) == (3, 3)

    # a parameter of the geometry: it and what depends on it (its shot count is not known before it runs)
    plan = _plan(strata, "geometry.record_length=0.5")
    status = {s["step"]: s for s in plan["steps"]}
    assert [status[k]["status"] for k in ("velocity_model", "geometry", "survey")] == ["reuse", "compute", "compute"]
    assert status["survey"]["mapped"] and status["survey"]["pieces"] is None
    assert plan["outputs"]["shot_records"] != keys["shot_records"]

    assert _snapshot(strata.root) == before  # nothing written: datasets and index unchanged


@pytest.mark.prefect
def test_dry_run_prints_the_config_and_a_table(tiny_run):
    strata, _ = tiny_run("seismic_survey")
    out = strata("run", "seismic_survey", "--preset", "tiny", "--dry-run").stdout
    assert "dry run: nothing is computed" in out and '"n_shots": 3' in out
    assert "0 of 3 steps to compute" in out and "reuse" in out
