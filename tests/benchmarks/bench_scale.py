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
(d) what an S3 root costs in requests (moto on loopback, every request it answers counted by operation: HEAD, GET,
    LIST, PUT, DELETE): ``strata run seismic_survey --preset tiny`` on a fresh S3 root (the CLI, as a user runs it);
    then the same run in process, its requests per piece of the mapped survey step, per whole dataset, per
    completion, and per open of each output (strata's ``Storage.open`` and a user's plain ``xr.open_zarr(uri)``),
    each with its wall time beside that on a local root (moto answers in this process: on a busy
    machine its wall times are rough; the request counts are exact). The tiny survey cost 796 requests before
    consolidated metadata and the request cuts, 327 after (docs/architecture.md, object-store roots).

Usage: .venv/bin/python tests/benchmarks/bench_scale.py [--nx 801] [--nz 401] [--shots 16] [--record 3.0]
       [--rounds 3] [--skip a,b,c,d]
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


def _requests_cli(moto, root: str, cache: str) -> tuple[object, float]:
    """(the requests of ``strata run seismic_survey --preset tiny`` on ``root``, its wall seconds), the CLI in a
    fresh process with ephemeral Prefect."""
    env = {**os.environ, "STRATA_CACHE_DIR": cache, "STRATA_EPHEMERAL": "1"}
    env.pop("PREFECT_API_URL", None)
    mark, t0 = moto.mark(), time.perf_counter()
    subprocess.run([sys.executable, "-m", "pipelines.cli", "run", "seismic_survey", "--preset", "tiny", "--root",
                    root, "--json"], cwd=REPO, env=env, check=True, capture_output=True, text=True)
    return moto.since(mark), time.perf_counter() - t0


class _Phases:
    """Requests and wall seconds of each call of some functions of the run (the outermost one counts)."""

    def __init__(self, moto):
        self.moto, self.active = moto, False
        self.calls: dict[str, list[tuple[object, float]]] = {}
        self.io: dict[int, float] = {}  # piece index: seconds of its storage calls
        self._undo: list[tuple[object, str, object]] = []

    def wrap(self, owner, name: str, label: str) -> None:
        fn = getattr(owner, name)

        def counted(*args, **kwargs):
            if self.active:
                return fn(*args, **kwargs)
            self.active, mark, t0 = True, self.moto.mark() if self.moto else 0, time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                seconds = time.perf_counter() - t0
                self.calls.setdefault(label, []).append((self.moto.since(mark) if self.moto else None, seconds))
                self.active = False

        setattr(owner, name, counted)
        self._undo.append((owner, name, fn))

    def time_io(self, owner, name: str) -> None:
        """Add the seconds of each call of ``owner.name`` to :attr:`io` under the piece going on (its index)."""
        fn = getattr(owner, name)

        def timed(*args, **kwargs):
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                piece = len(self.calls.get("piece", []))
                self.io[piece] = self.io.get(piece, 0.0) + time.perf_counter() - t0

        setattr(owner, name, timed)
        self._undo.append((owner, name, fn))

    def restore(self) -> None:
        for owner, name, fn in reversed(self._undo):
            setattr(owner, name, fn)
        self._undo.clear()


def _tiny_in_process(root: str, moto) -> tuple[_Phases, dict[str, str], float]:
    """The tiny survey run in process on ``root`` (a fresh one), its calls counted; (phases, outputs' uris, wall s)."""
    import flows.execute
    from data_catalog.catalog import Catalog
    from data_catalog.regions import RegionWriter
    from flows.study import run_study
    from pipelines.config import load_study
    from pipelines.registry import load_flow, models

    phases = _Phases(moto)
    phases.wrap(flows.execute, "compute_pieces", "piece")  # a task of one piece: in process, one piece per task
    phases.wrap(flows.execute, "compute_whole", "whole dataset (compute + write)")
    phases.wrap(Catalog, "finish", "completion of the mapped dataset")
    phases.wrap(Catalog, "claim", "claim")
    for name in ("laid_out", "done", "ensure_layout", "write"):  # a piece's storage calls (flows.pieces)
        phases.time_io(RegionWriter, name)
    loaded = load_study("seismic_survey", "tiny", [], models())
    cat = Catalog(root)
    t0 = time.perf_counter()
    try:
        res = run_study(load_flow("seismic_survey"), loaded.config, catalog=cat, study="seismic_survey",
                        preset="tiny", overrides=loaded.overrides, ephemeral=True)
        wall = time.perf_counter() - t0
        uris = {name: cat.get(ref.key).uri for name, ref in res.outputs.items()}
    finally:
        phases.restore()
        cat.close()
    return phases, uris, wall


def _opens(uris: dict[str, str], moto, rounds: int) -> dict[str, dict[str, tuple[object, float]]]:
    """{output: {how: (requests of the first open, the fastest open's seconds)}}: strata's ``Storage.open`` and
    a plain ``xr.open_zarr(uri)`` (its metadata and index coordinates; no other values read)."""
    import warnings

    import xarray as xr

    from data_catalog import Storage

    out: dict[str, dict[str, tuple[object, float]]] = {}
    for name, uri in uris.items():
        storage = Storage(uri.rsplit("/datasets/", 1)[0])
        hows = {"Storage.open": lambda u=uri, s=storage: s.open(u),
                "xr.open_zarr(uri)": lambda u=uri: xr.open_zarr(u)}
        out[name] = {}
        for how, fn in hows.items():
            first, best = None, float("inf")
            for _ in range(rounds):
                mark, t0 = moto.mark() if moto else 0, time.perf_counter()
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # tests/data_catalog/test_consolidated.py checks there is none
                    fn().close()
                best = min(best, time.perf_counter() - t0)
                first = first or (moto.since(mark) if moto else None)
            out[name][how] = (first, best)
    return out


def _where(key: str) -> str:
    """What a request of the root was about."""
    name = key.rsplit("/", 1)[-1]
    if "/.strata/regions" in key:
        return "region markers"
    if "/.strata/template" in key or key.endswith(".layout-claim"):
        return "layout (claim, template marker)"
    if "/datasets/" not in key:
        return "root (lease, format marker)"
    if name == "zarr.json" or key.rstrip("/").endswith(".zarr"):
        return "zarr metadata (and listings of a group)"
    return "chunks (and listings of an array)"


def _ms(calls: list[tuple[object, float]]) -> float:
    """Median milliseconds of some calls."""
    seconds = sorted(s for _, s in calls)
    return 1e3 * seconds[len(seconds) // 2] if seconds else float("nan")


def part_d(args) -> None:
    from tests.data_catalog.s3_requests import CountingMotoServer, Tally

    moto = CountingMotoServer()
    moto.start()
    os.environ.update({"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                       "AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT_URL": moto.url})
    os.environ["STRATA_CACHE_DIR"] = tempfile.mkdtemp(prefix="bench-scale-cache-")
    try:
        import s3fs

        s3fs.S3FileSystem(client_kwargs={"endpoint_url": moto.url}).mkdir("bench-requests")
        cli, cli_s = _requests_cli(moto, "s3://bench-requests/cli", tempfile.mkdtemp(prefix="bench-scale-cache-"))
        print(f"(d) strata run seismic_survey --preset tiny (CLI, ephemeral Prefect) on a fresh S3 root (moto on "
              f"loopback): {cli} requests in {cli_s:.1f} s")
        by_where: dict[str, list[tuple[str, str]]] = {}
        for op, key in cli.keys:
            by_where.setdefault(_where(key), []).append((op, key))
        for where, keys in sorted(by_where.items(), key=lambda kv: -len(kv[1])):
            print(f"    {where}: {Tally(keys)}")
        # in process, moto's server shares this process: OpenMP threads must not spin while it answers
        os.environ.setdefault("OMP_WAIT_POLICY", "passive")
        _tiny_in_process(tempfile.mkdtemp(prefix="bench-scale-warm-"), None)  # imports, Prefect, operators
        runs = {}
        for name, root in (("local", tempfile.mkdtemp(prefix="bench-scale-local-")),
                           ("s3", "s3://bench-requests/in-process")):
            counted = moto if name == "s3" else None
            mark = moto.mark()
            phases, uris, wall = _tiny_in_process(root, counted)
            run = moto.since(mark)
            runs[name] = (phases, _opens(uris, counted, args.rounds), wall, run)
        (s3p, s3o, s3w, s3run), (lop, loo, low, _) = runs["s3"], runs["local"]
        print(f"    the same run in process: {s3run} requests; {s3w:.1f} s on S3, {low:.1f} s on a local root "
              f"(ratio {s3w / low:.2f})")
        io = {name: [1e3 * t for i, t in sorted(p.io.items()) if i > 0] for name, p in (("s3", s3p), ("local", lop))}
        print(f"    a piece's storage calls (laid_out, done, ensure_layout, write; the pieces after the first): "
              f"{sum(io['s3']) / max(1, len(io['s3'])):.0f} ms on S3, "
              f"{sum(io['local']) / max(1, len(io['local'])):.0f} ms local (mean)")
        for label, calls in s3p.calls.items():
            tally = Tally([k for t, _ in calls for k in t.keys])
            per = ", ".join(f"{op} {n:.1f}" for op, n in (tally / len(calls)).items() if op != "total")
            print(f"    per {label} ({len(calls)}): {tally.total / len(calls):.1f} requests ({per}); "
                  f"{_ms(calls):.0f} ms on S3, {_ms(lop.calls.get(label, [])):.0f} ms local (median)")
            if label == "piece" and len(calls) > 1:
                print(f"      the first piece (loads its inputs, lays the dataset out): {calls[0][0]}; each other: "
                      f"{', '.join(sorted({str(t) for t, _ in calls[1:]}))}; {_ms(calls[1:]):.0f} ms on S3, "
                      f"{_ms(lop.calls['piece'][1:]):.0f} ms local")
        for name, hows in s3o.items():
            for how, (tally, seconds) in hows.items():
                meta = sum(op == "GET" and key.endswith("zarr.json") for op, key in tally.keys)
                print(f"    open {name} with {how}: {tally} requests ({meta} metadata document(s) read); "
                      f"{seconds * 1e3:.0f} ms on S3, {loo[name][how][1] * 1e3:.0f} ms local (fastest of "
                      f"{args.rounds})")
    finally:
        moto.stop()


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
    for name, part in (("a", part_a), ("b", part_b), ("c", part_c), ("d", part_d)):
        if name not in skip:
            part(args)


if __name__ == "__main__":
    main()
