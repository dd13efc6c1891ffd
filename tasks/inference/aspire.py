"""The science of one ASPIRE iteration, on datasets (the loop itself is a study flow).

Iteration k trains CNF_k on pairs ``(x_i, [s_i^k, x̂_i^{k-1}])`` — the truth, the summary (the
data-misfit gradient at the previous estimate) and the previous estimate — and takes the
posterior mean of CNF_k as the next estimate x̂_i^k. Held-out cases run through the same chain.

Conventions: truth and estimates datasets hold ``var`` with dims ``(sample, *event)``; summaries
datasets hold ``gradient`` with the same dims. One event dim: the vector CNF (condition = summary
and estimate concatenated, ``2·d`` features); two: the image CNF (condition = the two as channels,
``x`` one channel). Posterior draws come from per-sample generators seeded by
``SeedSequence([seed, iteration, sample])``: a sample's draws do not depend on the others.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
import xarray as xr

from strata_errors import InputError
from tasks.nn.checkpoint import Trained, from_dataset
from tasks.nn.training import seeded_torch

from .cnf import train_cnf
from .cnf_base import CNFBase
from .glow import train_image_cnf

__all__ = ["SUMMARY", "train_posterior", "posterior_estimates", "posterior", "event_dims", "condition", "fold_of"]

SUMMARY = "gradient"


def event_dims(ds: xr.Dataset, var: str, what: str) -> tuple[str, ...]:
    """The dims of ``ds[var]`` after ``sample``; InputError unless it is ``(sample, *event)`` with one or
    two event dims."""
    if var not in ds.data_vars:
        raise InputError(f"{what} has no variable {var!r} (has {', '.join(map(str, ds.data_vars))})")
    dims = tuple(map(str, ds[var].dims))
    if not dims or dims[0] != "sample" or len(dims) not in (2, 3):
        raise InputError(f"{what}: {var} must have dims (sample, *event) with 1 or 2 event dims, got {dims}")
    return dims[1:]


def _values(ds: xr.Dataset, var: str, samples: np.ndarray, what: str) -> np.ndarray:
    event_dims(ds, var, what)
    missing = np.setdiff1d(samples, ds["sample"].values)
    if missing.size:
        raise InputError(f"{what} lacks samples {missing[:5].tolist()}")
    values = np.asarray(ds[var].sel(sample=samples).values, dtype=np.float32)
    if not np.isfinite(values).all():
        raise InputError(f"{what}: {var} has values that are not finite")
    return values


def _pairs(truth: xr.Dataset | None, summaries: xr.Dataset, estimates: xr.Dataset, var: str
           ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    """(sample labels, x or None, condition), in the CNF's layout, for the samples of ``summaries``."""
    samples = np.asarray(summaries["sample"].values)
    s = _values(summaries, SUMMARY, samples, "the summaries")
    e = _values(estimates, var, samples, "the estimates")
    if s.shape != e.shape:
        raise InputError(f"summaries {s.shape} and estimates {e.shape} differ in shape")
    image = s.ndim == 3
    c = np.stack([s, e], 1) if image else np.concatenate([s, e], -1)
    x = None
    if truth is not None:
        x = _values(truth, var, samples, "the truth")
        if x.shape != e.shape:
            raise InputError(f"truth {x.shape} and estimates {e.shape} differ in shape")
        x = x[:, None] if image else x
    return samples, x, c


def condition(summaries: xr.Dataset, estimates: xr.Dataset, var: str, samples: np.ndarray | None = None
              ) -> np.ndarray:
    """The CNF's condition ``[summary, estimate]`` of ``samples`` (default: every sample of ``summaries``):
    vectors concatenated ``(n, 2·d)``, images stacked as channels ``(n, 2, nx, nz)``."""
    if samples is not None:
        summaries = summaries.sel(sample=np.asarray(samples))
    return _pairs(None, summaries, estimates, var)[2]


def fold_of(samples: np.ndarray, folds: int) -> np.ndarray:
    """The cross-fitting fold of each sample label: ``label mod folds``."""
    if folds < 1:
        raise InputError(f"folds must be >= 1, got {folds}")
    return np.asarray(samples, dtype=np.int64) % int(folds)


def train_posterior(truth: xr.Dataset, summaries: xr.Dataset, estimates: xr.Dataset, *, var: str,
                    iteration: int, seed: int, threads: int, cnf: Mapping[str, Any],
                    training: Mapping[str, Any], fold: int | None = None, folds: int = 1) -> Trained:
    """CNF_k fitted to ``(truth, [summary, estimate])`` by maximum likelihood (``training``: epochs,
    batch_size, lr, held_out, patience; ``cnf``: the architecture) with ``threads`` torch threads, on every
    sample of ``summaries`` — or, with ``fold`` f of ``folds``, on the samples outside fold f
    (:func:`fold_of`), so that fold f's estimates come from a CNF that never saw them. Seeded by
    ``(seed, iteration)``, a fold's by ``(seed, 1000·(f + 1) + iteration)``."""
    if fold is not None and not 0 <= fold < folds:
        raise InputError(f"train_posterior: fold must be in [0, {folds}), got {fold}")
    if fold is not None:
        samples = np.asarray(summaries["sample"].values)
        summaries = summaries.sel(sample=samples[fold_of(samples, folds) != fold])
    _, x, c = _pairs(truth, summaries, estimates, var)
    index = iteration if fold is None else 1000 * (fold + 1) + iteration
    kwargs = {**dict(cnf), **dict(training), "seed": seed, "index": index, "threads": threads}
    return (train_image_cnf if x.ndim == 4 else train_cnf)(x, c, **kwargs)


def _generator(seed: int, iteration: int, sample: int) -> torch.Generator:
    state = np.random.SeedSequence([int(seed), int(iteration), int(sample)]).generate_state(1, np.uint64)[0]
    return torch.Generator().manual_seed(int(state) % 2**63)


_ROWS_BUDGET = 2**22  # numbers of x per call of the inverse transform (memory of one call)


@torch.no_grad()
def _draws(module: CNFBase, c: np.ndarray, samples: np.ndarray, n: int, *, seed: int,
           iteration: int) -> np.ndarray:
    """``n`` posterior draws per sample, ``(samples, n, *event)``: standard normal base draws from each sample's
    generator through the inverse transform. Samples go in groups, and a sample's draws in chunks, of at most
    ``_ROWS_BUDGET`` numbers per call; the condition is encoded once per group."""
    ct = torch.from_numpy(c).to(module.dtype)
    event = tuple(module.event_shape)
    rows = max(1, _ROWS_BUDGET // int(np.prod(event)))
    group = max(1, rows // n)
    out = np.empty((len(samples), n, *event), dtype=np.float32)
    for g in range(0, len(samples), group):
        dist = module.conditional(ct[g:g + group])
        eps = torch.stack([torch.randn((n, *event), generator=_generator(seed, iteration, s), dtype=module.dtype)
                           for s in samples[g:g + group]], 1)  # (n, group, *event)
        chunk = max(1, rows // eps.shape[1])
        for lo in range(0, n, chunk):
            z = eps[lo:lo + chunk]
            x = module.from_base(dist, z)
            out[g:g + group, lo:lo + len(z)] = np.moveaxis(x.numpy(), 0, 1)
    return out


def _module(checkpoint: xr.Dataset) -> CNFBase:
    """The network of a checkpoint; call inside ``seeded_torch(..., threads=1)``: a multi-threaded torch op
    would change later Devito results of this process in their last bits."""
    return from_dataset(checkpoint).module


def _squeeze(draws: np.ndarray, image: bool) -> np.ndarray:
    return draws[:, :, 0] if image else draws


def posterior_estimates(summaries: xr.Dataset, estimates: xr.Dataset, *checkpoints: xr.Dataset, var: str,
                        draws: int, seed: int, iteration: int, clip: tuple[float, float] | None = None
                        ) -> xr.Dataset:
    """The next estimates: ``var`` = the mean of ``draws`` posterior draws per sample (``std`` their standard
    deviation), on the samples of ``summaries``, in the layout (coords, attrs) of ``estimates``; ``clip``:
    the mean is kept inside ``[lo, hi]`` (e.g. the velocities a wave solver's time step allows).

    One checkpoint: every sample's draws come from it. F checkpoints (cross-fitting): sample s's come from
    checkpoint ``fold_of(s, F)`` — the CNF trained without that fold. A sample's draws are seeded by
    ``(seed, iteration, s)`` either way."""
    if draws < 2:
        raise InputError(f"posterior_estimates: draws must be >= 2, got {draws}")
    if not checkpoints:
        raise InputError("posterior_estimates needs at least one checkpoint")
    samples, _, c = _pairs(None, summaries, estimates, var)
    event = c.shape[2:] if c.ndim == 4 else (c.shape[1] // 2,)
    d = np.empty((len(samples), draws, *event), dtype=np.float32)
    fold = fold_of(samples, len(checkpoints))
    with seeded_torch(seed, iteration, threads=1):
        for f, checkpoint in enumerate(checkpoints):
            mine = fold == f
            if mine.any():
                d[mine] = _squeeze(_draws(_module(checkpoint), c[mine], samples[mine], draws, seed=seed,
                                          iteration=iteration), c.ndim == 4)
    out = estimates[[var]].sel(sample=samples)
    dims = out[var].dims
    mean = d.mean(1) if clip is None else np.clip(d.mean(1), *clip)
    out[var] = (dims, mean.astype(np.float32), dict(estimates[var].attrs))
    out["std"] = (dims, d.std(1, ddof=1).astype(np.float32), {"long_name": f"posterior std of {var}"})
    out.attrs.update({"iteration": int(iteration), "draws": int(draws)})
    return out


def posterior(checkpoint: xr.Dataset, summaries: xr.Dataset, estimates: xr.Dataset, truth: xr.Dataset, *,
              var: str, draws: int, seed: int, iteration: int) -> xr.Dataset:
    """Held-out cases through CNF_k: ``draws`` (case, draw, *event), their ``mean`` and ``std``
    (case, *event), the ``truth`` and ``nll`` (case) = −log p(truth | condition) in nats."""
    if draws < 2:
        raise InputError(f"posterior: draws must be >= 2, got {draws}")
    samples, x, c = _pairs(truth, summaries, estimates, var)
    image = c.ndim == 4
    with seeded_torch(seed, iteration, threads=1):
        module = _module(checkpoint)
        d = _squeeze(_draws(module, c, samples, draws, seed=seed + 1, iteration=iteration), image)
        with torch.no_grad():
            nll = -module.log_prob(torch.from_numpy(x).to(module.dtype), torch.from_numpy(c).to(module.dtype))
    event = event_dims(truth, var, "the truth")
    x = x[:, 0] if image else x
    coords = {"case": ("case", samples.astype(np.int64), {"long_name": "held-out sample"}),
              "draw": ("draw", np.arange(draws))}
    coords.update({dim: truth[dim] for dim in event if dim in truth.coords})
    units = dict(truth[var].attrs)
    ds = xr.Dataset({
        "draws": (("case", "draw", *event), d, {**units, "long_name": f"posterior draws of {var}"}),
        "mean": (("case", *event), d.mean(1), {**units, "long_name": f"posterior mean of {var}"}),
        "std": (("case", *event), d.std(1, ddof=1), {**units, "long_name": f"posterior std of {var}"}),
        "truth": (("case", *event), x, {**units, "long_name": f"true {var}"}),
        "nll": ("case", nll.numpy().astype(np.float64), {"long_name": "-log p(truth | condition)", "units": "nats"}),
    }, coords=coords)
    ds.attrs.update({"iteration": int(iteration), "variable": var})
    return ds
