"""Cost of keeping the epoch state (issue 17): the FNO surrogate of co2_forecast's default preset shape
(width 16, modes 12x12, 4 layers, 64x64 grids) trained for a few epochs with and without the runtime's
epoch store on a local root, in this process. Prints seconds per epoch of both, the ratio and the size
of one kept state. Alternated twice, the best of each.

Usage: .venv/bin/python tests/benchmarks/bench_resume.py [--samples 64] [--epochs 4]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import xarray as xr

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from data_catalog import Storage  # noqa: E402
from flows.epochs import CatalogEpochStore  # noqa: E402
from tasks.co2.surrogate import train_surrogate  # noqa: E402
from tasks.nn.resume import epoch_store  # noqa: E402


def _data(n: int, nx: int = 64, nt: int = 5) -> xr.Dataset:
    rng = np.random.default_rng(0)
    logk = rng.normal(3.0, 0.5, (n, nx, nx))
    sat = np.stack([1 / (1 + np.exp(-(logk - 3) * (t + 1))) for t in range(nt)], axis=1)
    return xr.Dataset({"permeability": (("sample", "x", "z"), np.exp(logk)),
                       "porosity": (("sample", "x", "z"), np.full_like(logk, 0.25)),
                       "saturation": (("sample", "time", "x", "z"), sat.astype("f4"))},
                      coords={"sample": np.arange(n), "time": 100.0 * (1 + np.arange(nt)),
                              "x": 15.0 * np.arange(nx), "z": 15.0 * np.arange(nx)})


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--samples", type=int, default=64)
    ap.add_argument("--epochs", type=int, default=4)
    args = ap.parse_args()
    ds = _data(args.samples)
    fno = {"modes": [12, 12], "width": 16, "layers": 4}
    training = {"epochs": args.epochs, "batch_size": 8, "held_out": 0.1, "patience": None}
    seconds: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        train_surrogate(ds, fno=fno, training={**training, "epochs": 1}, seed=0, threads=2)  # warm-up
        for i, label in enumerate(("plain", "kept") * 2):  # alternated, the best of two each
            storage = Storage(tmp)
            store = CatalogEpochStore(storage, storage.uri("checkpoint", f"{label}{i}"), "train_surrogate", {})
            t0 = time.perf_counter()
            with epoch_store(store if label == "kept" else None):
                train_surrogate(ds, fno=fno, training=training, seed=0, threads=2)
            per_epoch = (time.perf_counter() - t0) / args.epochs
            seconds[label] = min(seconds.get(label, per_epoch), per_epoch)
        state = Path(tmp) / "datasets/checkpoint/kept1.zarr/.strata/training/fit-0-0"
        size = sum(p.stat().st_size for p in state.rglob("*") if p.is_file())
    print(f"seconds per epoch: plain {seconds['plain']:.3f}, with the epoch state kept {seconds['kept']:.3f} "
          f"(ratio {seconds['kept'] / seconds['plain']:.3f}); one kept state: {size / 2**20:.2f} MiB")


if __name__ == "__main__":
    main()
