"""Two `strata run` processes on one data root at once: both succeed, the catalog stays consistent (every
record complete, `catalog verify` clean, no key twice), each shared step is computed by one of them only,
and neither meets "database is locked"."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys

import pytest

from ..conftest import REPO

pytestmark = pytest.mark.prefect


# seismic_survey's tiny preset set up as seismic_imaging's survey: the true model, geometry and shot records are
# then the same three datasets (same keys) in both studies
AS_IMAGING = ["--set", "model.velocities=[1500.0, 2000.0, 2600.0]", "--set", "model.perturbation=null",
              "--set", "geometry.f0=12.0", "--set", "simulation.noise_snr_db=null"]


def _run_both(strata, *runs: list[str]) -> list[dict]:
    """Start ``strata run STUDY --preset tiny [--set …] --json`` for both runs at once; their JSON documents."""
    procs = [subprocess.Popen([sys.executable, "-m", "pipelines.cli", "run", *run, "--preset", "tiny", "--json"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=strata.env, cwd=REPO,
                              start_new_session=True)
             for run in runs]
    outs = [p.communicate(timeout=300) for p in procs]
    for run, p, (_, err) in zip(runs, procs, outs, strict=True):
        assert p.returncode == 0, f"strata run {run[0]} exited {p.returncode}:\n{err[-3000:]}"
        assert "database is locked" not in err, err[-3000:]
    return [json.loads(out) for out, _ in outs]


def _check_catalog(strata, docs: list[dict]) -> None:
    computed = [k for d in docs for k in d["computed"]]
    assert len(computed) == len(set(computed)), "a dataset was computed by both runs"
    used = {k for d in docs for k in d["computed"] + d["reused"]}
    with sqlite3.connect(strata.root / "catalog.db") as db:
        rows = db.execute("SELECT key, complete, claimed_by FROM datasets").fetchall()
        runs = dict(db.execute("SELECT flow_run_id, status FROM runs").fetchall())
    assert runs == {d["flow_run_id"]: "COMPLETE" for d in docs}
    keys = [r[0] for r in rows]
    assert len(keys) == len(set(keys))
    assert all(complete == 1 and owner is None for _, complete, owner in rows), rows  # nothing left claimed
    assert set(keys) == used  # every dataset either run used is indexed, nothing else is
    assert set(computed) == used  # each was computed by exactly one of the two runs
    on_disk = sorted(p.name.removesuffix(".zarr") for p in (strata.root / "datasets").glob("*/*.zarr"))
    assert on_disk == sorted(keys)
    verify = strata("catalog", "verify", check=False)
    assert verify.returncode == 0 and "corrupt" not in verify.stdout.lower(), verify.stdout + verify.stderr


def test_the_same_study_twice_at_once(strata):
    docs = _run_both(strata, ["seismic_survey"], ["seismic_survey"])
    assert docs[0]["outputs"] == docs[1]["outputs"]
    assert sorted(docs[0]["computed"] + docs[0]["reused"]) == sorted(docs[1]["computed"] + docs[1]["reused"])
    _check_catalog(strata, docs)


def test_two_studies_sharing_steps_at_once(strata):
    survey, imaging = _run_both(strata, ["seismic_survey", *AS_IMAGING], ["seismic_imaging"])
    shared = set(survey["computed"] + survey["reused"]) & set(imaging["computed"] + imaging["reused"])
    assert len(shared) == 3  # the true model, its geometry and the shot records
    _check_catalog(strata, [survey, imaging])
