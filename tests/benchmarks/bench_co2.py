"""Figures of issue 14 (CO2 forecasting), in one run: the FNO's forecast time per sample at batch 16 against
the simulator's time per sample (same fields, same machine, same run), the held-out relative L2 error of
the study's preset, and the simulator's work per sample (pressure solves, transport sub-steps, seconds per
cell and step), so that the ratio is not flattered by a slow simulator. For context, the forecast time of a
3D (x, z, t) FNO of the same width on the same grid (untrained: its timing does not depend on training).

Usage: .venv/bin/python tests/benchmarks/bench_co2.py [--preset small] [--root DIR] [--threads 2] [--cases 16]
       .venv/bin/python tests/benchmarks/bench_co2.py --paper [--train 100] [--test 20] [--epochs-2d 60]
              [--epochs-3d 1] [--padding 0.1] [--threads 2] [--cases 16]

The held-out error comes from running the study (``strata run co2_forecast --preset P --workers 2``) on
``--root`` (default: a folder under the system temp dir, kept: a second run reuses everything).
Goals: forecast ≥ 100× faster than the simulator per sample; held-out relative L2 ≤ 10 % (small preset).

``--paper``: FNO4CO2's set-up (the ``paper`` preset: its channel fields, wells, 50 reports of 20 days)
shrunk to ``--train``/``--test`` simulations, computed in memory with the study's own functions (no
catalog): the simulator's seconds per sample, then the 2-D FNO (the study's default ``fno`` and
``training``) and the paper's 3-D FNO (the preset's ``fno`` and ``training``: AdamW 1e-4, batch 2, the
clamped loss), each without and with ``fno.padding`` = ``--padding``, trained for ``--epochs-2d`` /
``--epochs-3d`` epochs (the preset's 1000 take days on 2 cores): seconds per sample of each at batch
``--cases`` (inference, ``--threads`` threads) and its held-out relative L2 error (``forecast_metrics``).
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
import xarray as xr

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from data_catalog import Catalog  # noqa: E402
from pipelines.config import load_study  # noqa: E402
from pipelines.registry import models  # noqa: E402
from tasks.co2.fields import rock_samples  # noqa: E402
from tasks.co2.simulator import simulate_samples  # noqa: E402
from tasks.co2.surrogate import (  # noqa: E402
    FNOSurrogate,
    _fno_class,
    features,
    forecast,
    forecast_metrics,
    train_surrogate,
)
from tasks.nn.checkpoint import from_dataset, to_dataset  # noqa: E402


def _per_sample(fn, x: torch.Tensor, repeats: int = 5) -> float:
    with torch.no_grad():
        fn(x)
        t0 = time.perf_counter()
        for _ in range(repeats):
            fn(x)
    return (time.perf_counter() - t0) / repeats / x.shape[0]


def paper(args: argparse.Namespace) -> None:
    """The ``--paper`` mode (see the module docstring)."""
    from tasks.co2.fields import rock_samples as rocks

    cfg = load_study("co2_forecast", "paper", [], models()).config
    default = load_study("co2_forecast", None, [], models()).config
    r, f, s = cfg.rock, cfg.flow, cfg.samples
    held = 10**9  # held-out labels, as the study's
    flow = f.simulator_params()
    t0 = time.perf_counter()
    rock = {"train": rocks(np.arange(args.train), seed=s.seed, **r.sampler_params()),
            "test": rocks(held + np.arange(args.test), seed=s.seed, **r.sampler_params())}
    rock_s = (time.perf_counter() - t0) / (args.train + args.test)
    sims, sim_s = {}, 0.0
    for split, fields_ in rock.items():  # one sample at a time, as the study's pieces do
        t0 = time.perf_counter()
        parts = [simulate_samples(fields_.isel(sample=[i]), **flow) for i in range(fields_.sizes["sample"])]
        sim_s += time.perf_counter() - t0
        sims[split] = xr.concat(parts, "sample")
    sim_s /= args.train + args.test
    steps = float(sims["test"].transport_steps.mean())
    solves = float(sims["test"].pressure_solves.mean())
    print(f"co2_forecast paper preset, shrunk: {r.kind} rock {r.shape[0]}x{r.shape[1]} cells of {r.spacing:g} m, "
          f"{f.reports} reports every {f.report_every:g} days, wells {[(w.name, w.x, w.z, w.rate) for w in f.wells]}, "
          f"thickness {f.thickness:g} m, gravity {getattr(f, 'gravity', 0.0):g} m/s^2; {args.train} training / "
          f"{args.test} held-out simulations (the preset: {s.train} / {s.test}); {args.threads} torch threads")
    print(f"simulator: {sim_s:.3f} s per sample ({solves:.0f} pressure solves, {steps:.0f} transport sub-steps; "
          f"rock fields {rock_s * 1e3:.1f} ms per sample)")

    torch.set_num_threads(args.threads)
    x = torch.from_numpy(features(sims["test"].isel(sample=slice(0, args.cases))))
    variants = [("2-D", default.fno, default.training, args.epochs_2d), ("3-D", cfg.fno, cfg.training, args.epochs_3d)]
    rows = []
    for name, fno_cfg, train_cfg, epochs in variants:
        for padding in (0.0, args.padding):
            fno = {**fno_cfg.model_dump(mode="json"), "padding": padding}
            training = {**train_cfg.model_dump(mode="json", exclude={"threads"}), "epochs": epochs}
            t0 = time.perf_counter()
            trained = train_surrogate(sims["train"], fno=fno, training=training, seed=s.seed, threads=args.threads)
            train_s = time.perf_counter() - t0
            ckpt = to_dataset(trained)
            t0 = time.perf_counter()
            fc = forecast(ckpt, sims["test"], batch_size=16)
            forecast_s = time.perf_counter() - t0
            metrics = forecast_metrics(fc)
            assert fc["saturation"].dims == ("sample", "time", "x", "z") and fc["saturation"].shape == sims["test"][
                "saturation"].shape
            model = from_dataset(ckpt).module
            torch.set_num_threads(args.threads)
            per = _per_sample(model, x, repeats=1 if name == "3-D" else 5)
            rel = metrics.relative_l2.values
            n_params = sum(p.numel() for p in model.parameters())
            rows.append((name, padding, per, float(metrics.attrs["relative_l2"])))
            print(f"FNO {name} modes {list(fno['modes'])} width {fno['width']}, padding {padding:g} "
                  f"({n_params} parameters; {len(trained.history['train'])} epochs, lr {training['lr']:g}, batch "
                  f"{training['batch_size']}, weight decay {training['weight_decay']:g}, clamp {training['clamp']}; "
                  f"trained in {train_s:.0f} s): {per:.4f} s per sample at batch {x.shape[0]} -> speed-up "
                  f"{sim_s / per:.1f}x; held-out relative L2 {metrics.attrs['relative_l2']:.4f} (per report time "
                  f"{rel.min():.4f}-{rel.max():.4f}; final training / validation loss "
                  f"{trained.history['train'][-1]:.4f} / {trained.history['validation'][-1]:.4f}; forecast step "
                  f"{forecast_s / args.test:.3f} s per sample, 1 thread)")
    print("summary (s per sample at batch 16 | held-out relative L2): simulator "
          f"{sim_s:.3f} | " + "; ".join(f"FNO {n} padding {p:g}: {t:.4f} | {e:.4f}" for n, p, t, e in rows))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--preset", default="small")
    ap.add_argument("--root", default=str(Path(tempfile.gettempdir()) / "strata-bench-co2"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--cases", type=int, default=16, help="fields timed with the simulator (and batch of the FNO)")
    ap.add_argument("--paper", action="store_true", help="the shrunk paper preset in memory, 2-D and 3-D FNO")
    ap.add_argument("--train", type=int, default=100, help="--paper: training simulations")
    ap.add_argument("--test", type=int, default=20, help="--paper: held-out simulations")
    ap.add_argument("--epochs-2d", type=int, default=60, help="--paper: epochs of the 2-D FNO")
    ap.add_argument("--epochs-3d", type=int, default=1, help="--paper: epochs of the 3-D FNO")
    ap.add_argument("--padding", type=float, default=0.1, help="--paper: fno.padding of the padded runs")
    args = ap.parse_args()
    if args.paper:
        paper(args)
        return
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
    fno3d = _fno_class()(n_modes=(*cfg.fno.modes[:2], max(1, nt // 2)), in_channels=3, out_channels=1,
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
