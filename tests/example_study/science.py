"""The example study's science: Gaussian random walks and their mean squared displacement, whose known answer
is E|x_n|² = n σ²."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import xarray as xr


def walks(walks: np.ndarray, *, steps: int, sigma: float, seed: int) -> xr.Dataset:
    """One walk of ``steps`` Gaussian steps of std ``sigma`` per label in ``walks`` (seeded by (seed, label))."""
    x = np.stack([np.cumsum(np.random.default_rng([seed, int(w)]).normal(0.0, sigma, steps)) for w in walks])
    return xr.Dataset({"position": (("walk", "step"), x, {"units": "m"})},
                      coords={"walk": np.asarray(walks), "step": np.arange(1, steps + 1)})


def displacement(ds: xr.Dataset) -> xr.Dataset:
    """The mean squared displacement per step over the walks, with its standard error."""
    sq = ds["position"] ** 2
    n = ds.sizes["walk"]
    return xr.Dataset({"msd": sq.mean("walk").assign_attrs(units="m^2"),
                       "msd_se": (sq.std("walk", ddof=1) / np.sqrt(n)).assign_attrs(units="m^2")})


def msd_excess(outputs: Mapping[str, xr.Dataset], *, sigma: float) -> tuple[float, float]:
    """The last step's mean squared displacement minus its known answer n σ², with its standard error."""
    last = outputs["displacement"].isel(step=-1)
    return float(last["msd"]) - int(last["step"]) * sigma**2, float(last["msd_se"])
