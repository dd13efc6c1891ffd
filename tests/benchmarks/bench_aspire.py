"""Figures of issue 13 (ASPIRE), measured in one run on the ``aspire_seismic`` configuration (32×32 by
default, the ``small`` preset): the image CNF's parameter count, posterior samples per second (batch 64),
training seconds per epoch, peak memory, and the cost of the amortized posterior of a new observation
through the whole chain of K networks — K gradient summaries, the intermediate posterior means, then
256 draws → mean and std — in units of one gradient evaluation of the same problem, measured here.

Usage: .venv/bin/python tests/benchmarks/bench_aspire.py [--preset small] [--threads 2] [--pairs 32]
       [--epochs 2] [--draws 256]

Goal: amortized cost <= 10 gradient evaluations per iteration (a non-amortized sampler needs thousands).
The networks are trained briefly (the cost of inference does not depend on how well they are trained);
K distinct networks of the preset's architecture are built.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[2]
os.environ.setdefault("DEVITO_LOGGING", "WARNING")
sys.path.insert(0, str(REPO))

from pipelines.config import load_study  # noqa: E402
from pipelines.registry import models  # noqa: E402
from tasks.inference.aspire import posterior_estimates, train_posterior  # noqa: E402
from tasks.nn.checkpoint import to_dataset  # noqa: E402
from tasks.seismic.geometry import acquisition  # noqa: E402
from tasks.seismic.gradient import gradient_summary  # noqa: E402
from tasks.seismic.model import build_model, smooth_model  # noqa: E402
from tasks.seismic.pairs import repeat_model, simulate_pairs  # noqa: E402
from tasks.seismic.prior import structural_models  # noqa: E402


def _timed(fn, *args, **kwargs):
    t0 = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--preset", default="small")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--pairs", type=int, default=32, help="training pairs for the timing of an epoch")
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--draws", type=int, default=256)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    cfg = load_study("aspire_seismic", args.preset, [], models()).config
    s, p, a = cfg.simulation, cfg.prior, cfg.aspire
    fd = {"space_order": s.space_order, "nbl": s.nbl}
    params = cfg.model.model_dump(mode="json")
    vel = build_model(**params)
    geo = acquisition(vel, **cfg.geometry.model_dump(mode="python"), space_order=s.space_order)
    truth = structural_models(np.arange(args.pairs + 1), shape=list(cfg.model.shape), spacing=cfg.model.spacing,
                              **p.sampler(), seed=a.seed)
    data, t_data = _timed(simulate_pairs, truth, geo, noise_snr_db=s.noise_snr_db, seed=s.seed, **fd)
    x0 = repeat_model(smooth_model(vel, p.estimate_smoothing), truth)
    gradient_summary(x0.isel(sample=[0]), data.isel(sample=[0]), geo, factor=p.snapshot_factor, **fd)  # compile
    summaries, t_grads = _timed(gradient_summary, x0, data, geo, factor=p.snapshot_factor, **fd)
    t_grad = t_grads / truth.sizes["sample"]
    shape = tuple(cfg.model.shape)
    print(f"problem: {shape[0]}x{shape[1]} grid, {cfg.geometry.n_shots} shots, "
          f"{cfg.geometry.record_length:g} s records; one gradient evaluation {t_grad:.3f} s "
          f"(mean of {truth.sizes['sample']}; forward data {t_data / truth.sizes['sample']:.3f} s per sample)")

    train = {w: ds.isel(sample=slice(0, args.pairs)) for w, ds in (("x", truth), ("s", summaries), ("e", x0))}
    net = cfg.cnf.model_dump(mode="json")
    fit = {**cfg.training.model_dump(mode="json", exclude={"threads"}), "epochs": args.epochs, "patience": None}
    nets, t_train = [], 0.0
    for k in range(1, a.iterations + 1):
        trained, t = _timed(train_posterior, train["x"], train["s"], train["e"], var="vp", iteration=k, seed=0,
                            threads=args.threads, cnf=net, training=fit)
        nets.append(to_dataset(trained))
        t_train += t
    module = trained.module
    n_params = sum(p.numel() for p in module.parameters())
    per_epoch = t_train / (a.iterations * args.epochs)
    print(f"image CNF: {n_params:,} parameters ({net}); training {per_epoch:.2f} s per epoch on "
          f"{args.pairs} pairs ({per_epoch / args.pairs * 1000:.1f} ms per pair per epoch, batch "
          f"{cfg.training.batch_size}, {args.threads} threads)")

    c = torch.from_numpy(np.stack([summaries.gradient.values[:1], x0.vp.values[:1]], 1)).float()
    with torch.no_grad():
        module.sample(c[0], 64, torch.Generator().manual_seed(0))  # warm-up
        t0 = time.perf_counter()
        n = 0
        while time.perf_counter() - t0 < 10.0:
            module.sample(c[0], 64, torch.Generator().manual_seed(n))
            n += 64
        rate = n / (time.perf_counter() - t0)
    print(f"posterior samples: {rate:.1f} per second ({shape[0]}x{shape[1]}, batch 64, {args.threads} threads)")

    # a new observation (the last sample) through the chain of K networks
    new = {w: ds.isel(sample=[args.pairs]) for w, ds in (("d", data), ("x0", x0))}
    t0 = time.perf_counter()
    xhat = new["x0"]
    n_grads = 0
    for k, ckpt in enumerate(nets, start=1):
        s_k = gradient_summary(xhat, new["d"], geo, factor=p.snapshot_factor, **fd)
        n_grads += 1
        draws = args.draws if k == len(nets) else a.estimate_draws
        xhat = posterior_estimates(s_k, xhat, ckpt, var="vp", draws=draws, seed=0, iteration=k,
                                   clip=(p.vp_min, p.vp_max))
    t_chain = time.perf_counter() - t0
    units = t_chain / t_grad
    print(f"amortized posterior of a new observation, K={len(nets)}: {t_chain:.2f} s = {units:.1f} gradient "
          f"evaluations ({units / len(nets):.1f} per iteration; {n_grads} of them are the summaries; "
          f"{a.estimate_draws} draws per intermediate mean, {args.draws} draws at the end; sampling with 1 torch "
          "thread as the study's steps do, gradients with Devito's default threads) — goal <= 10 per iteration")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak memory (this process): {peak:.0f} MB")


if __name__ == "__main__":
    main()
