"""Training pairs for amortized inference: sampled velocity models, their shot records, estimates."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import xarray as xr

from strata_errors import InputError

from .model import build_model, smooth_model
from .solver import survey_shots

__all__ = ["sample_models", "simulate_pairs", "smooth_samples", "repeat_model"]


def _stack(pieces: list[xr.Dataset], samples: Sequence[int]) -> xr.Dataset:
    ds = xr.concat(pieces, dim="sample", coords="minimal", compat="override", combine_attrs="override")
    return ds.assign_coords(sample=("sample", np.asarray(samples, dtype=np.int64), {"long_name": "sample index"}))


def sample_models(samples: np.ndarray, *, base: Mapping[str, Any], perturbation: Mapping[str, Any],
                  seed: int) -> xr.Dataset:
    """``vp`` (sample, x, z): the ``base`` model (:func:`build_model` settings, without their own
    perturbation) plus a Gaussian random field per sample.

    Sample i's field is seeded by ``SeedSequence([seed, i])``, so a sample does not depend on
    which other samples are computed with it.
    """
    samples = np.atleast_1d(np.asarray(samples, dtype=np.int64))
    if samples.size == 0:
        raise InputError("sample_models: zero samples requested")
    settings = {k: v for k, v in base.items() if k != "perturbation"}
    pieces = []
    for i in samples:
        field_seed = int(np.random.SeedSequence([int(seed), int(i)]).generate_state(1)[0])
        pieces.append(build_model(**settings, perturbation={**dict(perturbation), "seed": field_seed}))
    return _stack(pieces, samples)


def smooth_samples(models: xr.Dataset, *, sigma: float) -> xr.Dataset:
    """Per-sample smoothed models (the estimates x̂ at which summaries are computed)."""
    pieces = [smooth_model(models.sel(sample=s).drop_vars("sample"), sigma) for s in models.sample.values]
    return _stack(pieces, models.sample.values)


def repeat_model(model: xr.Dataset, like: xr.Dataset) -> xr.Dataset:
    """``model`` once per sample of ``like``: one estimate x̂⁰ (e.g. a smooth background) for every sample."""
    samples = like["sample"].values
    return _stack([model] * len(samples), samples)


def simulate_pairs(models: xr.Dataset, geometry: xr.Dataset, *, space_order: int = 8, nbl: int = 40,
                   noise_snr_db: float | None = None, seed: int = 0) -> xr.Dataset:
    """Observed ``data`` (sample, shot, receiver, time): every shot of ``geometry`` in each model.

    Noise of (sample s, shot j) is seeded by ``[seed + s, j]`` through :func:`survey_shots`.
    """
    pieces = [survey_shots(models.sel(sample=s).drop_vars("sample"), geometry, space_order=space_order,
                           nbl=nbl, noise_snr_db=noise_snr_db, seed=int(seed) + int(s))
              for s in models.sample.values]
    return _stack(pieces, models.sample.values).assign_attrs(seed=int(seed))  # the step's seed, not a sample's
