"""Measures of the ``co2_forecast`` claims (FNO4CO2; :mod:`tasks.claims`) on the study's outputs
``forecast`` (held-out forecasts) and ``simulations`` (the held-out simulations): (value, SE over samples)."""

from __future__ import annotations

import json
from collections.abc import Mapping

import numpy as np
import xarray as xr

from tasks.claims import Unmeasured

from .simulator import mass_balance_error

__all__ = ["forecast_error", "mass_balance", "plume_rise"]


def _mean_se(v: np.ndarray) -> tuple[float, float]:
    v = np.asarray(v, float)
    return float(v.mean()), float(v.std(ddof=1) / np.sqrt(v.size)) if v.size > 1 else float("nan")


def forecast_error(outputs: Mapping[str, xr.Dataset]) -> tuple[float, float]:
    """The held-out relative L2 error of the FNO's forecasts, averaged over report times, mean over samples."""
    return _mean_se(outputs["forecast"]["relative_l2"].mean("time").values)


def mass_balance(outputs: Mapping[str, xr.Dataset]) -> tuple[float, float]:
    """The largest relative CO2 mass-balance error of any held-out simulation at any report time."""
    return float(np.abs(mass_balance_error(outputs["simulations"])).max()), 0.0


def plume_rise(outputs: Mapping[str, xr.Dataset]) -> tuple[float, float]:
    """How far the plume's centre of mass (CO2 volume-weighted depth) lies above the injector at the last
    report, in cells, mean over the held-out simulations. Unmeasured with gravity off."""
    sims = outputs["simulations"]
    if not float(sims.attrs.get("gravity", 0.0)):
        raise Unmeasured("gravity is off (flow.gravity = 0): nothing makes the plume rise")
    injectors = [w for w in json.loads(sims.attrs["wells"]) if w.get("rate", 0) > 0]
    if len(injectors) != 1:
        raise Unmeasured(f"needs exactly one injector, the run has {len(injectors)}")
    dz = float(sims.attrs["spacing"][1])
    volume = (sims["porosity"] * sims["saturation"].isel(time=-1)).transpose("sample", "x", "z").values
    z = sims["z"].values
    centre = (volume * z).sum((1, 2)) / volume.sum((1, 2))
    return _mean_se(((injectors[0]["iz"] + 0.5) * dz - centre) / dz)
