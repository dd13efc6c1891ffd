"""Time-lapse seismic monitoring of a plume: the monitor model through rock physics, difference data."""

from __future__ import annotations

import numpy as np
import xarray as xr

from strata_errors import InputError

from .rock_physics import patchy

__all__ = ["gardner_density", "baseline_rock", "monitor_model", "difference"]


def gardner_density(vp: np.ndarray) -> np.ndarray:
    """Gardner's relation ρ = 310 · vp^0.25 (vp in m/s, ρ in kg/m³)."""
    return 310.0 * np.asarray(vp, dtype=np.float64) ** 0.25


def baseline_rock(baseline: xr.Dataset) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """(vp, rho, coords) of a baseline velocity model: float64 arrays, its ``rho`` if present else Gardner's
    relation, and its coordinates by dim (for errors that name a cell)."""
    vp0 = np.asarray(baseline["vp"].values, dtype=np.float64)
    rho0 = np.asarray(baseline["rho"].values, dtype=np.float64) if "rho" in baseline else gardner_density(vp0)
    return vp0, rho0, {d: np.asarray(baseline[d].values) for d in baseline["vp"].dims}


def monitor_model(baseline: xr.Dataset, plume: xr.Dataset, *, sample: int, report: int | None = None) -> xr.Dataset:
    """The baseline velocity model with the CO2 of ``plume`` (a ``co2_simulation`` or ``co2_forecast``
    dataset on the same grid) at sample ``sample`` and report ``report`` (1-based; None: the last), through
    patchy rock physics with that sample's porosity. ``vp`` and ``rho`` (x, z); ``saturation`` kept for plots.
    The baseline's density is its ``rho`` if present, else Gardner's relation."""
    vp0, rho0, coords = baseline_rock(baseline)
    if "sample" not in plume.dims or sample not in plume["sample"].values:
        raise InputError(f"the plume dataset has no sample {sample}")
    case = plume.sel(sample=sample)
    nt = case.sizes["time"]
    t = nt if report is None else report
    if not 1 <= t <= nt:
        raise InputError(f"report {t} is outside the plume's report times 1-{nt}")
    sat = np.asarray(case["saturation"].isel(time=t - 1).values, dtype=np.float64)
    phi = np.asarray(case["porosity"].values, dtype=np.float64)
    if sat.shape != vp0.shape:
        raise InputError(f"the plume's grid {sat.shape} differs from the baseline model's {vp0.shape}")
    vp, rho = patchy(vp0, rho0, phi, sat, coords=coords)
    dims = baseline["vp"].dims
    out = baseline[["vp"]].copy()
    out["vp"] = (dims, vp.astype(baseline["vp"].dtype), baseline["vp"].attrs)
    out["rho"] = (dims, rho.astype(np.float32), {"units": "kg/m^3", "long_name": "density"})
    out["saturation"] = (dims, sat.astype(np.float32), {"units": "1", "long_name": "CO2 saturation"})
    out.attrs.update({"sample": int(sample), "report": int(t), "time_days": float(case["time"].values[t - 1])})
    return out


def difference(monitor: xr.Dataset, baseline: xr.Dataset) -> xr.Dataset:
    """Time-lapse difference records: monitor − baseline ``data`` (same geometry, shots and times)."""
    if monitor["data"].shape != baseline["data"].shape or not np.array_equal(monitor["shot"].values,
                                                                              baseline["shot"].values):
        raise InputError(f"baseline and monitor surveys differ: {dict(baseline['data'].sizes)} vs "
                         f"{dict(monitor['data'].sizes)}")
    out = monitor.copy()
    out["data"] = monitor["data"] - baseline["data"]
    out["data"].attrs = {**monitor["data"].attrs, "long_name": "time-lapse difference (monitor - baseline)"}
    return out
