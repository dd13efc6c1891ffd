"""Figures of issue 15 (MAD loops), in one run: seconds per generation (per chain) of each model family,
and the speed-up of chains mapped on 2 Dask workers vs 1 (``strata run mad --workers N``, steps only, no
Prefect start-up) next to the speed-up of the same work (the real data, then per generation each chain's models
and scores) in a plain process pool.

Usage: .venv/bin/python tests/benchmarks/bench_mad.py [--chains 8] [--generations 2] [--family flow]

Goal: the Dask speed-up ≥ 0.95 of the process pool's.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from pipelines.config import load_study  # noqa: E402
from pipelines.registry import models  # noqa: E402
from tasks.generative import mad  # noqa: E402


def _overrides(args) -> list[str]:
    return [f"family={args.family}", "loops=[fully_synthetic]", "biases=[1.0]", f"chains={args.chains}",
            f"generations={args.generations}", "pieces.per_piece=1", "pieces.per_task=1"]


def _study_steps(workers: int, args) -> float:
    """Steps seconds of one fresh ``strata run mad`` on ``workers`` Dask workers."""
    root = Path(tempfile.mkdtemp(prefix="bench-mad-"))
    sets = [a for o in _overrides(args) for a in ("--set", o)]
    env = {k: v for k, v in os.environ.items() if k not in ("PREFECT_API_URL", "STRATA_FAULT")}
    cmd = [sys.executable, "-m", "pipelines.cli", "run", "mad", "--preset", "small", "--root", str(root),
           "--workers", str(workers), "--ephemeral", "--json", *sets]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=REPO, timeout=3600)
    if proc.returncode:
        sys.exit(f"{' '.join(cmd)} failed:\n{proc.stderr[-3000:]}")
    report = Path(json.loads(proc.stdout)["report"])
    return json.loads((report.parent / "run.json").read_text())["timings"]["steps_s"]


def _piece(real, prev, chain: int, kw: dict):
    """One chain's generation as the study computes it: its models, then their samples and metrics."""
    score = {k: kw.pop(k) for k in ("n_eval", "k")}
    models = mad.fit_chains(real, prev, chains=np.array([chain]), **kw)
    mad.generation(real, models, chains=np.array([chain]), seed=kw["seed"], **score)
    return models


def _pool(workers: int, real_kw: dict, kw: dict, chains: int, generations: int) -> float:
    """The same work as the study's steps in a plain process pool: the real data (one task), then generation
    by generation each chain's models and their scores (one chain per task)."""
    t0 = time.perf_counter()
    spawn = multiprocessing.get_context("spawn")  # a fork after torch has started threads hangs
    with ProcessPoolExecutor(workers, mp_context=spawn) as pool:
        real = pool.submit(_real, real_kw).result()
        prev = [None] * chains
        for t in range(generations + 1):
            prev = list(pool.map(_piece, [real] * chains, prev, range(chains), [{**kw, "generation": t}] * chains))
    return time.perf_counter() - t0


def _real(real_kw: dict):
    return mad.real_data(**real_kw)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--chains", type=int, default=8)
    ap.add_argument("--generations", type=int, default=2)
    ap.add_argument("--family", default="flow")
    args = ap.parse_args()
    cfg = load_study("mad", "small", _overrides(args), models()).config
    d = cfg.data
    real_kw = {"kind": d.kind, "pool": d.pool, "held_out": d.held_out, "components": d.components, "seed": cfg.seed,
               "ring_options": {"modes": d.modes, "radius": d.radius, "std": d.std}}
    real = mad.real_data(**real_kw)
    base = {"loop": "fully_synthetic", "lam": 1.0, "n": cfg.n, "n_synth": cfg.n_synth, "n_fresh": cfg.n_fresh,
            "n_eval": cfg.n_eval, "k": cfg.k, "seed": cfg.seed}
    print(f"mad small, ring data, n = {cfg.n} real points per chain, {cfg.n_eval} scored samples")
    for family, options in (("gaussian", {}), ("mixture", cfg.mixture.model_dump()), ("flow", cfg.flow.model_dump())):
        kw = {**base, "family": family, "options": options}
        t0 = time.perf_counter()
        g0 = _piece(real, None, 0, {**kw, "generation": 0})
        t1 = time.perf_counter()
        _piece(real, g0, 0, {**kw, "generation": 1})
        t2 = time.perf_counter()
        print(f"  {family:9s} {t1 - t0:.3f} s per chain at generation 0, {t2 - t1:.3f} s at generation 1")
    opts = {"gaussian": {}, "mixture": cfg.mixture.model_dump(), "flow": cfg.flow.model_dump()}[args.family]
    kw = {**base, "family": args.family, "options": opts}
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    p1, p2 = (_pool(w, real_kw, kw, args.chains, args.generations) for w in (1, 2))
    s1, s2 = (_study_steps(w, args) for w in (1, 2))
    print(f"{args.family}, {args.chains} chains x {args.generations + 1} generations:")
    print(f"  process pool: 1 worker {p1:.1f} s, 2 workers {p2:.1f} s -> speed-up {p1 / p2:.2f}")
    print(f"  strata (Dask): 1 worker {s1:.1f} s, 2 workers {s2:.1f} s -> speed-up {s1 / s2:.2f}")
    print(f"  Dask speed-up / process-pool speed-up: {(s1 / s2) / (p1 / p2):.2f} (goal >= 0.95)")


if __name__ == "__main__":
    main()
