"""A data root on S3 (moto's server on loopback, started by the test session): seismic_survey end to end with
the same keys and fingerprints as on a local root; `strata catalog` works on it, also from a second host's
empty cache; nothing under the root names the endpoint or the credentials."""

from __future__ import annotations

import json
import os

import pytest

from data_catalog import Catalog
from data_catalog.lease import LEASE_PATH

from ..conftest import S3_KEY_ID, S3_SECRET, Strata, fingerprints

pytestmark = pytest.mark.prefect


def test_tiny_survey_on_s3_is_the_survey_on_a_local_root(tmp_path, s3_root, tiny_run, prefect_server, monkeypatch):
    local, proc = tiny_run("seismic_survey")
    ref = json.loads(proc.stdout)
    s3 = Strata(tmp_path / "unused", prefect_server)
    s3.env.update(STRATA_CACHE_DIR=str(tmp_path / "cache"))
    out = s3.json("run", "seismic_survey", "--preset", "tiny", "--root", s3_root)
    assert out["outputs"] == ref["outputs"] and sorted(out["computed"]) == sorted(ref["computed"])

    monkeypatch.setenv("STRATA_CACHE_DIR", str(tmp_path / "cache"))
    cat = Catalog(s3_root)
    try:
        assert {k: cat.get(k).fingerprint for k in out["computed"]} == fingerprints(local.root, ref["computed"])
        fs = cat.storage.fs
        assert not fs.exists(cat.storage.path(f"{s3_root}/{LEASE_PATH}"))  # released at the end of the run
        stored = b"".join(fs.cat_file(p) for p in fs.find(cat.storage.path(s3_root)))
        events = b"".join(p.read_bytes() for p in cat.lineage_dir.glob("*.ndjson"))
        endpoint = os.environ["AWS_ENDPOINT_URL"].split("//")[1]
        for where, text in (("the root", stored), ("the event log", events)):
            leaked = [w for w in (S3_KEY_ID, S3_SECRET, endpoint) if w.encode() in text]
            assert not leaked, f"{where} holds {leaked}"
    finally:
        cat.close()

    listed = s3.json("catalog", "list", "--root", s3_root)
    assert {r["key"] for r in listed} == set(out["computed"])
    assert all(r["uri"].startswith(f"{s3_root}/datasets/") for r in listed)
    assert s3("catalog", "verify", "--root", s3_root).returncode == 0
    # another host: an empty cache of its own; the index is rebuilt from the root's zarr attrs
    s3.env["STRATA_CACHE_DIR"] = str(tmp_path / "cache-other-host")
    assert s3.json("catalog", "list", "--root", s3_root) == []
    s3("catalog", "reindex", "--root", s3_root)
    assert {r["key"] for r in s3.json("catalog", "list", "--root", s3_root)} == set(out["computed"])
    lineage = s3.json("catalog", "lineage", out["outputs"]["shot_records"], "--root", s3_root)
    assert {n["key"] for n in lineage["nodes"]} == set(out["computed"])


def test_a_run_from_a_second_host_fails_with_one_line_while_the_lease_is_held(tmp_path, s3_root, prefect_server,
                                                                               monkeypatch):
    monkeypatch.setenv("STRATA_CACHE_DIR", str(tmp_path / "cache-a"))
    holder = Catalog(s3_root, host="host-a")
    holder.index.put_run("run-of-host-a", study="seismic_survey", status="RUNNING")  # an index write: the lease
    try:
        s3 = Strata(tmp_path / "unused", prefect_server)
        s3.env.update(STRATA_CACHE_DIR=str(tmp_path / "cache-b"), STRATA_LEASE_WAIT="1")
        proc = s3("run", "seismic_survey", "--preset", "tiny", "--root", s3_root, check=False)
    finally:
        holder.close()
    assert proc.returncode == 1, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert errors == [f"error: data root {s3_root} is in use by run run-of-host-a on host-a (pid {os.getpid()}), "
                      f"lease {s3_root}/{LEASE_PATH} renewed until {errors[0].split('renewed until ')[1]}"], proc.stderr
    assert "waiting up to 1 s" in proc.stderr
