"""Two-phase CO2–brine IMPES simulator: Buckley–Leverett, conservation, symmetry, wells, CFL, bad input."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from scipy.optimize import brentq

from strata_errors import InputError
from tasks.co2.fields import rock_samples
from tasks.co2.simulator import DAY, Fluids, mass_balance_error, simulate, simulate_samples

MU_C, MU_B = 0.1, 1.0  # cP


# --- Buckley–Leverett ------------------------------------------------------------------------------------------

def _f(s):
    return Fluids(MU_C, MU_B).fractional_flow(np.asarray(s, dtype=float))


def _df(s, h=1e-7):
    return (_f(s + h) - _f(s - h)) / (2 * h)


def _shock():
    """Welge tangent from (0, 0): f'(S*) = f(S*)/S*; returns S* and the dimensionless front speed."""
    s_star = brentq(lambda s: _df(s) * s - _f(s), 0.05, 0.95, xtol=1e-12)
    return s_star, float(_f(s_star) / s_star)


def test_welge_tangent_matches_the_closed_form():
    s_star, speed = _shock()
    assert s_star == pytest.approx(np.sqrt(MU_C / (MU_C + MU_B)), abs=1e-6)  # 0.3015
    assert speed == pytest.approx(2.158, abs=1e-3)


def _analytic(xi, s_star, speed):
    """Buckley–Leverett S(xi), xi = distance / (u t / phi): rarefaction f'(S) = xi behind the shock."""
    s = np.linspace(s_star, 1.0, 20001)
    d = _df(np.clip(s, 1e-6, 1 - 1e-6))  # decreasing from `speed` to ~0 on [S*, 1]
    return np.where(xi < speed, np.interp(xi, d[::-1], s[::-1]), 0.0)


def test_buckley_leverett_front():
    n, dx, phi, q = 240, 2.0, 0.2, 1e-5  # cells, m, -, m³/s through a 2 m x 1 m cross-section
    k, por = np.full((n, 1), 100.0), np.full((n, 1), phi)
    wells = [{"name": "injector", "x": 0.5 * dx, "z": 1.0, "rate": q},
             {"name": "producer", "x": (n - 0.5) * dx, "z": 1.0, "rate": -q}]
    s_star, speed = _shock()
    v = q / (dx * 1.0) / phi  # interstitial total velocity, m/s
    x0 = 0.5 * dx  # the injector cell's centre: the analytic source point
    times = [0.35 * n * dx / (speed * v), 0.7 * n * dx / (speed * v)]  # before breakthrough
    res = simulate(k, por, spacing=(dx, dx), wells=wells, times=times, mu_co2=MU_C, mu_brine=MU_B)
    x = (np.arange(n) + 0.5) * dx
    for i, t in enumerate(times):
        s = res.saturation[i, :, 0]
        last = int(np.flatnonzero(s >= s_star / 2).max())
        front = x[last] + (s[last] - s_star / 2) / (s[last] - s[last + 1]) * dx
        expected = x0 + speed * v * t
        assert abs(front - expected) < 3 * dx, (front, expected)
        assert s[last + 5:].max() < 1e-3  # sharp shock, nothing runs ahead
        behind = (x > x0 + 10 * dx) & (x < expected - 5 * dx)  # the rarefaction, away from source and shock
        exact = _analytic((x[behind] - x0) / (v * t), s_star, speed)
        assert np.abs(s[behind] - exact).max() < 0.05
        assert s[behind].min() >= s_star - 0.01


# --- conservation, symmetry, wells -------------------------------------------------------------------------------

def _channel_rock(samples=(0, 1)):
    return rock_samples(np.array(samples), kind="channelized", shape=(32, 32), spacing=15.0, seed=3,
                        channel={"depth": 240.0, "thickness": 90.0, "undulation": 30.0, "correlation_length": 150.0},
                        porosity={"kind": "from_permeability"})


CHANNEL_WELLS = [{"name": "injector", "x": 7.5, "z": 240.0, "rate": 5e-4},
                 {"name": "producer", "x": 472.5, "z": 240.0, "rate": -5e-4}]
REPORT_DAYS = [20.0, 60.0, 120.0, 200.0, 300.0]


def test_mass_balance_from_the_dataset_past_breakthrough():
    ds = simulate_samples(_channel_rock(), wells=CHANNEL_WELLS, times=REPORT_DAYS)
    assert ds["saturation"].dims == ("sample", "time", "x", "z") and ds["saturation"].dtype == np.float64
    assert ds["pressure"].attrs["units"] == "Pa" and ds["time"].attrs["units"] == "d"
    np.testing.assert_allclose(ds["time"].values, REPORT_DAYS)
    np.testing.assert_allclose(ds["injected_co2"].values, 5e-4 * DAY * np.array([REPORT_DAYS] * 2), rtol=1e-12)
    produced = ds["produced_co2"].values
    assert (produced[:, 0] == 0).all() and (produced[:, -1] > 0).all() and (np.diff(produced, axis=1) >= 0).all()
    # from the dataset alone: Σ φ S dx dz thickness == injected − produced
    dx, dz = ds.attrs["spacing"]
    stored = (ds["porosity"] * ds["saturation"]).sum(("x", "z")).values * dx * dz * ds.attrs["thickness"]
    np.testing.assert_allclose(stored, (ds["injected_co2"] - ds["produced_co2"]).values, rtol=1e-6)
    assert np.abs(mass_balance_error(ds)).max() < 1e-6
    wells = json.loads(ds.attrs["wells"])
    assert [(w["name"], w["ix"], w["iz"], w["rate"]) for w in wells] == [("injector", 0, 16, 5e-4),
                                                                            ("producer", 31, 16, -5e-4)]
    s = ds["saturation"].values
    assert s.min() >= -1e-12 and s.max() <= 1 + 1e-12
    p = ds["pressure"].values.reshape(*s.shape[:2], -1)
    assert (p.argmax(axis=-1) == 16).all()  # cell (0, 16): the injector
    assert (ds["pressure_solves"].values == len(REPORT_DAYS) + 1).all() and (ds["transport_steps"] > 0).all()
    np.testing.assert_array_equal(ds["permeability"].values, _channel_rock()["permeability"].values)


def _five_spot(n=16, **kw):
    k, phi, q = np.full((n, n), 100.0), np.full((n, n), 0.25), 2e-4
    wells = [{"name": "injector", "x": 7.5, "z": 7.5, "rate": q},
             {"name": "producer", "x": 15.0 * n - 7.5, "z": 15.0 * n - 7.5, "rate": -q}]
    return k, phi, wells, np.array([20.0, 60.0, 120.0]) * DAY


def test_quarter_five_spot_stays_symmetric_and_bounded():
    k, phi, wells, times = _five_spot()
    res = simulate(k, phi, wells=wells, times=times)
    for s, p in zip(res.saturation, res.pressure, strict=True):
        np.testing.assert_allclose(s, s.T, rtol=0, atol=1e-10)
        assert s.min() >= -1e-12 and s.max() <= 1.0 + 1e-12 and s[0, 0] > 0.5
        assert np.unravel_index(p.argmax(), p.shape) == (0, 0) and np.unravel_index(p.argmin(), p.shape) == (15, 15)
    assert res.pressure.mean(axis=(1, 2)) == pytest.approx(1.0e7)  # rate wells only: mean pinned to p_ref


def test_pressure_controlled_producer_matches_rate_producer_and_conserves_mass():
    rock = _channel_rock([0])
    bhp = [CHANNEL_WELLS[0], {"name": "producer", "x": 472.5, "z": 240.0, "pressure": 9.0e6}]
    ds = simulate_samples(rock, wells=bhp, times=REPORT_DAYS)
    assert np.abs(mass_balance_error(ds)).max() < 1e-6 and float(ds["produced_co2"][0, -1]) > 0
    assert float(ds["pressure"].min()) > 9.0e6  # injection only: every cell above the producer's pressure
    # Peaceman: q = WI λt (p_cell − p_bh), WI = 2π k thickness / ln(0.14 sqrt(dx² + dz²) / 0.1 m)
    cell = ds.isel(sample=0, x=31, z=16)
    lc, lb = Fluids(MU_C * 1e-3, MU_B * 1e-3).mobilities(cell["saturation"].values)
    wi = 2 * np.pi * float(cell["permeability"]) * 9.869233e-16 * 1.0 / np.log(0.14 * np.hypot(15.0, 15.0) / 0.1)
    np.testing.assert_allclose(wi * (lc + lb) * (cell["pressure"].values - 9.0e6), 5e-4, rtol=1e-8)
    # incompressible: a producer at fixed pressure produces exactly the injection rate, so the flow is the same
    rate = simulate_samples(rock, wells=CHANNEL_WELLS, times=REPORT_DAYS)
    np.testing.assert_allclose(ds["saturation"].values, rate["saturation"].values, rtol=0, atol=1e-8)
    shift = (ds["pressure"] - rate["pressure"]).values
    assert np.ptp(shift, axis=(2, 3)).max() < 1e-3  # pressures differ by a constant only (Pa)


def test_pressure_drop_is_the_series_resistance_of_harmonic_faces():
    """Ahead of the CO2, brine alone carries q: p_i − p_{i+1} = q μ_b (dx/2k_i + dx/2k_{i+1}) / (dz·thickness)."""
    n, dx, dz, h, q = 60, 10.0, 4.0, 2.0, 1e-5
    k_md = np.where(np.arange(n) % 3 == 0, 10.0, 1000.0)[:, None]
    wells = [{"name": "injector", "x": 5.0, "z": 2.0, "rate": q},
             {"name": "producer", "x": 595.0, "z": 2.0, "rate": -q}]
    res = simulate(k_md, np.full((n, 1), 0.3), spacing=(dx, dz), thickness=h, wells=wells, times=[DAY])
    s, p = res.saturation[0, :, 0], res.pressure[0, :, 0]
    k = k_md[:, 0] * 9.869233e-16  # m²
    expected = q * MU_B * 1e-3 * (dx / (2 * k[:-1]) + dx / (2 * k[1:])) / (dz * h)
    dry = (s[:-1] == 0) & (s[1:] == 0)
    assert dry.sum() > 40
    np.testing.assert_allclose((p[:-1] - p[1:])[dry], expected[dry], rtol=1e-9)


def test_fixed_steps_cfl_error_and_agreement():
    k, phi, wells, times = _five_spot()
    with pytest.raises(InputError, match=r"time step 4.3e\+05 s exceeds the transport CFL bound \S+ s \(cfl 0.9\); "
                                         r"allow sub-stepping or take dt <= \S+ s") as err:
        simulate(k, phi, wells=wells, times=times, substep=False, dt=5 * DAY)
    with pytest.raises(InputError, match="exceeds the transport CFL bound"):
        simulate(k, phi, wells=wells, times=times, substep=False)  # one step per report interval
    bound = float(re.search(r"dt <= (\S+) s", str(err.value)).group(1))
    fixed = simulate(k, phi, wells=wells, times=times, substep=False, dt=0.5 * bound)
    adaptive = simulate(k, phi, wells=wells, times=times)
    assert fixed.transport_steps > 1.5 * adaptive.transport_steps
    assert np.abs(fixed.saturation - adaptive.saturation).max() < 0.03
    capped = simulate(k, phi, wells=wells, times=times, dt=DAY)
    assert capped.transport_steps >= 120


# --- bad input ---------------------------------------------------------------------------------------------------

def _case(**change):
    k, phi, wells, times = _five_spot()
    args = {"permeability": k, "porosity": phi, "wells": wells, "times": times}
    for key, value in change.items():
        args[key] = value(args[key]) if callable(value) else value
    return args


def _set(i, j, v):
    def edit(a):
        a = a.copy()
        a[i, j] = v
        return a
    return edit


def _well(n, **kw):
    return lambda wells: [({**w, **kw} if i == n else w) for i, w in enumerate(wells)]


@pytest.mark.parametrize("change, match", [
    ({"permeability": _set(3, 5, np.nan)}, r"permeability is nan at x=52.5 m, z=82.5 m \(cell 3, 5\)"),
    ({"permeability": _set(2, 0, -1.0)}, r"permeability is -1 at x=37.5 m, z=7.5 m .*finite and > 0 mD"),
    ({"porosity": _set(4, 4, 1.0)}, r"porosity is 1 at x=67.5 m, z=67.5 m \(cell 4, 4\); it must be in \(0, 1\)"),
    ({"porosity": np.full((16, 15), 0.2)}, r"porosity shape \(16, 15\) differs from permeability shape \(16, 16\)"),
    ({"wells": _well(0, x=1000.0, z=30.0)},
     r"well 'injector' at x=1000 m, z=30 m lies outside the grid \(0-240 m x 0-240 m\)"),
    ({"wells": _well(1, x=10.0, z=2.0)}, r"wells 'injector' and 'producer' both lie in the cell at x=7.5 m, z=7.5 m"),
    ({"wells": _well(1, rate=-1.5e-4)}, r"rates do not balance: injection 0.0002 m³/s vs production 0.00015 m³/s"),
    ({"wells": _well(0, rate=-2e-4)}, r"no injector"),
    ({"wells": _well(1, rate=None)}, r"well 'producer': rate must be a finite number"),
    ({"times": [DAY, 3 * DAY, 2 * DAY]},
     r"strictly increasing: #2 \(172800 s\) is not after report time #1 \(259200 s\)"),
    ({"times": [0.0, DAY]}, r"report times must be > 0 .*#0 \(0 s\) is not after t = 0"),
])
def test_bad_input_names_the_place(change, match):
    with pytest.raises(InputError, match=match):
        simulate(**_case(**change))


def test_bad_sample_is_caught_before_any_simulation():
    rock = _channel_rock([0, 1])
    rock["permeability"].values[1, 0, 0] = 0.0
    with pytest.raises(InputError, match=r"permeability is 0 at x=7.5 m, z=7.5 m"):
        simulate_samples(rock, wells=CHANNEL_WELLS, times=REPORT_DAYS)
    with pytest.raises(InputError, match=r"#1 \(20 d\) is not after report time #0 \(60 d\)"):
        simulate_samples(rock, wells=CHANNEL_WELLS, times=[60.0, 20.0])
