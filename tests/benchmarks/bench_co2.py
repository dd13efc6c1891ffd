"""Figures of issue 14 (CO2 forecasting), in one run: the FNO's forecast time per sample at batch 16 against
the simulator's time per sample (same fields, same machine, same run), the held-out relative L2 error of
the study's preset, and the simulator's work per sample (pressure solves, transport sub-steps, seconds per
cell and step), so that the ratio is not flattered by a slow simulator. For context, the forecast time of a
3D (x, z, t) FNO of the same width on the same grid (untrained: its timing does not depend on training).

Usage: .venv/bin/python tests/benchmarks/bench_co2.py [--preset small] [--root DIR] [--threads 2] [--cases 16]

The held-out error comes from running the study (``strata run co2_forecast --preset P --workers 2``) on
``--root`` (default: a folder under the system temp dir, kept: a second run reuses everything).
Goals: forecast ≥ 100× faster than the simulator per sample; held-out relative L2 ≤ 10 % (small preset).
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

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from data_catalog import Catalog  # noqa: E402
from pipelines.config import load_study  # noqa: E402
from pipelines.registry import models  # noqa: E402
from tasks.co2.fields import rock_samples  # noqa: E402
from tasks.co2.simulator import simulate_samples  # noqa: E402
from tasks.co2.surrogate import FNOSurrogate, _fno_class, features  # noqa: E402
from tasks.nn.checkpoint import from_dataset  # noqa: E402


def _per_sample(fn, x: torch.Tensor, repeats: int = 5) -> float:
    with torch.no_grad():
        fn(x)
        t0 = time.perf_counter()
        for _ in range(repeats):
            fn(x)
    return (time.perf_counter() - t0) / repeats / x.shape[0]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--preset", default="small")
    ap.add_argument("--root", default=str(Path(tempfile.gettempdir()) / "strata-bench-co2"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--cases", type=int, default=16, help="fields timed with the simulator (and batch of the FNO)")
    args = ap.parse_args()
    cfg = load_study("co2_forecast", args.preset, [], models()).config
    r, f = cfg.rock, cfg.flow

    # 1. the study: trained FNO and its held-out errors (computed once per root, then reused)
    t0 = time.perf_counter()
    env = {**os.environ, "STRATA_HOME": args.root}
    proc = subprocess.run([sys.executable, "-m", "pipelines.cli", "run", "co2_forecast", "--preset", args.preset,
                           "--workers", "2", "--json"], capture_output=True, text=True, env=env, cwd=REPO)
    if proc.returncode:
        sys.exit(f"the study failed:\n{proc.stderr[-3000:]}")
    study_s = time.perf_counter() - t0
    outputs = json.loads(proc.stdout)["outputs"]
    cat = Catalog(Path(args.root))
    try:
        metrics = cat.open(outputs["forecast_metrics"]).load()
        model = from_dataset(cat.open(outputs["checkpoint"]).load()).module
        history = cat.open(outputs["checkpoint"]).attrs["history"]
    finally:
        cat.close()

    # 2. the simulator on new fields, one at a time (as the study's pieces do)
    rock = rock_samples(np.arange(args.cases) + 10**8, seed=cfg.samples.seed + 1, **r.sampler_params())
    flow = f.simulator_params()
    t0 = time.perf_counter()
    sims = [simulate_samples(rock.isel(sample=[i]), **flow) for i in range(args.cases)]
    sim_s = (time.perf_counter() - t0) / args.cases
    solves = np.mean([int(s.pressure_solves.values[0]) for s in sims])
    steps = np.mean([int(s.transport_steps.values[0]) for s in sims])
    cells = r.shape[0] * r.shape[1]

    # 3. the FNO at batch `cases`, and a 3D FNO of the same width for context
    torch.set_num_threads(args.threads)
    x = torch.from_numpy(features(rock))
    fno_s = _per_sample(model, x)
    nt = f.reports
    fno3d = _fno_class()(n_modes=(*cfg.fno.modes, max(1, nt // 2)), in_channels=3, out_channels=1,
                         hidden_channels=cfg.fno.width, n_layers=cfg.fno.layers).eval()
    fno3d_s = _per_sample(fno3d, torch.randn(args.cases, 3, *r.shape, nt), repeats=2)
    n_params = sum(p.numel() for p in model.parameters())
    assert isinstance(model, FNOSurrogate)

    rel = metrics.relative_l2.values
    print(f"co2_forecast preset {args.preset}: {r.shape[0]}x{r.shape[1]} cells, {nt} report times, "
          f"{cfg.samples.train} training / {cfg.samples.test} held-out simulations (study run {study_s:.0f} s, "
          f"{len(history['train'])} epochs)")
    print(f"simulator: {sim_s * 1e3:.0f} ms per sample ({solves:.0f} pressure solves, {steps:.0f} transport "
          f"sub-steps; {sim_s / (cells * steps) * 1e9:.1f} ns per cell and sub-step, all included)")
    print(f"FNO 2D (report times as channels, {n_params} parameters): {fno_s * 1e3:.2f} ms per sample at batch "
          f"{args.cases}, {args.threads} threads -> speed-up {sim_s / fno_s:.0f}x (goal >= 100x)")
    print(f"FNO 3D (x, z, t), same width, untrained: {fno3d_s * 1e3:.1f} ms per sample -> "
          f"{sim_s / fno3d_s:.1f}x")
    print(f"held-out relative L2 error: {metrics.attrs['relative_l2']:.4f} over all times (goal <= 0.10); "
          f"per report time {rel.min():.4f}-{rel.max():.4f} (first {rel[0]:.4f}, last {rel[-1]:.4f})")


if __name__ == "__main__":
    main()
