"""Survey simulation figures of issue 3, measured in one run: flow vs plain loop, workers x threads,
Devito GPts/s, SEG-Y read throughput, and the 4001² survey against this machine's memory roofline.

Usage: .venv/bin/python tests/benchmarks/bench_survey.py [--n 401] [--shots 16] [--record 1.0]
       [--rounds 2] [--per-task 8] [--big 4001] [--big-shots 2] [--big-record 0.25] [--segy-mb 200]
       [--serial] [--skip b,d,e]

Model: ``n × n`` at 10 m (layers + circle, 1500-3200 m/s), space order 8, 40 absorbing points per
side, Ricker 10 Hz, one receiver per grid column, no noise. Threads: ``OMP_NUM_THREADS`` (default
all cores), ``DEVITO_LANGUAGE=openmp``. The plain loops and the triad run first, in this process,
before Prefect is imported; then the flows, each cluster configuration with its own Prefect server
and LocalCluster (as ``strata run --workers N``; their start-up is reported apart), on one data
root (model and geometry are computed once, every run after uses a new noise seed so the survey
step recomputes); SEG-Y last.

(a) per-shot time of the survey flow on a warm 1 worker × all-cores cluster (operators compiled by
    a first run) / a plain loop calling the same Devito operator (``forward()``) for the same
    shots in this process (goal <= 1.10). Flow per shot = the survey step's seconds / shots (claim,
    first piece + template, the other pieces, fingerprint, index); "steady" = span between the
    first and last region markers / the shots written in that span. Prefect server, cluster and flow-run start-up
    are reported separately.
(b) the same flow per shot on 2 workers × 1 thread, 1 × 2 and 1 × 1 (cores permitting), beside
    plain loops on 2 and 1 threads.
(c) GPts/s as Devito reports it: its PERF log lines (captured, as with ``DEVITO_LOGGING=PERF``) of a
    plain loop whose operator is rebuilt with Devito's advanced profiler (the timed loops use the
    default profiler, as the flow's workers do): the global figure (points × steps / apply time
    rounded up to 10 ms) and the stencil section's (C timer); also points × steps / wall per shot.
(d) SEG-Y read-and-decode / segyio (``bench_segy.measure``; goal >= 0.8), zarr write apart.
(e) survey throughput on ``big``² (a few short shots through the flow on the warm 1 × cores
    cluster, and a plain loop) / the memory-bandwidth roofline = STREAM triad bandwidth / 20 B per
    grid-point update (goal >= 0.75). The triad ``a = b + s*c`` (float32, three arrays of the big
    padded grid, ≫ cache) runs as a Devito Operator (compiled C, OpenMP, all cores; bytes counted
    as STREAM does: 12 B/point, no write-allocate), best of 20 by its C timer; numpy's triad
    (single-threaded, two passes) is printed for reference only.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import statistics
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

BYTES_PER_POINT = 20  # one 2D acoustic update streams u(t-1), u(t), u(t+1), m, damp (4 B each)
TRIAD_BYTES = 12  # STREAM's count for a float32 triad: read b, c; write a


def overrides(n: int, shots: int, record: float) -> list[str]:
    size = 10.0 * (n - 1)
    spacing = (size - 250.0) / max(shots - 1, 1)
    return [f"model.shape=[{n}, {n}]", "model.velocities=[1500, 2000, 2500, 3000]",
            f"model.depths=[{0.25 * size}, {0.5 * size}, {0.75 * size}]", "model.perturbation=null",
            f"model.circle={{center: [{size / 2}, {size / 2}], radius: {size / 10}, vp: 3200}}",
            f"geometry.n_shots={shots}", f"geometry.shot_spacing={spacing}", "geometry.first_shot_x=125",
            f"geometry.n_receivers={n}", "geometry.receiver_spacing=10", f"geometry.record_length={record}",
            "simulation.noise_snr_db=null"]


def stats(xs: list[float]) -> str:
    return f"min {min(xs):.3f}  median {statistics.median(xs):.3f}"


# -- Devito's own report ------------------------------------------------------------------------------
@contextmanager
def devito_perf():
    """Capture Devito's PERF log lines (not printed) while the block runs. Operators built inside
    get Devito's advanced profiler (it counts points), as with ``DEVITO_LOGGING=PERF``."""
    from devito import configuration
    from devito.logger import logger, stream_handler

    lines: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(record.getMessage())

    def mute(record: logging.LogRecord) -> bool:
        return False

    keep, level = Keep(), configuration["log-level"]
    logger.addHandler(keep)
    stream_handler.addFilter(mute)  # devito re-adds its handler around each apply: filter it instead
    configuration["log-level"] = "PERF"
    try:
        yield lines
    finally:
        configuration["log-level"] = level
        logger.removeHandler(keep)
        stream_handler.removeFilter(mute)


def devito_gpts(lines: list[str]) -> dict[str, list[float]]:
    """GPts/s per apply from Devito's PERF lines: 'global' and the stencil 'section0'."""
    out: dict[str, list[float]] = {"global": [], "section0": []}
    for line in lines:
        line = re.sub(r"\x1b\[[0-9;]*m", "", line)
        m = re.search(r"([\d.]+) GPts/s", line)
        if not m:
            continue
        if line.startswith("Global performance:"):
            out["global"].append(float(m.group(1)))
        elif re.match(r"\s*\* section0\b", line):
            out["section0"].append(float(m.group(1)))
    return out


class CpuWatch:
    """CPU seconds per second used by other processes (system busy time minus this process and
    its reaped children) and stolen by the hypervisor, per lap: is the machine quiet?"""

    def __init__(self) -> None:
        self.last = self._read()

    @staticmethod
    def _read() -> tuple[float, float, float, float]:
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:9]]
        hz = os.sysconf("SC_CLK_TCK")
        t = os.times()
        return (time.monotonic(), (v[0] + v[1] + v[2] + v[5] + v[6]) / hz,
                t.user + t.system + t.children_user + t.children_system, v[7] / hz)

    def lap(self) -> tuple[float, float]:
        now = self._read()
        dt = now[0] - self.last[0]
        others = max(0.0, (now[1] - self.last[1]) - (now[2] - self.last[2])) / dt
        steal = (now[3] - self.last[3]) / dt
        self.last = now
        return others, steal


# -- plain loops and the triad (this process, before Prefect) ----------------------------------------
class Plain:
    """One Model and one compiled operator; ``forward()`` per shot, as the survey step calls it."""

    def __init__(self, n: int, shots: int, record: float):
        import numpy as np

        from pipelines.config import load_study
        from pipelines.registry import models
        from tasks.seismic.geometry import acquisition
        from tasks.seismic.model import Model, build_model

        self.sets = overrides(n, shots, record)
        cfg = load_study("seismic_survey", "small", self.sets, models()).config
        self.so, self.nbl = cfg.simulation.space_order, cfg.simulation.nbl
        vel = build_model(**cfg.model.model_dump())
        self.geo = acquisition(vel, **cfg.geometry.model_dump(), space_order=self.so)
        self.vel, self.shots = vel, shots
        self.nt = self.geo.sizes["time"]
        self.dt = float(self.geo.attrs["dt"])
        self.padded = (n + 2 * self.nbl) ** 2
        t0 = time.perf_counter()
        self.model = Model(vel, space_order=self.so, nbl=self.nbl, dtype=np.float32)
        self.t_model = time.perf_counter() - t0
        t0 = time.perf_counter()
        self.shot(0)  # compile (or load from the JIT cache) + first run
        self.t_first = time.perf_counter() - t0

    def shot(self, s: int, threads: int | None = None) -> float:
        from tasks.seismic.geometry import shot_positions
        from tasks.seismic.solver import forward

        t0 = time.perf_counter()
        src, rec = shot_positions(self.geo, s, self.model.dims)
        forward(self.model, src, self.geo.wavelet.values, rec, self.dt, threads=threads)
        return time.perf_counter() - t0

    def loop(self, threads: int | None = None, shots: int | None = None) -> list[float]:
        return [self.shot(s, threads) for s in range(shots or self.shots)]

    def pure(self) -> list[float]:  # the pure piece function on a one-shot geometry, per call
        from tasks.seismic.solver import survey_shots

        out = []
        for s in range(self.shots):
            t0 = time.perf_counter()
            survey_shots(self.vel, self.geo.isel(shot=[s]), space_order=self.so, nbl=self.nbl)
            out.append(time.perf_counter() - t0)
        return out


def perf_report(plain: Plain, clear_operator_cache, shots: int | None = None) -> dict[str, list[float]]:
    """GPts/s as Devito reports it: the operator rebuilt with Devito's advanced profiler (the
    timing loops above use the default, cheaper one, as the flow does), then forgotten again."""
    clear_operator_cache()
    with devito_perf() as lines:
        plain.shot(0)  # build
        lines.clear()
        plain.loop(shots=shots)
    clear_operator_cache()  # whatever runs next builds the default one again
    return devito_gpts(lines)


def triad(n_side: int, threads_list: list[int], reps: int = 20) -> dict:
    """STREAM triad a = b + s*c on n_side² float32: GB/s by Devito (C timer) per thread count, numpy."""
    import numpy as np
    from devito import Constant, Eq, Function, Grid, Operator

    grid = Grid(shape=(n_side, n_side), dtype=np.float32)
    a, b, c = (Function(name=name, grid=grid, space_order=0) for name in "abc")
    b.data[:] = 1.0
    c.data[:] = 2.0
    a.data[:] = 0.0
    s = Constant(name="s", dtype=np.float32, value=3.0)
    op = Operator([Eq(a, b + s * c)], name="Triad")
    nbytes = TRIAD_BYTES * n_side**2
    out = {"points": n_side**2, "array_mb": 4 * n_side**2 / 1e6}
    for threads in threads_list:
        best = min(next(iter(op.apply(nthreads=threads).values())).time for _ in range(reps))
        out[threads] = nbytes / best / 1e9
    assert float(a.data[1, 1]) == 7.0
    an, bn, cn = (np.asarray(f.data) for f in (a, b, c))
    times = []
    for _ in range(max(3, reps // 4)):
        t0 = time.perf_counter()
        np.multiply(cn, np.float32(3.0), out=an)
        np.add(an, bn, out=an)
        times.append(time.perf_counter() - t0)
    out["numpy"] = nbytes / min(times) / 1e9
    return out


# -- flows on a cluster ------------------------------------------------------------------------------
class Flows:
    """Study runs of seismic_survey on one data root; each run gets a new noise seed."""

    def __init__(self, root: Path):
        from data_catalog import Catalog
        from pipelines.registry import load_flow

        self.cat = Catalog(root)
        self.flow = load_flow("seismic_survey")
        self.seed = 0

    def run(self, sets: list[str], address: str | None = None) -> dict:
        import numpy as np

        from flows.study import run_study
        from pipelines.config import load_study
        from pipelines.registry import models

        self.seed += 1
        cfg = load_study("seismic_survey", "small", sets + [f"simulation.seed={self.seed}"], models()).config
        t0 = time.perf_counter()
        res = run_study(self.flow, cfg.model_dump(mode="json"), catalog=self.cat, study="seismic_survey",
                        preset="small", overrides=sets, address=address, t_start=t0)
        wall = time.perf_counter() - t0
        step = next(s for s in res.steps if s.step == "survey")
        assert step.status == "computed", step
        shots = cfg.geometry.n_shots
        marks = np.sort([p.stat().st_mtime_ns for p in
                         Path(res.outputs["shot_records"].uri).glob(".strata/regions/*")]) / 1e9
        per_piece = shots / len(marks)  # shots between two markers
        steady = (marks[-1] - marks[0]) / ((len(marks) - 1) * per_piece) if len(marks) > 1 else float("nan")
        return {"per_shot": step.seconds / shots, "steady": steady, "step": step.seconds, "wall": wall,
                "startup": res.timings["prefect_startup_s"], "between": list(np.diff(marks))}

    def close(self) -> None:
        self.cat.close()


def on_cluster(flows: Flows, workers: int, threads: int, jobs: list[tuple[str, list[str], int]]) -> dict:
    """Start a Prefect server + LocalCluster of ``workers`` × ``threads`` (as ``--workers``), then
    for each (name, overrides, measured runs): one warm-up run (compiles the workers' operators),
    then the measured runs."""
    from flows.runtime import Runtime

    rt = Runtime(flows.cat.storage.cache_dir() / "prefect", workers=workers)
    rt.threads = threads  # Runtime picks cores // workers; the benchmark also wants 1 × 1
    t0 = time.perf_counter()
    out: dict = {}
    with rt:
        out["up"] = {"server": rt.server_seconds, "cluster": rt.cluster_seconds, "total": time.perf_counter() - t0}
        for name, sets, runs in jobs:
            first = flows.run(sets, rt.cluster.scheduler_address)
            out[name] = {"first": first, "warm": [flows.run(sets, rt.cluster.scheduler_address) for _ in range(runs)]}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=401)
    ap.add_argument("--shots", type=int, default=16)
    ap.add_argument("--record", type=float, default=1.0, help="record length (s)")
    ap.add_argument("--rounds", type=int, default=2, help="measured flow runs per configuration")
    ap.add_argument("--big", type=int, default=4001, help="model side for (e)")
    ap.add_argument("--big-shots", type=int, default=2)
    ap.add_argument("--big-record", type=float, default=0.25, help="record length (s) for (e)")
    ap.add_argument("--segy-mb", type=float, default=200.0)
    ap.add_argument("--per-task", type=int, default=8,
                    help="(a) also with this many one-shot chunks per task (simulation.pieces_per_task; 0: skip)")
    ap.add_argument("--serial", action="store_true", help="also the flow serial (ephemeral Prefect, in process)")
    ap.add_argument("--skip", default="", help="comma list of parts to skip: b, d, e")
    args = ap.parse_args()
    skip = set(filter(None, args.skip.split(",")))

    from flows.runtime import cores, prefect_env

    ncores = cores()
    os.environ.setdefault("OMP_NUM_THREADS", str(ncores))
    os.environ.setdefault("DEVITO_LANGUAGE", "openmp")
    os.environ.setdefault("DEVITO_LOGGING", "WARNING")
    threads = int(os.environ["OMP_NUM_THREADS"])
    tmp = Path(tempfile.mkdtemp(prefix="bench-survey-"))
    root = tmp / "root"
    (root / "prefect").mkdir(parents=True)
    os.environ.update(prefect_env(root / "prefect"))  # before Prefect is imported
    cpu = CpuWatch()
    t_start = time.perf_counter()

    # -- plain loops, Devito's report, triad ------------------------------------------------------------
    from tasks.seismic.solver import clear_operator_cache

    small = Plain(args.n, args.shots, args.record)
    print(f"grid {args.n}x{args.n} (+{small.nbl} per side = {small.padded / 1e6:.3f} Mpts), {small.nt} steps of "
          f"{small.dt * 1e3:.3g} ms, {args.shots} shots x {args.n} receivers, space order {small.so}; "
          f"{ncores} cores, OMP_NUM_THREADS={threads}", flush=True)
    plain = [t for _ in range(args.rounds) for t in small.loop()]  # Devito's basic profiler, as in the flow
    pure = small.pure()
    plain1 = small.loop(threads=1) if "b" not in skip and threads > 1 else []
    dev = perf_report(small, clear_operator_cache)
    big = tri = None
    big_plain: list[float] = []
    if "e" not in skip:
        big = Plain(args.big, args.big_shots, args.big_record)
        big_plain = big.loop()
        big_dev = perf_report(big, clear_operator_cache, shots=1)
        big_nt, big_padded = big.nt, big.padded
        tri = triad(int(round(big_padded**0.5)), sorted({threads, 1}, reverse=True))
        del big
    phases = [("plain loops + triad", *cpu.lap())]

    # -- flows --------------------------------------------------------------------------------------------
    flows = Flows(root)
    sets = small.sets
    big_sets = overrides(args.big, args.big_shots, args.big_record)
    serial = None
    if args.serial:  # ephemeral Prefect in this process, ThreadPoolTaskRunner(1): the no-flag runner
        serial = {"first": flows.run(sets), "warm": [flows.run(sets) for _ in range(args.rounds)]}
        phases.append(("serial flows", *cpu.lap()))
    configs = [(1, threads)]
    if "b" not in skip:
        configs += [(2, 1), (1, 1)] if threads >= 2 else []
    results = {}
    for w, th in configs:
        jobs = [("small", sets, args.rounds)]
        if (w, th) == (1, threads) and args.per_task > 1:
            jobs.append(("per_task", sets + [f"simulation.pieces_per_task={args.per_task}"], args.rounds))
        if (w, th) == (1, threads) and "e" not in skip:
            jobs.append(("big", big_sets, 1))
        results[(w, th)] = on_cluster(flows, w, th, jobs)
        phases.append((f"flows on {w} x {th}", *cpu.lap()))
    flows.close()

    # -- SEG-Y ----------------------------------------------------------------------------------------------
    segy = None
    if "d" not in skip:
        import bench_segy

        segy = bench_segy.measure(args.segy_mb, repeat=5)
        phases.append(("SEG-Y", *cpu.lap()))

    # -- report ---------------------------------------------------------------------------------------------
    print(f"whole benchmark {time.perf_counter() - t_start:.0f} s on {ncores} cores. CPU used by other processes "
          f"(cores busy, average) / stolen by the hypervisor, per phase:")
    print("  " + "; ".join(f"{name} {o:.2f} / {st:.2f}" for name, o, st in phases))
    if serial:
        print("  (the serial phase counts this process's own ephemeral Prefect server, still running, as other)")
    bp = statistics.median(plain)
    main_cfg = results[(1, threads)]
    fa = [r["per_shot"] for r in main_cfg["small"]["warm"]]
    fs = [r["steady"] for r in main_cfg["small"]["warm"]]
    up = main_cfg["up"]
    print(f"\n(a) seconds per shot, {args.shots} shots on {args.n}x{args.n}; flow on a warm 1 worker x {threads} "
          f"threads cluster, {args.rounds} runs")
    print(f"  plain forward() loop, {threads} threads   {stats(plain)}   (once: Model build {small.t_model:.2f} s, "
          f"first shot incl. compile {small.t_first:.2f} s)")
    print(f"  survey_shots, 1 shot per call     {stats(pure)}   (pure piece function: + Model build, xarray)")
    print(f"  flow: survey step / shots         {stats(fa)}")
    print(f"  flow: steady, between markers     {stats(fs)}")
    print(f"  ratio flow / plain (medians)      {statistics.median(fa) / bp:.2f}   (goal <= 1.10); steady "
          f"{statistics.median(fs) / bp:.2f}")
    if "per_task" in main_cfg:
        fk = [r["per_shot"] for r in main_cfg["per_task"]["warm"]]
        print(f"  flow, {args.per_task} shots per task      {stats(fk)}   ratio {statistics.median(fk) / bp:.2f} "
              f"(goal <= 1.10; chunks and resume markers stay one shot each)")
    first = main_cfg["small"]["first"]
    print(f"  start-up, apart: Prefect server {up['server']:.1f} s + LocalCluster {up['cluster']:.1f} s (once); "
          f"flow-run start {statistics.median([r['startup'] for r in main_cfg['small']['warm']]):.2f} s per run; "
          f"first run (compiles in the worker) {first['per_shot']:.3f} s/shot")
    if serial:
        sw = [r["per_shot"] for r in serial["warm"]]
        print(f"  serial runner (ephemeral Prefect in process): step / shots {stats(sw)} "
              f"-> ratio {statistics.median(sw) / bp:.2f}; start-up {serial['first']['startup']:.1f} s first run")

    if "b" not in skip and len(configs) > 1:
        print("\n(b) workers x threads: flow per shot (survey step / shots, median of warm runs), shots/s")
        ref = {threads: bp, 1: statistics.median(plain1) if plain1 else bp}
        print(f"  plain loop: {threads} threads {ref[threads]:.3f} s/shot, 1 thread {ref[1]:.3f} s/shot")
        for (w, th), res in results.items():
            per = statistics.median([r["per_shot"] for r in res["small"]["warm"]])
            st = statistics.median([r["steady"] for r in res["small"]["warm"]])
            print(f"  {w} worker{'s' if w > 1 else ' '} x {th} thread{'s' if th > 1 else ' '}: {per:.3f} s/shot "
                  f"({1 / per:5.2f} shots/s; steady {st:.3f}); vs plain {th}-thread loop {per / ref[th]:.2f}x; "
                  f"start-up server {res['up']['server']:.1f} s + cluster {res['up']['cluster']:.1f} s")

    print("\n(c) GPts/s (padded points x time steps / s)")
    if dev["global"]:
        sec = stats(dev["section0"]) if dev["section0"] else "n/a"
        print(f"  Devito's report, plain loop ({len(dev['global'])} applies): global {stats(dev['global'])} GPts/s; "
              f"stencil section0 {sec} GPts/s")
    print(f"  wall per shot: plain best {small.padded * small.nt / min(plain) / 1e9:.2f}, median "
          f"{small.padded * small.nt / bp / 1e9:.2f}; flow (step / shots) median "
          f"{small.padded * small.nt / statistics.median(fa) / 1e9:.2f} GPts/s")

    if segy is not None:
        print(f"\n(d) SEG-Y read-and-decode vs segyio, {segy[0]['traces']} traces x {segy[0]['samples']} samples, "
              f"{segy[0]['words']} header words (bench_segy.measure)")
        bench_segy.report(segy, indent="  ")

    if tri is not None:
        roof = tri[threads] * 1e9 / BYTES_PER_POINT / 1e9
        bres = main_cfg["big"]
        bper = bres["warm"][0]["per_shot"]
        flow_g = big_padded * big_nt / bper / 1e9
        plain_g = big_padded * big_nt / statistics.median(big_plain) / 1e9
        print(f"\n(e) {args.big}x{args.big} ({big_padded / 1e6:.1f} Mpts padded), {args.big_shots} shots x {big_nt} "
              f"steps; roofline = triad / {BYTES_PER_POINT} B per point")
        thr = ", ".join(f"{t} thread{'s' if t > 1 else ''} {tri[t]:.1f}" for t in sorted({threads, 1}, reverse=True))
        print(f"  STREAM triad (Devito Operator, C + OpenMP, float32, 3 x {tri['array_mb']:.0f} MB, "
              f"{TRIAD_BYTES} B/pt): {thr} GB/s; numpy (single-threaded) {tri['numpy']:.1f} GB/s")
        print(f"  roofline on {threads} threads: {roof:.2f} GPts/s")
        print(f"  survey flow (warm 1 x {threads} cluster) {bper:.2f} s/shot = {flow_g:.2f} GPts/s -> "
              f"{flow_g / roof:.2f} of roofline (goal >= 0.75)")
        print(f"  plain loop {statistics.median(big_plain):.2f} s/shot = {plain_g:.2f} GPts/s ({plain_g / roof:.2f}); "
              f"Devito's report: global {max(big_dev['global'], default=float('nan')):.2f}, section0 "
              f"{max(big_dev['section0'], default=float('nan')):.2f} GPts/s "
              f"({max(big_dev['section0'], default=float('nan')) / roof:.2f} of roofline)")
        print(f"  flow first run (compiles the {args.big}² operator; model, geometry written) "
              f"{bres['first']['per_shot']:.2f} s/shot")


if __name__ == "__main__":
    main()
