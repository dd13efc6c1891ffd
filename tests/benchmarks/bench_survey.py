"""Survey simulation: per-shot cost through the flow vs a plain loop, and Devito GPts/s.

Usage: .venv/bin/python tests/benchmarks/bench_survey.py [--n 401] [--shots 16] [--record 1.0]

On an ``n × n`` grid (10 m, layered + circle, space order 8, 40 absorbing points per side) with
``--shots`` shots, it times
  (a) per shot:
      plain:   one Model, one compiled operator, ``forward()`` for each shot in a loop (the floor;
               per shot: positions + forward);
      pure:    ``survey_shots`` on a one-shot geometry per call (what one piece's task computes:
               Model build, forward, xarray assembly; no I/O);
      flow:    the ``survey`` step of ``seismic_survey`` (a Prefect task per shot, inputs read from
               zarr, region + marker written, catalog), ephemeral Prefect in this process, after the
               plain loop compiled the operator; per shot from the region markers' mtimes and as
               survey step / shots, on runs with new noise seeds (model and geometry reused);
  (c) GPts/s = padded grid points × time steps / seconds, from the plain loop's ``forward()`` wall
      time (includes sparse-function set-up: a lower bound of the operator's own rate).
Threads: OMP_NUM_THREADS (default: all cores); DEVITO_LANGUAGE=openmp.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))


def overrides(n: int, shots: int, record: float) -> list[str]:
    size = 10.0 * (n - 1)
    spacing = (size - 250.0) / max(shots - 1, 1)
    return [f"model.shape=[{n}, {n}]", "model.velocities=[1500, 2000, 2500, 3000]",
            f"model.depths=[{0.25 * size}, {0.5 * size}, {0.75 * size}]", "model.perturbation=null",
            f"model.circle={{center: [{size / 2}, {size / 2}], radius: {size / 10}, vp: 3200}}",
            f"geometry.n_shots={shots}", f"geometry.shot_spacing={spacing}", "geometry.first_shot_x=125",
            f"geometry.n_receivers={n}", "geometry.receiver_spacing=10", f"geometry.record_length={record}",
            "simulation.noise_snr_db=null"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=401)
    ap.add_argument("--shots", type=int, default=16)
    ap.add_argument("--record", type=float, default=1.0, help="record length (s)")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds of plain / pure / flow")
    args = ap.parse_args()

    from flows.runtime import cores, prefect_env

    os.environ.setdefault("OMP_NUM_THREADS", str(cores()))
    os.environ.setdefault("DEVITO_LANGUAGE", "openmp")
    os.environ.setdefault("DEVITO_LOGGING", "WARNING")
    tmp = Path(tempfile.mkdtemp(prefix="bench-survey-"))
    home = tmp / "root" / "prefect"
    home.mkdir(parents=True)
    os.environ.update(prefect_env(home))  # before Prefect is imported

    import numpy as np

    from pipelines.config import load_study
    from pipelines.registry import models
    from tasks.seismic.geometry import shot_positions, surface_geometry
    from tasks.seismic.model import Model, build_model
    from tasks.seismic.solver import forward, survey_shots

    sets = overrides(args.n, args.shots, args.record)
    loaded = load_study("seismic_survey", "small", sets, models())
    cfg = loaded.config
    so, nbl = cfg.simulation.space_order, cfg.simulation.nbl
    vel = build_model(**cfg.model.model_dump())
    geo = surface_geometry(vel, **cfg.geometry.model_dump(), space_order=so)
    nt = geo.sizes["time"]
    dt = float(geo.attrs["dt"])
    padded = (args.n + 2 * nbl) ** 2
    print(f"grid {args.n}x{args.n} (+{nbl} per side = {padded / 1e6:.3f} Mpts), {nt} steps of {dt * 1e3:.3g} ms, "
          f"{args.shots} shots x {args.n} receivers, space order {so}, OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']}")

    # -- plain loop: one Model, one operator ---------------------------------------------------------
    t0 = time.perf_counter()
    model = Model(vel, space_order=so, nbl=nbl, dtype=np.float32)
    t_model = time.perf_counter() - t0
    w = geo.wavelet.values
    t0 = time.perf_counter()
    src, rec = shot_positions(geo, 0, model.dims)
    forward(model, src, w, rec, dt)  # compile (or load from the JIT cache) + first run
    t_first = time.perf_counter() - t0

    def plain_loop() -> list[float]:
        out = []
        for s in range(args.shots):
            t0 = time.perf_counter()
            src, rec = shot_positions(geo, s, model.dims)
            forward(model, src, w, rec, dt)
            out.append(time.perf_counter() - t0)
        return out

    def pure_loop() -> list[float]:  # the pure piece function, one shot per call
        out = []
        for s in range(args.shots):
            t0 = time.perf_counter()
            survey_shots(vel, geo.isel(shot=[s]), space_order=so, nbl=nbl)
            out.append(time.perf_counter() - t0)
        return out

    # plain and pure first, in a process without Prefect (its in-process server threads compete for
    # the GIL); then the flow runs. Load from other processes is reported: rerun on a quiet machine.
    load0 = os.getloadavg()[0]
    plain, pure = [], []
    for _ in range(args.rounds):
        plain += plain_loop()
        pure += pure_loop()
    # -- through the flow -----------------------------------------------------------------------------
    from data_catalog import Catalog
    from flows.study import run_study
    from pipelines.registry import load_flow

    cat = Catalog(tmp / "root")
    flow_obj = load_flow("seismic_survey")

    def flow_run(seed: int) -> dict:
        cfg_i = load_study("seismic_survey", "small", sets + [f"simulation.seed={seed}"], models()).config
        t0 = time.perf_counter()
        res = run_study(flow_obj, cfg_i.model_dump(mode="json"), catalog=cat, study="seismic_survey",
                        preset="small", overrides=sets, t_start=t0)
        step = next(s for s in res.steps if s.step == "survey")
        # per-piece times from the region markers' mtimes (each is written right after its shot)
        marks = sorted(p.stat().st_mtime_ns for p in Path(res.outputs["shot_records"].uri).glob(".strata/regions/*"))
        return {"step": step.seconds, "status": step.status, "wall": time.perf_counter() - t0,
                "startup": res.timings["prefect_startup_s"], "pieces": list(np.diff(marks) / 1e9)}

    t0 = time.perf_counter()
    cold = flow_run(0)
    warm = [flow_run(r + 1) for r in range(args.rounds)]
    t_flows = time.perf_counter() - t0
    cat.close()
    load1 = os.getloadavg()[0]
    flow_pieces = [x for run in warm for x in run["pieces"]]
    step_per_shot = [run["step"] / args.shots for run in warm]

    def stats(xs: list[float]) -> str:
        return f"min {min(xs):.3f}  median {statistics.median(xs):.3f}"

    print(f"load average {load0:.1f} at start, {load1:.1f} at end ({os.cpu_count()} CPUs); "
          f"{args.rounds} rounds x {args.shots} shots; all flow runs {t_flows:.1f} s")
    print("\n(a) seconds per shot")
    print(f"  plain forward() loop            {stats(plain)}   (once: Model build {t_model:.2f} s, "
          f"first shot incl. compile {t_first:.2f} s)")
    print(f"  survey_shots, 1 shot per call   {stats(pure)}")
    print(f"  flow, warm, between markers     {stats(flow_pieces)}")
    print(f"  flow, warm, survey step / shots {stats(step_per_shot)}   (Prefect start-up "
          f"{warm[0]['startup']:.1f} s per run, not included)")
    print(f"  flow, first run of the process  {cold['step'] / args.shots:.3f}   (survey step {cold['step']:.2f} s; "
          f"run {cold['wall']:.1f} s, of which Prefect start-up {cold['startup']:.1f} s)")
    bp, bf = min(plain), min(flow_pieces)
    print(f"  flow overhead per shot (best cases): {bf - bp:+.3f} s vs plain ({bf / bp:.2f}x), "
          f"{bf - min(pure):+.3f} s vs the pure piece function")
    print("\n(c) throughput (padded points x steps / s)")
    print(f"  plain forward():  best {padded * nt / bp / 1e9:.2f} GPts/s, "
          f"median {padded * nt / statistics.median(plain) / 1e9:.2f} GPts/s")
    print(f"  flow, per shot:   best {padded * nt / bf / 1e9:.2f} GPts/s, "
          f"median {padded * nt / statistics.median(flow_pieces) / 1e9:.2f} GPts/s")


if __name__ == "__main__":
    main()
