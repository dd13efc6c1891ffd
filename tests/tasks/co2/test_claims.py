"""The co2_forecast claims' measures on constructed outputs: the plume's rise in cells above the injector
(unmeasured with gravity off), the worst mass-balance error, the forecast error averaged over report times."""

from __future__ import annotations

import json

import numpy as np
import pytest
import xarray as xr

from tasks.claims import Unmeasured
from tasks.co2 import claims


def _simulations(rise_cells: float, gravity: float = 9.8) -> xr.Dataset:
    """Two samples on 8 x 10 cells of 10 m, the injector in cell (1, 6); at the last report the CO2 sits in one
    cell row ``rise_cells`` above it (the other sample the same, one cell lower), mass balanced exactly."""
    nx, nz, dz = 8, 10, 10.0
    sat = np.zeros((2, 2, nx, nz))
    for n, extra in enumerate((0, 1)):
        sat[n, 0, 1, 6] = 0.5
        sat[n, 1, :, int(6 - rise_cells + extra)] = 0.5
    phi = np.full((2, nx, nz), 0.2)
    stored = (phi[:, None] * sat).sum((2, 3)) * dz * dz
    wells = [{"name": "injector", "x": 15.0, "z": 65.0, "ix": 1, "iz": 6, "rate": 1.0},
             {"name": "producer", "x": 75.0, "z": 65.0, "ix": 7, "iz": 6, "rate": -1.0}]
    return xr.Dataset({"saturation": (("sample", "time", "x", "z"), sat), "porosity": (("sample", "x", "z"), phi),
                       "injected_co2": (("sample", "time"), stored), "produced_co2": (("sample", "time"), 0 * stored)},
                      coords={"x": (np.arange(nx) + 0.5) * dz, "z": (np.arange(nz) + 0.5) * dz},
                      attrs={"spacing": [dz, dz], "thickness": 1.0, "wells": json.dumps(wells), "gravity": gravity})


def test_the_plume_rise_is_counted_in_cells_above_the_injector():
    value, se = claims.plume_rise({"simulations": _simulations(3)})
    assert value == pytest.approx(2.5) and se == pytest.approx(0.5)  # 3 and 2 cells above


def test_with_gravity_off_the_rise_is_unmeasured():
    with pytest.raises(Unmeasured, match="gravity is off"):
        claims.plume_rise({"simulations": _simulations(3, gravity=0.0)})


def test_mass_balance_is_the_worst_error_of_any_sample_and_time():
    sims = _simulations(2)
    assert claims.mass_balance({"simulations": sims})[0] < 1e-15
    sims["injected_co2"][1, 1] *= 1 + 1e-6
    assert claims.mass_balance({"simulations": sims})[0] == pytest.approx(1e-6, rel=1e-3)


def test_the_forecast_error_is_averaged_over_report_times_then_samples():
    rel = xr.DataArray([[0.1, 0.3], [0.2, 0.2]], dims=("sample", "time"))
    value, se = claims.forecast_error({"forecast": xr.Dataset({"relative_l2": rel})})
    assert value == pytest.approx(0.2) and se == pytest.approx(0.0)
