"""The science of a study run in memory (flows.direct, the reference of the orchestration-overhead benchmark)
gives datasets with the same fingerprints as the orchestrated run: orchestration does not touch the science."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from data_catalog import Catalog
from tests.conftest import REPO

pytestmark = pytest.mark.prefect

# in a fresh process: Devito's bits in a process where torch ran multi-threaded are not reproducible
# (see tests/conftest.py)
DIRECT = """
import json
from data_catalog import fingerprint, prepare
from flows.direct import run_direct
from pipelines.config import load_study
from pipelines.registry import load_flow, models
loaded = load_study("seismic_survey", "tiny", [], models())
outputs, seconds = run_direct(load_flow("seismic_survey"), loaded.config)
print(json.dumps({"fingerprints": {k: fingerprint(prepare(v)) for k, v in outputs.items()}, "seconds": seconds}))
"""


def test_in_memory_run_has_the_orchestrated_runs_fingerprints(tiny_run):
    strata, proc = tiny_run("seismic_survey")
    keys = json.loads(proc.stdout)["outputs"]
    out = subprocess.run([sys.executable, "-c", DIRECT], cwd=REPO, capture_output=True, text=True, check=True,
                         env={**strata.env, "DEVITO_LANGUAGE": "openmp"}, timeout=300)
    doc = json.loads(out.stdout.strip().splitlines()[-1])
    assert set(doc["fingerprints"]) == set(keys) and doc["seconds"]["survey"] > 0
    cat = Catalog(strata.root)
    try:
        assert doc["fingerprints"] == {name: cat.get(key).fingerprint for name, key in keys.items()}
    finally:
        cat.close()
