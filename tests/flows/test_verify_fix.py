"""A corrupt dataset of a finished study: `strata catalog verify` exits 1 naming it and its variable;
`verify --fix` then makes the next run recompute exactly that dataset, with the fingerprint it had; what
depends on it keeps its key and is reused. The runs are in process (:func:`flows.study.run_local`); verify is the
CLI's."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import fingerprints


def test_verify_fix_then_rerun_recomputes_exactly_the_corrupt_dataset(strata_offline, local_run):
    strata = strata_offline
    keys = local_run("seismic_survey", preset="tiny").output_keys
    before = fingerprints(strata.root, keys.values())
    vel = keys["velocity_model"]
    uri = json.loads(strata("catalog", "show", vel, "--json").stdout)["uri"]
    chunk = next(p for p in sorted(Path(uri, "vp").rglob("*")) if p.is_file() and p.name != "zarr.json")
    data = bytearray(chunk.read_bytes())
    data[len(data) // 2] ^= 0xFF
    chunk.write_bytes(bytes(data))

    proc = strata("catalog", "verify", check=False)
    assert proc.returncode == 1
    assert f"CORRUPT velocity_model {vel}" in proc.stdout and "vp" in proc.stdout
    assert proc.stderr.strip().splitlines()[-1].startswith("error: 1 dataset(s) failed verification")
    assert strata("catalog", "verify", "--fix", check=False).returncode == 1  # it reports, then fixes
    assert strata("catalog", "verify").returncode == 0  # what is left is sound

    again = local_run("seismic_survey", preset="tiny")
    assert again.output_keys == keys
    assert again.computed == [vel]  # exactly the corrupt one
    assert fingerprints(strata.root, keys.values()) == before
