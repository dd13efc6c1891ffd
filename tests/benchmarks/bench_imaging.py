"""Imaging benchmarks (run by hand); prints figures, asserts nothing.

(a) RTM time per shot / forward time per shot (goal <= 3x), operators compiled beforehand;
(b) forward wavefield bytes held with snapshots (interval from the Nyquist rate of f_max)
    vs full storage (goal <= 25%), and the peak RSS of an RTM process with each.
Each mode runs in its own process so that peak RSS is its own. Usage:
``DEVITO_LANGUAGE=openmp OMP_NUM_THREADS=2 python tests/benchmarks/bench_imaging.py [--nx 401]``
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))


def problem(nx: int):
    from tasks.seismic.geometry import surface_geometry
    from tasks.seismic.model import Model, layered_model, smooth_model

    nz = nx // 2 + 1
    true = layered_model((nx, nz), 10.0, [1500.0, 2000.0, 2500.0], [nz * 4.0, nz * 7.0])
    geo = surface_geometry(true, n_shots=3, shot_spacing=nx * 2.5, first_shot_x=nx * 2.5,
                           n_receivers=nx, receiver_spacing=10.0, source_depth=20.0,
                           receiver_depth=20.0, record_length=nz * 2 * 10.0 / 1500.0, f0=10.0)
    return Model(smooth_model(true, 50.0), space_order=8, nbl=40), true, geo


def run_mode(mode: str, nx: int) -> dict:
    import numpy as np

    from tasks.seismic.born import backpropagate, forward_snapshots
    from tasks.seismic.geometry import shot_positions
    from tasks.seismic.migration import resolve_factor
    from tasks.seismic.solver import forward

    model, _, geo = problem(nx)
    dt, wavelet = float(geo.attrs["dt"]), geo.wavelet.values.astype(np.float64)
    factor = 1 if mode == "rtm-full" else resolve_factor(geo, None)
    times, nbytes = [], 0
    for shot in range(geo.sizes["shot"]):           # shot 0 compiles: not timed
        src, rec = shot_positions(geo, shot, model.dims)
        t0 = time.perf_counter()
        if mode == "forward":
            traces, _ = forward(model, src, wavelet, rec, dt)
        else:
            state = forward_snapshots(model, src, wavelet, rec, dt, factor=factor)
            backpropagate(model, state, rec, 0.01 * state.traces, dt)
            nbytes = state.wavefield_bytes
            del state
        if shot:
            times.append(time.perf_counter() - t0)
    return {"mode": mode, "grid": list(model.grid.shape), "nt": len(wavelet),
            "factor": factor, "seconds_per_shot": statistics.median(times),
            "wavefield_bytes": nbytes,
            "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--nx", type=int, default=401)
    parser.add_argument("--mode", choices=["forward", "rtm-snap", "rtm-full"])
    args = parser.parse_args()
    if args.mode:
        print(json.dumps(run_mode(args.mode, args.nx)))
        return
    res = {}
    for mode in ("forward", "rtm-snap", "rtm-full"):
        out = subprocess.run([sys.executable, __file__, "--mode", mode, "--nx", str(args.nx)],
                             check=True, capture_output=True, text=True).stdout
        res[mode] = json.loads(out.strip().splitlines()[-1])
        print(json.dumps(res[mode]), file=sys.stderr)
    fwd = res["forward"]["seconds_per_shot"]
    snap, full = res["rtm-snap"], res["rtm-full"]
    print(f"grid {snap['grid']} x {snap['nt']} steps, snapshot factor {snap['factor']}")
    print(f"RTM/forward time per shot: snapshots {snap['seconds_per_shot'] / fwd:.2f}x, "
          f"full {full['seconds_per_shot'] / fwd:.2f}x (goal <= 3x; forward {fwd:.3f} s)")
    print(f"wavefield bytes: snapshots {snap['wavefield_bytes'] / 2**20:.1f} MiB, full "
          f"{full['wavefield_bytes'] / 2**20:.1f} MiB = "
          f"{100 * snap['wavefield_bytes'] / full['wavefield_bytes']:.1f}% (goal <= 25%)")
    print(f"peak RSS: forward {res['forward']['peak_rss_mib']:.0f} MiB, RTM snapshots "
          f"{snap['peak_rss_mib']:.0f} MiB, RTM full {full['peak_rss_mib']:.0f} MiB")


if __name__ == "__main__":
    main()
