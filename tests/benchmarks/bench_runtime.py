"""Start-up figures of issue 12, measured in one run on one data root: the demo's first run (the
root's Prefect server started and overlapped with the imports), its cached rerun in ephemeral
mode, and its cached rerun attached to the root's server — wall time and the start-up split.
Also a first run on a second, new root in ephemeral mode (the reference for "no slower"), and
which heavy modules a cached rerun imports (``python -X importtime``).

Usage: .venv/bin/python tests/benchmarks/bench_runtime.py [--study seismic_imaging] [--preset small]
       [--reruns 3]

Goals: cached rerun attached <= 5 s wall and <= 10 % of the first run; the first run on a new
root, server start overlapped, no slower than an ephemeral first run.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
HEAVY = ("devito", "torch", "matplotlib", "distributed")


def run(root: Path, study: str, preset: str, *extra: str, python_flags: tuple[str, ...] = ()) -> dict:
    """One ``strata run`` in a subprocess: wall time, its JSON, its start-up split, its stderr."""
    env = {k: v for k, v in os.environ.items() if k not in ("PREFECT_API_URL", "STRATA_FAULT", "STRATA_EPHEMERAL")}
    cmd = [sys.executable, *python_flags, "-m", "pipelines.cli", "run", study, "--preset", preset,
           "--root", str(root), "--json", *extra]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=REPO, timeout=1800)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stderr[-3000:]}")
    out = json.loads(proc.stdout)
    split = json.loads((Path(out["report"]).parent / "run.json").read_text())["timings"]
    return {"wall": wall, "json": out, "split": split, "stderr": proc.stderr}


def show(label: str, r: dict) -> None:
    t = r["split"]
    rest = r["json"]["seconds"] - t["prefect_startup_s"] - t["steps_s"]
    print(f"  {label:<34} wall {r['wall']:6.2f} s | in strata {r['json']['seconds']:6.2f} s = start-up "
          f"{t['prefect_startup_s']:5.2f} (server wait {t.get('server_s', 0):4.2f}) + steps {t['steps_s']:5.2f} + "
          f"report/exit {rest:4.2f}; computed {len(r['json']['computed'])}, reused {len(r['json']['reused'])}")


def imports_of(stderr: str) -> dict[str, float]:
    """Cumulative import seconds of the top-level heavy modules a process imported (-X importtime)."""
    found: dict[str, float] = {}
    for line in stderr.splitlines():
        m = re.match(r"import time:\s+\d+ \|\s+(\d+) \|\s*(\S+)$", line)
        if m and m.group(2) in HEAVY + ("prefect", "xarray", "zarr", "dask", "pipelines.cli"):
            found[m.group(2)] = max(found.get(m.group(2), 0.0), int(m.group(1)) / 1e6)
    return found


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--study", default="seismic_imaging")
    ap.add_argument("--preset", default="small")
    ap.add_argument("--reruns", type=int, default=3, help="cached reruns of each kind (median reported)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="strata-bench-runtime-") as tmp:
        root, other = Path(tmp) / "root", Path(tmp) / "ephemeral-root"
        try:
            print(f"{args.study} preset {args.preset}; {os.cpu_count()} cores")
            first = run(root, args.study, args.preset)
            show("first run, root server started", first)
            eph_first = run(other, args.study, args.preset, "--ephemeral")
            show("first run, new root, ephemeral", eph_first)
            ephemeral = [run(root, args.study, args.preset, "--ephemeral") for _ in range(args.reruns)]
            attached = [run(root, args.study, args.preset) for _ in range(args.reruns)]
            for i, r in enumerate(ephemeral):
                show(f"cached rerun, ephemeral #{i + 1}", r)
            for i, r in enumerate(attached):
                show(f"cached rerun, attached #{i + 1}", r)
            traced = run(root, args.study, args.preset, python_flags=("-X", "importtime"))
            med_att = statistics.median(r["wall"] for r in attached)
            med_eph = statistics.median(r["wall"] for r in ephemeral)
            print("\nsummary")
            print(f"  cached rerun attached: {med_att:.2f} s wall (goal <= 5 s); {100 * med_att / first['wall']:.1f} % "
                  f"of the first run (goal <= 10 %)")
            print(f"  cached rerun ephemeral: {med_eph:.2f} s wall ({med_eph / med_att:.1f}x attached)")
            print(f"  first run with the server start overlapped {first['wall']:.2f} s vs ephemeral first run "
                  f"{eph_first['wall']:.2f} s: ratio {first['wall'] / eph_first['wall']:.2f} (goal <= 1.0)")
            heavy = imports_of(traced["stderr"])
            listed = ", ".join(f"{k} {v:.2f}" for k, v in sorted(heavy.items()))
            print(f"  a cached rerun imports (cumulative s): {listed}")
            print(f"  devito imported: {'devito' in heavy}; torch imported: {'torch' in heavy} (goal: neither)")
        finally:
            subprocess.run([sys.executable, "-m", "pipelines.cli", "server", "stop", "--root", str(root)], cwd=REPO,
                           capture_output=True, timeout=60)


if __name__ == "__main__":
    main()
