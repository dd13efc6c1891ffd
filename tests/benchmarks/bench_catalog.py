"""Catalog benchmarks (run by hand: `make bench`); prints figures, asserts nothing.

(a) catalog write of a 100 MB dataset (fingerprint + lineage + index included) vs plain
    ``xarray.to_zarr`` of the same data with the same (default zarr v3) compressor;
(b) the fixed cost of one already-computed step inside a run, in ms;
(c) `strata run mad_gaussian --json` twice on one root: each run's time split into Prefect
    start-up and the rest.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import xarray as xr

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from data_catalog import Catalog, make_key  # noqa: E402


def dataset_100mb() -> xr.Dataset:
    rng = np.random.default_rng(0)
    shots, nrec, nt = 25, 1000, 1000
    t = np.linspace(0, 1, nt, dtype="f4")
    base = np.sin(2 * np.pi * 25 * t)[None, None, :] * np.exp(-3 * t)[None, None, :]
    data = (base + 0.05 * rng.standard_normal((shots, nrec, nt), dtype="f4")).astype("f4")
    return xr.Dataset(
        {"data": (("shot", "receiver", "time"), data, {"units": "Pa", "long_name": "pressure"})},
        coords={"shot": np.arange(shots), "receiver": np.arange(nrec), "time": ("time", t, {"units": "s"})},
    )


def bench_write(repeats: int = 3) -> None:
    ds = dataset_100mb()
    mb = ds.nbytes / 1e6
    plain, catalog = [], []
    for i in range(repeats):
        tmp = Path(tempfile.mkdtemp(prefix="bench-cat-"))
        try:
            t0 = time.perf_counter()
            ds.to_zarr(tmp / "plain.zarr", mode="w", consolidated=False, zarr_format=3)
            plain.append(time.perf_counter() - t0)
            cat = Catalog(tmp / "root")
            key = make_key("bench", "1", {"i": i}, [])
            t0 = time.perf_counter()
            assert cat.claim(key, "bench", "shot_records", "bench", "1") is None
            cat.write(key, "shot_records", ds, {"step": "bench", "version": "1", "params": {"i": i}, "inputs": []})
            catalog.append(time.perf_counter() - t0)
            cat.close()
        finally:
            shutil.rmtree(tmp)
    p, c = statistics.median(plain), statistics.median(catalog)
    print(f"(a) write {mb:.0f} MB: xarray.to_zarr {p:.3f} s ({mb / p:.0f} MB/s), catalog.write {c:.3f} s "
          f"({mb / c:.0f} MB/s) -> ratio {c / p:.2f} (goal <= 1.2), median of {repeats}")


def strata_run(root: Path, *extra: str) -> tuple[dict, dict]:
    env = {k: v for k, v in os.environ.items() if k not in ("PREFECT_API_URL", "STRATA_FAULT")}
    env["STRATA_HOME"] = str(root)
    proc = subprocess.run([sys.executable, "-m", "pipelines.cli", "run", "mad_gaussian", "--json", *extra],
                          capture_output=True, text=True, env=env, cwd=REPO, timeout=900)
    if proc.returncode:
        raise SystemExit(proc.stderr[-2000:])
    out = json.loads(proc.stdout)
    run = json.loads((Path(out["report"]).parent / "run.json").read_text())
    return out, run


def bench_runs() -> None:
    root = Path(tempfile.mkdtemp(prefix="bench-run-"))
    try:
        first, r1 = strata_run(root)
        second, r2 = strata_run(root)
    finally:
        shutil.rmtree(root)
    n = len(second["reused"])
    per_step = r2["timings"]["steps_s"] / n * 1000
    print(f"(b) one already-computed step inside a run: {per_step:.1f} ms (rerun: {n} steps reused in "
          f"{r2['timings']['steps_s']:.2f} s)")
    for name, out, run in (("first", first, r1), ("second", second, r2)):
        t = run["timings"]
        print(f"(c) {name:>6} run: {out['seconds']:.1f} s = Prefect start-up {t['prefect_startup_s']:.1f} s "
              f"(import, ephemeral server, flow run) + steps {t['steps_s']:.1f} s + shutdown and report "
              f"{out['seconds'] - t['prefect_startup_s'] - t['steps_s']:.1f} s; computed {len(out['computed'])}, "
              f"reused {len(out['reused'])}")


if __name__ == "__main__":
    bench_write()
    bench_runs()
