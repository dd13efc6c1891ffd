"""Figures of issue 16 (a path past one machine), in one run:

(a) the survey's speed-up on 2 Dask workers vs 1 (one OpenMP thread per worker; ``flows.study.run_study`` as
    ``strata run --workers N`` does, the survey step's seconds, a new noise seed per run so it recomputes) beside
    the speed-up of the plain Devito loop (``forward()`` on the same shots in one process) on 2 threads vs 1 —
    this memory-bound stencil's own limit on this machine. Goal: the survey's speed-up >= 0.95 of the loop's.
(b) the same survey with its data root on an S3 server on loopback (moto's server mode) vs a local root: the
    wall-time ratio of the survey step (serial, in process).
(c) the orchestration overhead of the demo study (``strata run seismic_imaging``, small preset, on a fresh
    root, with the root's Prefect server already running): (wall time − the wall time of the same science run
    in memory in a fresh process, ``flows.direct.run_direct``) / wall time. Goal <= 10 %.

Usage: .venv/bin/python tests/benchmarks/bench_scale.py [--nx 401] [--nz 201] [--shots 8] [--record 1.0]
       [--rounds 3] [--skip a,b,c]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
os.environ.setdefault("DEVITO_LOGGING", "WARNING")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "CRITICAL")


def _sets(args, seed: int) -> list[str]:
    return [f"model.shape=[{args.nx},{args.nz}]", f"geometry.n_shots={args.shots}",
            f"geometry.shot_spacing={10.0 * (args.nx - 1) / args.shots:.1f}", "geometry.first_shot_x=20",
            f"geometry.n_receivers={args.nx}", f"geometry.record_length={args.record}", "model.circle=null",
            "model.depths=[600.0,1300.0]" if args.nz * 10 > 1400 else "model.depths=[400.0,800.0]",
            f"simulation.seed={seed}", "simulation.pieces.per_piece=1"]


def _survey_seconds(root: str, args, seed: int, workers: int | None, threads: int | None) -> float:
    """The survey step's seconds of one run (model and geometry reused after the first)."""
    from data_catalog import Catalog
    from flows.study import run_study
    from pipelines.config import load_study
    from pipelines.registry import load_flow, models

    loaded = load_study("seismic_survey", "small", _sets(args, seed), models())
    cat = Catalog(root)
    try:
        res = run_study(load_flow("seismic_survey"), loaded.config, catalog=cat, study="seismic_survey",
                        preset="small", overrides=loaded.overrides, workers=workers, threads=threads,
                        ephemeral=False)
    finally:
        cat.close()
    [step] = [s for s in res.steps if s.step == "survey"]
    assert step.status == "computed"
    return step.seconds


def _plain_loop(args, threads: int) -> float:
    """Seconds of the plain Devito loop over the same shots, on ``threads`` OpenMP threads (compiled before)."""
    import numpy as np

    from pipelines.config import load_study
    from pipelines.registry import models
    from tasks.seismic.geometry import acquisition, shot_positions
    from tasks.seismic.model import build_model
    from tasks.seismic.solver import forward, shared_model

    cfg = load_study("seismic_survey", "small", _sets(args, 0), models()).config
    so, nbl = cfg.simulation.space_order, cfg.simulation.nbl
    vel = build_model(**cfg.model.model_dump())
    geo = acquisition(vel, **cfg.geometry.model_dump(), space_order=so)
    model = shared_model(vel, geo, space_order=so, nbl=nbl, dtype=np.float32)
    dt = float(geo.attrs["dt"])
    src, rec = shot_positions(geo, 0, model.dims)
    forward(model, src, geo.wavelet.values, rec, dt, threads=threads)  # compile / warm
    t0 = time.perf_counter()
    for s in range(args.shots):
        src, rec = shot_positions(geo, s, model.dims)
        forward(model, src, geo.wavelet.values, rec, dt, threads=threads)
    return time.perf_counter() - t0


def part_a(args) -> None:
    root = tempfile.mkdtemp(prefix="bench-scale-")
    _survey_seconds(root, args, 0, 1, 1)  # model, geometry, compiled operators, the root's server
    flow = {1: [], 2: []}
    plain = {1: [], 2: []}
    for r in range(args.rounds):  # alternate, so that drifts of the machine hit both sides alike
        for w in (1, 2):
            flow[w].append(_survey_seconds(root, args, 1 + 2 * r + w, w, 1))
            plain[w].append(_plain_loop(args, w))
    f1, f2, p1, p2 = min(flow[1]), min(flow[2]), min(plain[1]), min(plain[2])
    print(f"(a) survey {args.nx}x{args.nz}, {args.shots} shots of {args.record} s (fastest of {args.rounds} rounds):")
    print(f"    survey step: 1 worker {f1:.2f} s, 2 workers {f2:.2f} s -> speed-up {f1 / f2:.2f}")
    print(f"    plain Devito loop: 1 thread {p1:.2f} s, 2 threads {p2:.2f} s -> speed-up {p1 / p2:.2f}")
    print(f"    survey speed-up / loop speed-up: {(f1 / f2) / (p1 / p2):.2f} (goal >= 0.95)")
    _stop_server(root)


def part_b(args) -> None:
    from moto.server import ThreadedMotoServer

    from flows import server

    port = server.free_port()
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    moto.start()
    os.environ.update({"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                       "AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}"})
    os.environ["STRATA_CACHE_DIR"] = tempfile.mkdtemp(prefix="bench-scale-cache-")
    try:
        import s3fs

        s3fs.S3FileSystem(client_kwargs={"endpoint_url": f"http://127.0.0.1:{port}"}).mkdir("bench-scale")
        local = tempfile.mkdtemp(prefix="bench-scale-local-")
        remote = "s3://bench-scale/root"
        times = {"local": [], "s3": []}
        for root in (local, remote):
            _survey_seconds(root, args, 0, None, None)  # model, geometry, operators
        for r in range(args.rounds):
            for name, root in (("local", local), ("s3", remote)):
                times[name].append(_survey_seconds(root, args, 100 + 2 * r + (name == "s3"), None, None))
        lo, s3 = min(times["local"]), min(times["s3"])
        print(f"(b) survey step, serial: local root {lo:.2f} s, S3 root on loopback (moto) {s3:.2f} s -> "
              f"ratio {s3 / lo:.2f}")
        _stop_server(local)
        _stop_server(remote)
    finally:
        moto.stop()


def part_c(args) -> None:
    from data_catalog import Catalog
    from flows import server
    from flows.runtime import prefect_env

    root = Path(tempfile.mkdtemp(prefix="bench-scale-demo-"))
    home = Catalog(root).storage.cache_dir() / "prefect"
    home.mkdir(parents=True, exist_ok=True)
    os.environ.update(prefect_env(home))
    info, _ = server.ensure(home)
    server.wait_ready(home, info)
    env = {k: v for k, v in os.environ.items() if k not in ("PREFECT_API_URL", "STRATA_EPHEMERAL")}
    env.update({"DEVITO_LANGUAGE": "openmp", "OMP_NUM_THREADS": str(os.cpu_count())})  # what a serial run uses
    direct = ("import time; t0 = time.perf_counter()\n"
              "from pipelines.config import load_study\nfrom pipelines.registry import load_flow, models\n"
              "from flows.direct import run_direct\n"
              "loaded = load_study('seismic_imaging', None, [], models())\n"
              "run_direct(load_flow('seismic_imaging'), loaded.config)\nprint(time.perf_counter() - t0)\n")
    cmd_direct = [sys.executable, "-c", direct]
    subprocess.run(cmd_direct, cwd=REPO, env=env, check=True, capture_output=True)  # compiles the operators
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "pipelines.cli", "run", "seismic_imaging", "--root", str(root)],
                   cwd=REPO, env=env, check=True, capture_output=True)
    wall = time.perf_counter() - t0
    t0 = time.perf_counter()
    inner = float(subprocess.run(cmd_direct, cwd=REPO, env=env, check=True, capture_output=True,
                                 text=True).stdout.strip().splitlines()[-1])
    plain = time.perf_counter() - t0
    timings = json.loads(next((root / "reports").glob("*/run.json")).read_text())["timings"]
    print(f"(c) demo study (seismic_imaging small), root's server running: strata run {wall:.1f} s (Prefect "
          f"attach {timings['prefect_startup_s']:.1f} s, steps {timings['steps_s']:.1f} s); the same science in "
          f"memory in a fresh process {plain:.1f} s ({inner:.1f} s after imports)")
    print(f"    orchestration overhead: {(wall - plain) / wall:.1%} of the wall time (goal <= 10 %)")
    server.stop(home)


def _stop_server(root: str) -> None:
    from data_catalog import Catalog
    from flows import server

    server.stop(Catalog(root).storage.cache_dir() / "prefect")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--nx", type=int, default=401)
    ap.add_argument("--nz", type=int, default=201)
    ap.add_argument("--shots", type=int, default=8)
    ap.add_argument("--record", type=float, default=1.0)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--skip", default="")
    args = ap.parse_args()
    skip = set(filter(None, args.skip.split(",")))
    for name, part in (("a", part_a), ("b", part_b), ("c", part_c)):
        if name not in skip:
            part(args)


if __name__ == "__main__":
    main()
