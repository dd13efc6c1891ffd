"""Imaging benchmarks (run by hand); prints figures, asserts nothing.

(a) RTM time per shot / forward time per shot (goal <= 3x), operators compiled beforehand;
(b) forward wavefield bytes held with snapshots (interval from the Nyquist rate of f_max)
    vs full storage (goal <= 25%), and the peak RSS of an RTM process with each;
(c) RTM per shot with each imaging condition (born, crosscorrelation, isic; Nyquist snapshots):
    seconds, ratio to the forward time, snapshot bytes and peak RSS;
(d) one LSRTM iteration per shot (:func:`tasks.seismic.lsrtm.lsrtm_apply` on one shot: a Born
    run, a forward run storing every step and an adjoint run), in units of one RTM (born
    condition, Nyquist snapshots);
(e) with ``--3d``: the wall time of ``strata run seismic_imaging --preset 3d --root <tmp>``
    through the CLI (a Prefect server started for the root and stopped afterwards), or
    "no 3d preset".
Each mode runs in its own process so that peak RSS is its own; shot 0 of each compiles the
operators and is not timed; the other shots are run ``--repeat`` times and the fastest run is
shown (``--stat median``: the median; on a machine shared with other work, OpenMP threads that
get descheduled make single runs up to 10x slower, so the fastest is the cost of the code; there,
``OMP_NUM_THREADS=1`` gives steadier figures: a 2-D shot is ~0.1 ms of work per time step). Usage:
``DEVITO_LANGUAGE=openmp OMP_NUM_THREADS=2 python tests/benchmarks/bench_imaging.py [--nx 401] [--repeat 3]
[--stat min] [--3d]`` (about 80 s at nx 401 on one core, without ``--3d``).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

CONDITION_MODES = {"rtm-snap": "born", "rtm-crosscorrelation": "crosscorrelation", "rtm-isic": "isic"}
MODES = ("forward", "rtm-snap", "rtm-full", "rtm-crosscorrelation", "rtm-isic", "lsrtm")


def problem(nx: int):
    from tasks.seismic.geometry import surface_geometry
    from tasks.seismic.model import Model, layered_model, smooth_model

    nz = nx // 2 + 1
    true = layered_model((nx, nz), 10.0, [1500.0, 2000.0, 2500.0], [nz * 4.0, nz * 7.0])
    geo = surface_geometry(true, n_shots=3, shot_spacing=nx * 2.5, first_shot_x=nx * 2.5,
                           n_receivers=nx, receiver_spacing=10.0, source_depth=20.0,
                           receiver_depth=20.0, record_length=nz * 2 * 10.0 / 1500.0, f0=10.0)
    return Model(smooth_model(true, 50.0), space_order=8, nbl=40), true, geo


def timed_shots(n_shots: int, repeat: int) -> list[tuple[int, bool]]:
    """(shot, timed): shot 0 once untimed (it compiles the operators), then shots 1.. ``repeat`` times."""
    return [(0, False)] + [(s, True) for _ in range(repeat) for s in range(1, n_shots)]


def lsrtm_times(model, true, geo, repeat: int) -> list[float]:
    """Seconds of :func:`lsrtm_apply` on one shot (:func:`timed_shots`), from a state whose search
    direction is the true perturbation of the background."""
    import numpy as np
    import xarray as xr

    from tasks.seismic.lsrtm import lsrtm_apply, lsrtm_setup

    background = model.dataset
    dm = 1.0 / true.vp.values.astype(np.float64) ** 2 - 1.0 / background.vp.values.astype(np.float64) ** 2
    shots = geo.shot.values
    per_shot = np.broadcast_to(dm, (len(shots), *dm.shape))
    start = xr.Dataset({"gradient": (("shot", "x", "z"), per_shot),
                        "illumination": (("shot", "x", "z"), np.ones_like(per_shot)),
                        "residual_norm2": ("shot", np.ones(len(shots)))},
                       coords={"shot": shots, "x": background.x, "z": background.z})
    state = lsrtm_setup(start, mute_depth=50.0, mute_taper=50.0)
    times = []
    for k, timed in timed_shots(len(shots), repeat):
        t0 = time.perf_counter()
        lsrtm_apply(state, background, geo.isel(shot=[k]), space_order=model.space_order, nbl=model.nbl)
        gc.collect()
        if timed:
            times.append(time.perf_counter() - t0)
    return times


def run_mode(mode: str, nx: int, repeat: int = 1) -> dict:
    import numpy as np

    from tasks.seismic.born import backpropagate, forward_snapshots
    from tasks.seismic.geometry import shot_positions
    from tasks.seismic.migration import resolve_factor
    from tasks.seismic.solver import forward

    model, true, geo = problem(nx)
    dt, wavelet = float(geo.attrs["dt"]), geo.wavelet.values.astype(np.float64)
    factor = 1 if mode in ("rtm-full", "lsrtm") else resolve_factor(geo, None)
    condition = CONDITION_MODES.get(mode, "born")
    times, nbytes = [], 0
    if mode == "lsrtm":
        times = lsrtm_times(model, true, geo, repeat)
    else:
        for shot, timed in timed_shots(geo.sizes["shot"], repeat):
            src, rec = shot_positions(geo, shot, model.dims)
            t0 = time.perf_counter()
            if mode == "forward":
                traces, _ = forward(model, src, wavelet, rec, dt)
            else:
                state = forward_snapshots(model, src, wavelet, rec, dt, factor=factor, condition=condition)
                backpropagate(model, state, rec, 0.01 * state.traces, dt, condition=condition)
                nbytes = state.usave.data_with_halo.nbytes     # isic's snapshots carry a halo
                del state
                gc.collect()                     # free the snapshots before the next shot allocates
            if timed:
                times.append(time.perf_counter() - t0)
    return {"mode": mode, "condition": condition, "grid": list(model.grid.shape), "nt": len(wavelet),
            "n_shots": int(geo.sizes["shot"]), "factor": factor,
            "seconds_per_shot": statistics.median(times), "min_seconds": min(times),
            "wavefield_bytes": nbytes,
            "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def has_preset(study: str, preset: str) -> bool:
    out = subprocess.run([sys.executable, "-m", "pipelines.cli", "studies", study, "--json"], cwd=REPO,
                         capture_output=True, text=True, timeout=300)
    if out.returncode != 0:
        raise SystemExit(f"strata studies {study} failed:\n{out.stderr[-2000:]}")
    return preset in json.loads(out.stdout)["presets"]


def cli_3d() -> None:
    """Wall time of ``strata run seismic_imaging --preset 3d`` on a new data root."""
    if not has_preset("seismic_imaging", "3d"):
        print("strata run seismic_imaging --preset 3d: no 3d preset")
        return
    env = {k: v for k, v in os.environ.items() if k not in ("PREFECT_API_URL", "STRATA_EPHEMERAL")}
    with tempfile.TemporaryDirectory(prefix="strata-bench-imaging-") as tmp:
        cmd = [sys.executable, "-m", "pipelines.cli", "run", "seismic_imaging", "--preset", "3d", "--root", tmp]
        try:
            t0 = time.perf_counter()
            proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=3600)
            wall = time.perf_counter() - t0
        finally:
            subprocess.run([sys.executable, "-m", "pipelines.cli", "server", "stop", "--root", tmp], cwd=REPO,
                           env=env, capture_output=True, timeout=120)
        if proc.returncode != 0:
            print(f"strata run seismic_imaging --preset 3d failed after {wall:.1f} s:\n{proc.stderr[-3000:]}")
            return
        print(f"strata run seismic_imaging --preset 3d (new root, server start included): {wall:.1f} s wall")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--nx", type=int, default=401)
    parser.add_argument("--mode", choices=MODES)
    parser.add_argument("--repeat", type=int, default=3, help="timed runs of each shot after the first")
    parser.add_argument("--stat", choices=["min", "median"], default="min",
                        help="seconds per shot shown: the fastest timed run or the median")
    parser.add_argument("--3d", dest="three_d", action="store_true",
                        help="also time `strata run seismic_imaging --preset 3d` through the CLI")
    args = parser.parse_args()
    if args.mode:
        print(json.dumps(run_mode(args.mode, args.nx, args.repeat)))
        return
    res = {}
    t_start = time.perf_counter()
    for mode in MODES:
        out = subprocess.run([sys.executable, __file__, "--mode", mode, "--nx", str(args.nx),
                              "--repeat", str(args.repeat)],
                             check=True, capture_output=True, text=True).stdout
        res[mode] = json.loads(out.strip().splitlines()[-1])
        print(json.dumps(res[mode]), file=sys.stderr)
    key = "min_seconds" if args.stat == "min" else "seconds_per_shot"
    other = "seconds_per_shot" if args.stat == "min" else "min_seconds"
    fwd = res["forward"][key]
    snap, full = res["rtm-snap"], res["rtm-full"]
    print(f"grid {snap['grid']} x {snap['nt']} steps, snapshot factor {snap['factor']}; seconds: {args.stat} of "
          f"{args.repeat * (res['forward']['n_shots'] - 1)} timed runs per mode")
    print(f"RTM/forward time per shot: snapshots {snap[key] / fwd:.2f}x, "
          f"full {full[key] / fwd:.2f}x (goal <= 3x; forward {fwd:.3f} s)")
    print(f"wavefield bytes: snapshots {snap['wavefield_bytes'] / 2**20:.1f} MiB, full "
          f"{full['wavefield_bytes'] / 2**20:.1f} MiB = "
          f"{100 * snap['wavefield_bytes'] / full['wavefield_bytes']:.1f}% (goal <= 25%)")
    print(f"peak RSS: forward {res['forward']['peak_rss_mib']:.0f} MiB, RTM snapshots "
          f"{snap['peak_rss_mib']:.0f} MiB, RTM full {full['peak_rss_mib']:.0f} MiB")
    print(f"\nRTM per shot by imaging condition (snapshot factor {snap['factor']}):")
    alt = "median" if args.stat == "min" else "min"
    print(f"  {'condition':<17} {'s/shot':>7} {'/forward':>9} {'(' + alt + ')':>9} {'snapshots MiB':>14} "
          f"{'peak RSS MiB':>13}")
    for mode in CONDITION_MODES:
        r = res[mode]
        print(f"  {r['condition']:<17} {r[key]:7.3f} {r[key] / fwd:8.2f}x {r[other]:9.3f} "
              f"{r['wavefield_bytes'] / 2**20:14.1f} {r['peak_rss_mib']:13.0f}")
    ls = res["lsrtm"]
    print(f"LSRTM iteration per shot (lsrtm_apply, one shot): {ls[key]:.3f} s ({alt} {ls[other]:.3f} s) = "
          f"{ls[key] / snap[key]:.2f} RTM (born, factor {snap['factor']}) = "
          f"{ls[key] / fwd:.2f} forward; peak RSS {ls['peak_rss_mib']:.0f} MiB")
    print(f"(benchmark processes: {time.perf_counter() - t_start:.0f} s)")
    if args.three_d:
        cli_3d()


if __name__ == "__main__":
    main()
