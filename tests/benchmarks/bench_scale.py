"""Figures of issue 16 (a path past one machine), in one run:

(a) the survey's speed-up on 2 Dask workers vs 1 (one OpenMP thread per worker; ``flows.study.run_study`` as
    ``strata run`` does on a warm LocalCluster per worker count; the survey step's seconds, a new noise seed per run
    so it recomputes) beside
    the speed-up of the plain Devito loop (``forward()`` on the same shots in one fresh process) on 2 threads vs 1 —
    this memory-bound stencil's own limit on this machine. Goal: the survey's speed-up >= 0.95 of the loop's.
    Also: the plain loop split over 2 one-thread processes at once (workers are processes: on this 2-vCPU
    machine an OpenMP team of 2 is slower than one thread, so the thread figure understates the limit).
(b) the same survey with its data root on an S3 server on loopback (moto's server mode) vs a local root: the
    wall-time ratio of the survey step (serial, in process).
(c) the orchestration overhead of the demo study (``strata run seismic_imaging``, small preset, on a fresh
    root, with the root's Prefect server already running): (wall time − its report (plots, HTML) − the wall time
    of the same science run in memory in a fresh process, ``flows.direct.run_direct``) / wall time. Goal <= 10 %.

Usage: .venv/bin/python tests/benchmarks/bench_scale.py [--nx 801] [--nz 401] [--shots 16] [--record 3.0]
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
os.environ.setdefault("DEVITO_LANGUAGE", "openmp")  # as strata runs Devito: threads are OpenMP threads
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "CRITICAL")


def _sets(args, seed: int) -> list[str]:
    return [f"model.shape=[{args.nx},{args.nz}]", f"geometry.n_shots={args.shots}",
            f"geometry.shot_spacing={10.0 * (args.nx - 1) / args.shots:.1f}", "geometry.first_shot_x=20",
            f"geometry.n_receivers={args.nx}", f"geometry.record_length={args.record}", "model.circle=null",
            "model.depths=[600.0,1300.0]" if args.nz * 10 > 1400 else "model.depths=[400.0,800.0]",
            f"simulation.seed={seed}", "simulation.pieces.per_piece=1"]


def _survey_seconds(root: str, args, seed: int, address: str | None = None) -> float:
    """The survey step's seconds of one run (model and geometry reused after the first), on the Dask
    scheduler at ``address`` (None: in process)."""
    from data_catalog import Catalog
    from flows.study import run_study
    from pipelines.config import load_study
    from pipelines.registry import load_flow, models

    loaded = load_study("seismic_survey", "small", _sets(args, seed), models())
    cat = Catalog(root)
    try:
        res = run_study(load_flow("seismic_survey"), loaded.config, catalog=cat, study="seismic_survey",
                        preset="small", overrides=loaded.overrides, address=address)
    finally:
        cat.close()
    [step] = [s for s in res.steps if s.step == "survey"]
    assert step.status == "computed"
    return step.seconds


def _cluster(workers: int):
    """A LocalCluster of ``workers`` processes of one thread (OpenMP too), kept warm across rounds."""
    from distributed import LocalCluster

    env = {"OMP_NUM_THREADS": "1", "DEVITO_LANGUAGE": "openmp", "DEVITO_LOGGING": "WARNING"}
    return LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=":0",
                        host="127.0.0.1", env=env)


def _plain_loop(args, threads: int) -> float:
    """Seconds of the plain Devito loop over the same shots on ``threads`` OpenMP threads, in a fresh process
    (in this one, Prefect's and Dask's threads would stall an OpenMP team on two cores)."""
    cmd = [sys.executable, __file__, "--plain", str(threads), "--nx", str(args.nx), "--nz", str(args.nz),
           "--shots", str(args.shots), "--record", str(args.record)]
    out = subprocess.run(cmd, cwd=REPO, check=True, capture_output=True, text=True).stdout
    return float(out.strip().splitlines()[-1])


def _plain_processes(args, n: int) -> float:
    """Wall seconds of ``n`` plain loops at once in ``n`` fresh one-thread processes, process i taking shots
    i, i + n, ... (the machine's own limit for this memory-bound stencil with workers as processes)."""
    cmds = [[sys.executable, __file__, "--plain", "1", "--part", f"{i}/{n}", "--nx", str(args.nx), "--nz",
             str(args.nz), "--shots", str(args.shots), "--record", str(args.record)] for i in range(n)]
    procs = [subprocess.Popen(c, cwd=REPO, stdout=subprocess.PIPE, text=True) for c in cmds]
    # each reports when its (compiled, warmed) loop started and ended; the span of all of them is the wall time
    spans = [tuple(map(float, p.communicate()[0].strip().splitlines()[-2].split())) for p in procs]
    return max(e for _, e in spans) - min(s for s, _ in spans)


def _plain_loop_here(args, threads: int) -> float:
    """:func:`_plain_loop` in this process (operators compiled first)."""
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
    part, parts = map(int, (args.part or "0/1").split("/"))
    start = time.time()
    t0 = time.perf_counter()
    for s in range(part, args.shots, parts):
        src, rec = shot_positions(geo, s, model.dims)
        forward(model, src, geo.wavelet.values, rec, dt, threads=threads)
    if args.part:
        print(start, time.time())
    return time.perf_counter() - t0


def part_a(args) -> None:
    root = tempfile.mkdtemp(prefix="bench-scale-")
    plain = {1: [], 2: []}
    procs: list[float] = []
    for _ in range(args.rounds):  # first, with no cluster on the machine: its ticks would stall a 2-thread team
        for t in (1, 2):
            plain[t].append(_plain_loop(args, t))
        procs.append(_plain_processes(args, 2))
    clusters = {w: _cluster(w) for w in (1, 2)}
    flow = {1: [], 2: []}
    try:
        for w, c in clusters.items():  # workers warm: devito imported, operator compiled, model built
            _survey_seconds(root, args, 50 + w, c.scheduler_address)
        for r in range(args.rounds):  # alternate, so that drifts of the machine hit both alike
            for w in (1, 2):
                flow[w].append(_survey_seconds(root, args, 1 + 2 * r + w, clusters[w].scheduler_address))
    finally:
        for c in clusters.values():
            c.close()
    f1, f2, p1, p2 = min(flow[1]), min(flow[2]), min(plain[1]), min(plain[2])
    print(f"(a) survey {args.nx}x{args.nz}, {args.shots} shots of {args.record} s (fastest of {args.rounds} rounds; "
          f"plain shot {p1 / args.shots:.2f} s on one thread):")
    print(f"    survey step: 1 worker {f1:.2f} s, 2 workers {f2:.2f} s -> speed-up {f1 / f2:.2f}")
    print(f"    plain Devito loop: 1 thread {p1:.2f} s, 2 threads {p2:.2f} s -> speed-up {p1 / p2:.2f}")
    print(f"    survey speed-up / loop speed-up: {(f1 / f2) / (p1 / p2):.2f} (goal >= 0.95)")
    q2 = min(procs)
    print(f"    plain Devito loop as 2 one-thread processes at once: {q2:.2f} s -> speed-up {p1 / q2:.2f}; "
          f"survey speed-up / that: {(f1 / f2) / (p1 / q2):.2f}")
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
            _survey_seconds(root, args, 0)  # model, geometry, operators
        for r in range(args.rounds):
            for name, root in (("local", local), ("s3", remote)):
                times[name].append(_survey_seconds(root, args, 100 + 2 * r + (name == "s3")))
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
    out = subprocess.run([sys.executable, "-m", "pipelines.cli", "run", "seismic_imaging", "--root", str(root),
                          "--json"], cwd=REPO, env=env, check=True, capture_output=True, text=True).stdout
    wall = time.perf_counter() - t0
    t0 = time.perf_counter()
    inner = float(subprocess.run(cmd_direct, cwd=REPO, env=env, check=True, capture_output=True,
                                 text=True).stdout.strip().splitlines()[-1])
    plain = time.perf_counter() - t0
    run = json.loads(next((root / "reports").glob("*/run.json")).read_text())
    timings, report = run["timings"], json.loads(out)["seconds"] - run["seconds"]  # plots + HTML: the study's output
    print(f"(c) demo study (seismic_imaging small), root's server running: strata run {wall:.1f} s (to the first "
          f"step {timings['prefect_startup_s']:.1f} s, steps {timings['steps_s']:.1f} s, report {report:.1f} s); "
          f"the same science in memory in a fresh process {plain:.1f} s ({inner:.1f} s after imports)")
    print(f"    orchestration overhead: (run − report − in memory) / run = {(wall - report - plain) / wall:.1%} "
          f"(goal <= 10 %); with the report counted as overhead {(wall - plain) / wall:.1%}")
    server.stop(home)


def _stop_server(root: str) -> None:
    from data_catalog import Catalog
    from flows import server

    server.stop(Catalog(root).storage.cache_dir() / "prefect")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--nx", type=int, default=801)
    ap.add_argument("--nz", type=int, default=401)
    ap.add_argument("--shots", type=int, default=16)
    ap.add_argument("--record", type=float, default=3.0)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--skip", default="")
    ap.add_argument("--plain", type=int, help=argparse.SUPPRESS)  # internal: one plain loop on N threads
    ap.add_argument("--part", help=argparse.SUPPRESS)  # internal: shots k, k + n, ... of "k/n"
    args = ap.parse_args()
    if args.plain:
        print(_plain_loop_here(args, args.plain))
        return
    skip = set(filter(None, args.skip.split(",")))
    for name, part in (("a", part_a), ("b", part_b), ("c", part_c)):
        if name not in skip:
            part(args)


if __name__ == "__main__":
    main()
