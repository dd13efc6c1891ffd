"""The per-piece cost and size of each study's paper preset on this machine (the figures of docs/scaling.md).

Each study runs its paper preset shrunk to a few pieces (fewer shots, samples, chains, epochs; the grid, the
records, the networks as in the paper preset) in memory, with no orchestration (``flows.direct.run_direct``):
per step, its seconds and the bytes of what it returns, divided by the pieces it computed; the paper preset's
piece counts come from the unshrunk config. One process per study, serial, OpenMP on every core.

Usage: .venv/bin/python tests/benchmarks/bench_paper.py [--only STUDY,...]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

# study: (preset, overrides that shrink it, {step: (pieces in the shrunk run, the paper config field giving
# the paper's count, a factor on that field)})
PLANS = {
    "seismic_survey": ("large", ["geometry.n_shots=2"], {"survey": (2, "geometry.n_shots", 1)}),
    "seismic_imaging": ("paper", ["geometry.n_shots=2", "summaries.samples=1"],
                        {"survey": (2, "geometry.n_shots", 1), "migrate": (2, "geometry.n_shots", 1),
                         # per (sample, shot): a pair's data and summaries take every shot of the survey
                         "pair_data": (2, "summaries.samples", 32), "gradient_summary": (2, "summaries.samples", 32),
                         "rtm_summary": (2, "summaries.samples", 32)}),
    "aspire_seismic": ("paper", ["geometry.n_shots=2", "aspire.train_pairs=10", "aspire.test_cases=2",
                                 "aspire.iterations=1", "training.epochs=1", "aspire.posterior_draws=8",
                                 "aspire.pieces.per_piece=2"],
                       # per (sample, shot); training per (epoch, pair); 3 iterations of gradients and training
                       {"pair_data": (20, "aspire.train_pairs", 1.016 * 16),
                        "gradient_summary": (20, "aspire.train_pairs", 1.016 * 16 * 3),
                        "train_posterior": (8, "training.epochs", 2000 * 3)}),
    "co2_forecast": ("paper", ["samples.train=4", "samples.test=2", "training.epochs=2", "inversion.iterations=0"],
                     # training per (epoch, training sample)
                     {"co2_simulation": (6, "samples.train", 1.1), "train_surrogate": (8, "training.epochs", 1000)}),
    "mad": ("paper", ["generations=1", "chains=2", "loops=[fully_synthetic]", "biases=[1.0]"],
            # per chain-generation: 10 chains x 21 generations x 3 loops x 2 biases
            {"mad_models": (4, "generations", 63), "mad_generation": (4, "generations", 63)}),
    "mad_gaussian": ("paper", ["generations=1", "chains=500"],
                     # per chain-generation: 5000 chains x 201 generations x 3 loops
                     {"generation": (3000, "generations", 15075)}),
}

CHILD = """
import json, sys, time
from flows.direct import run_direct
from pipelines.config import load_study
from pipelines.registry import load_flow, models
study, preset, sets = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
loaded = load_study(study, preset, sets, models())
paper = load_study(study, preset, [], models()).config.model_dump(mode="json")
import flows.direct as d
sizes = {}
orig = d.DirectRun.call_step
def plan(self, step, inputs, params, pieces, label):
    held = orig(self, step, inputs, params, pieces, label)
    sizes[step.name] = sizes.get(step.name, 0) + int(held.data.nbytes)
    return held
d.DirectRun.call_step = plan
t0 = time.perf_counter()
_, seconds = run_direct(load_flow(study), loaded.config)
print(json.dumps({"seconds": seconds, "bytes": sizes, "paper": paper, "total": time.perf_counter() - t0}))
"""


def _field(doc: dict, dotted: str):
    for part in dotted.split("."):
        doc = doc[part]
    return doc


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", default="")
    args = ap.parse_args()
    only = set(filter(None, args.only.split(",")))
    env = {**os.environ, "DEVITO_LANGUAGE": "openmp", "DEVITO_LOGGING": "WARNING",
           "OMP_NUM_THREADS": str(os.cpu_count())}
    for study, (preset, sets, steps) in PLANS.items():
        if only and study not in only:
            continue
        out = subprocess.run([sys.executable, "-c", CHILD, study, preset, json.dumps(sets)], cwd=REPO, env=env,
                             capture_output=True, text=True)
        if out.returncode:
            print(f"{study}: failed\n{out.stderr[-2000:]}")
            continue
        doc = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"{study} ({preset}, shrunk: {' '.join(sets)}; {doc['total']:.1f} s in memory)")
        total_s = total_b = 0.0
        for step, (done, field, factor) in steps.items():
            per_s = doc["seconds"].get(step, 0.0) / done
            per_b = doc["bytes"].get(step, 0) / done
            n = _field(doc["paper"], field) * factor
            total_s, total_b = total_s + per_s * n, total_b + per_b * n
            print(f"  {step:<18} {per_s:8.3f} s and {per_b / 2**20:8.2f} MiB per piece; x {n:g} in the paper preset "
                  f"= {per_s * n / 60:7.1f} min, {per_b * n / 2**30:6.2f} GiB")
        print(f"  {'(these steps)':<18} {total_s / 3600:.2f} hours serial on this machine, {total_b / 2**30:.2f} GiB")


if __name__ == "__main__":
    main()
