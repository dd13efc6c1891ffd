"""Gravity in the CO2 simulator: a column at rest is hydrostatic, a closed column segregates (CO2 on top, the
cap as high as its mobile volume fills), gravity off keeps the gravity-free bits, and the plume of the study's
channel rises."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

from strata_errors import InputError
from tasks.co2.fields import rock_samples
from tasks.co2.rock_physics import RHO_BRINE, RHO_CO2
from tasks.co2.simulator import DAY, check_wells, mass_balance_error, simulate, simulate_samples

G = 9.8  # m/s²


# --- gravity off: the gravity-free arithmetic, bit for bit ---------------------------------------------------------

def _patterned_rock(nx=12, nz=10):
    """Integer patterns only (no transcendental functions), so the inputs are the same bits everywhere."""
    i, j = np.meshgrid(np.arange(nx), np.arange(nz), indexing="ij")
    return 50.0 + 10.0 * ((3 * i + 7 * j) % 11), 0.2 + 0.01 * ((i + 2 * j) % 5)


PRODUCERS = {"bhp": {"name": "prod", "x": 170.0, "z": 20.0, "pressure": 9.9e6},
             "rate": {"name": "prod", "x": 170.0, "z": 20.0, "rate": -2e-4}}
# sha256 of (saturation, pressure).tobytes() computed by the simulator before gravity was added
BEFORE_GRAVITY = {
    "bhp": ("d318b54d603251463de6b5708826191c003e551e272ebd21c3b54d9a898d5cf1",
            "afe1ec05b95d3fe849136ddc5a89616cbf4c1505aa1f29550d8d7d74ab4ad94d"),
    "rate": ("92ce156c2fb7f5634ea1d74cd91845469d35ae93dd919b082ab1cd4bc16cca54",
             "4705f1efc1608b216db497cdf0fbfd920cf83835585ddf23d126766151008aff"),
}


def _hashes(producer, **kw):
    k, phi = _patterned_rock()
    wells = [{"name": "inj", "x": 15.0, "z": 70.0, "rate": 2e-4}, PRODUCERS[producer]]
    res = simulate(k, phi, wells=wells, times=[5e6, 1e7, 2e7], corey=(2.0, 3.0), residual=(0.05, 0.1),
                   pressure_steps=2, **kw)
    return tuple(hashlib.sha256(a.tobytes()).hexdigest() for a in (res.saturation, res.pressure))


@pytest.mark.parametrize("producer", ["bhp", "rate"])
def test_gravity_off_keeps_the_bits_of_the_simulator_before_gravity(producer):
    assert _hashes(producer) == BEFORE_GRAVITY[producer]
    assert _hashes(producer, gravity=0.0, rho_co2=700.0, initial_saturation=np.zeros((12, 10))) == \
        BEFORE_GRAVITY[producer]
    assert _hashes(producer, gravity=G)[0] != BEFORE_GRAVITY[producer][0]  # and gravity does change the flow


# --- a column at rest ----------------------------------------------------------------------------------------------

def _layered(nx=5, nz=12):
    i, j = np.meshgrid(np.arange(nx), np.arange(nz), indexing="ij")
    return 10.0 + 40.0 * ((5 * i + 3 * j) % 7), np.full((nx, nz), 0.2)


@pytest.mark.parametrize("s0, residual, rho", [
    (0.0, (0.0, 0.0), RHO_BRINE),    # brine only
    (0.1, (0.1, 0.2), RHO_BRINE),    # residual (immobile) CO2 in brine
    (1.0, (0.0, 0.0), RHO_CO2),      # CO2 only
])
def test_a_column_at_rest_stays_at_rest_with_hydrostatic_pressure(s0, residual, rho):
    k, phi = _layered()
    dz = 7.0
    res = simulate(k, phi, spacing=(10.0, dz), times=[10 * DAY, 200 * DAY], residual=residual,
                   initial_saturation=np.full(k.shape, s0), gravity=G, p_ref=2.0e7)
    for s, p in zip(res.saturation, res.pressure, strict=True):
        np.testing.assert_allclose(np.diff(p, axis=1), rho * G * dz, rtol=1e-10)  # down: + ρ g dz per cell
        np.testing.assert_allclose(np.diff(p, axis=0), 0.0, atol=1e-10 * rho * G * dz)  # level: none sideways
        assert p.mean() == pytest.approx(2.0e7, rel=1e-14)  # no pressure well: the mean is p_ref
        np.testing.assert_allclose(s, s0, rtol=0, atol=1e-10)
    assert res.transport_steps > 2  # the gravity flux bounds the step even though nothing moves
    assert res.injected_co2.tolist() == res.produced_co2.tolist() == [0.0, 0.0]


def test_without_gravity_nothing_moves_in_one_step_per_pressure_step():
    k, phi = _layered()
    s0 = np.where(np.arange(12) < 6, 0.0, 0.7)[None].repeat(5, axis=0)
    res = simulate(k, phi, times=[DAY, 2 * DAY], initial_saturation=s0, pressure_steps=3)
    assert res.transport_steps == 6
    np.testing.assert_array_equal(res.saturation, np.stack([s0, s0]))
    np.testing.assert_allclose(res.pressure, 1.0e7, rtol=1e-15)


# --- segregation in a closed column --------------------------------------------------------------------------------

NZ, DZ, NX, DX, PHI = 40, 2.5, 2, 5.0, 0.2
S_CR, S_BR = 0.1, 0.2  # residual saturations of CO2 and brine


def _initial(kind):
    if kind == "bottom":  # CO2 in the bottom 30 %, brine above: the rising CO2 leaves its residual behind
        return np.where(np.arange(NZ) >= 0.7 * NZ, 0.6, 0.0)[None].repeat(NX, axis=0)
    return np.full((NX, NZ), 0.3)  # spread


@pytest.mark.parametrize("kind", ["bottom", "spread"])
def test_a_closed_column_segregates_with_the_co2_on_top(kind):
    s0 = _initial(kind)
    phi = np.full(s0.shape, PHI)
    times = np.array([100.0, 200.0, 400.0]) * DAY
    res = simulate(np.full(s0.shape, 1000.0), phi, spacing=(DX, DZ), times=times, residual=(S_CR, S_BR),
                   initial_saturation=s0, gravity=G)
    volume0 = float((phi * s0).sum())
    for s in res.saturation:  # CO2 volume conserved to round-off
        assert abs(float((phi * s).sum()) - volume0) <= 1e-12 * volume0
        assert s.min() >= 0.0 and s.max() <= 1.0 - S_BR + 1e-12
    s = res.saturation[-1]
    assert s.min() >= S_CR - 1e-12  # the rising CO2 passed every cell and left its residual
    np.testing.assert_allclose(s, s[:1].repeat(NX, axis=0), rtol=0, atol=1e-5)  # columns alike (round-off grows)
    assert (np.diff(s, axis=1) <= 1e-12).all(), np.round(s[0], 3)  # non-increasing with depth: CO2 on top
    # the cap (1 − S_BR) is as high as the mobile CO2 fills: V_mobile / (φ (1 − residuals) width)
    mobile = float((phi * (s0 - S_CR)).sum()) * DX * DZ
    height = mobile / (PHI * (1.0 - S_CR - S_BR) * NX * DX)
    column = s[0]
    mid = 0.5 * (S_CR + 1.0 - S_BR)
    i = int(np.flatnonzero(column < mid)[0])  # the first cell below the cap's base
    base = (i - 0.5) * DZ + (column[i - 1] - mid) / (column[i - 1] - column[i]) * DZ
    assert abs(base - height) <= DZ, (base, height)
    assert column[:i - 1].min() > 1.0 - S_BR - 0.05 and column[i + 1:].max() < S_CR + 0.05  # cap over residual
    assert not (res.saturation[0] == s).all()  # still moving at the first report: the last one is not trivial


def test_the_gravity_bound_is_finite_in_a_closed_column():
    s0 = _initial("bottom")
    args = dict(spacing=(DX, DZ), times=[100 * DAY], initial_saturation=s0, gravity=G, substep=False)
    with pytest.raises(InputError, match="exceeds the transport CFL bound"):
        simulate(np.full(s0.shape, 1000.0), np.full(s0.shape, PHI), **args)


# --- the study's channel -------------------------------------------------------------------------------------------

def test_the_plume_rises_in_the_channel_and_mass_balances():
    rock = rock_samples(np.array([0]), kind="channelized", shape=(32, 32), spacing=15.0, seed=3,
                        channel={"depth": 240.0, "thickness": 90.0, "undulation": 30.0, "correlation_length": 150.0},
                        porosity={"kind": "from_permeability"})
    wells = [{"name": "injector", "x": 7.5, "z": 240.0, "rate": 5e-4},
             {"name": "producer", "x": 472.5, "z": 240.0, "rate": -5e-4}]
    on, off = (simulate_samples(rock, wells=wells, times=[100.0, 200.0, 300.0], gravity=g, pressure_steps=2)
               for g in (G, 0.0))
    assert (on.attrs["gravity"], on.attrs["rho_co2"], on.attrs["rho_brine"]) == (G, RHO_CO2, RHO_BRINE)
    assert off.attrs["gravity"] == 0.0
    assert np.abs(mass_balance_error(on)).max() < 1e-12
    s = on["saturation"].values
    assert s.min() >= -1e-12 and s.max() <= 1 + 1e-12

    def centre(ds):  # CO2-volume-weighted depth at each report (m)
        v = (ds["porosity"] * ds["saturation"]).isel(sample=0).transpose("time", "x", "z").values
        return (v * ds["z"].values).sum((1, 2)) / v.sum((1, 2))

    lift = centre(off) - centre(on)
    assert (np.diff(lift) > 0).all() and lift[0] > 0, lift  # buoyancy lifts the plume more and more
    assert lift[-1] >= 0.5 * on.attrs["spacing"][1], lift
    injector = json.loads(on.attrs["wells"])[0]
    assert centre(on)[-1] < (injector["iz"] + 0.5) * on.attrs["spacing"][1]


# --- input ---------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("change, match", [
    ({"initial_saturation": np.zeros((5, 11))}, r"initial_saturation shape \(5, 11\) differs from permeability "
                                                r"shape \(5, 12\)"),
    ({"initial_saturation": np.full((5, 12), 1.5)}, r"initial_saturation is 1.5 at x=7.5 m, z=7.5 m \(cell 0, 0\); "
                                                    r"it must be in \[0, 1\] \(60 bad cells\)"),
    ({"initial_saturation": np.where(np.arange(12) == 3, np.nan, 0.0)[None].repeat(5, axis=0)},
     r"initial_saturation is nan at x=7.5 m, z=52.5 m \(cell 0, 3\)"),
    ({"initial_saturation": [["a"] * 12] * 5}, r"initial_saturation must be a numeric \(x, z\) array"),
    ({"gravity": -9.8}, r"gravity must be a finite number >= 0 m/s² \(0: off\), got -9.8"),
    ({"gravity": float("inf")}, r"gravity must be a finite number"),
    ({"rho_co2": 0.0}, r"rho_co2 must be a finite number > 0, got 0.0"),
    ({"rho_brine": float("nan")}, r"rho_brine must be a finite number > 0"),
])
def test_bad_gravity_input_names_the_place(change, match):
    k, phi = _layered()
    with pytest.raises(InputError, match=match):
        simulate(k, phi, times=[DAY], **change)


def test_no_wells_is_allowed_but_a_well_list_needs_an_injector():
    check_wells([], (4, 4), 15.0)
    with pytest.raises(InputError, match="no injector"):
        check_wells([{"name": "p", "x": 7.5, "z": 7.5, "pressure": 1e7}], (4, 4), 15.0)
