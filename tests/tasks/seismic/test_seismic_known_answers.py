"""Known answers for the acoustic solver: analytic Green's functions, reciprocity, noise.

Constants and the analytic references follow docs/stack-notes.md: a receiver reads
``h_x h_z (G * s)(t)`` with ``G = H(t - r/v) / (2 pi sqrt(t^2 - r^2/v^2))`` in 2D and
``h_x h_y h_z s(t - r/v) / (4 pi r)`` in 3D. Every window ends before the first wave that
could touch a model edge (where the damping layer starts) reaches the receiver.
"""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from strata_errors import InputError
from tasks.seismic.geometry import make_geometry, surface_geometry
from tasks.seismic.model import (
    add_random_perturbation,
    constant_model,
    layered_model,
    with_circle,
)
from tasks.seismic.solver import simulate_shot, simulate_shots
from tasks.seismic.stencil import DispersionWarning, critical_dt
from tasks.seismic.wavelet import ricker

pytestmark = pytest.mark.slow

V, F0, SO, NBL = 1500.0, 10.0, 8, 40


def rel_l2(a, b) -> float:
    return float(np.linalg.norm(np.asarray(a, float) - b) / np.linalg.norm(b))


def analytic_2d(t: np.ndarray, r: float, cell: float) -> np.ndarray:
    """``cell * (G * ricker)(t)``, with tau = (r/v) cosh(xi) removing the singularity."""
    tau0 = r / V
    out = np.zeros_like(t)
    for i, ti in enumerate(t):
        if ti > tau0:
            xi = np.linspace(0.0, np.arccosh(ti / tau0), 4001)
            out[i] = np.trapezoid(ricker(F0, ti - tau0 * np.cosh(xi)), xi) / (2 * np.pi)
    return cell * out


def homogeneous_2d_error(points_per_wavelength: int, space_order: int = SO) -> float:
    """Relative L2 misfit at 4 wavelengths, dt = CFL/4."""
    h = V / F0 / points_per_wavelength
    model = constant_model((int(1200 / h) + 1, int(1037.5 / h) + 1), h, V)
    src, rec = np.array([[300.0, 512.5]]), np.array([[900.0, 512.5]])  # 600 m = 4 lambda0
    dt = critical_dt(V, (h, h), space_order) / 4
    # the shortest path via an edge is 2 * hypot(300, 512.5) = 1188 m > V * 0.75 s
    geo = make_geometry(model, src, rec, record_length=0.75, f0=F0, dt=dt,
                        space_order=space_order)
    shot = simulate_shot(model, geo, 0, space_order=space_order, nbl=NBL)
    assert shot.data.dims == ("receiver", "time") and shot.data.dtype == np.float32
    return rel_l2(shot.data.values[0], analytic_2d(shot.time.values, 600.0, h * h))


def test_2d_homogeneous_matches_analytic_and_converges():
    coarse = homogeneous_2d_error(12)
    fine = homogeneous_2d_error(24)
    print(f"2D analytic rel L2: 12 ppw {coarse:.4f}, 24 ppw {fine:.4f}")
    assert coarse <= 0.02
    assert fine < 0.5 * coarse


def test_space_orders_4_and_16():
    # 12 points per wavelength at f0 is 4.35 at f_max: too few for order 4 (needs 5.26)
    with pytest.warns(DispersionWarning, match="space order 4 needs"):
        low = homogeneous_2d_error(12, space_order=4)
    high = homogeneous_2d_error(12, space_order=16)
    print(f"2D analytic rel L2 at 12 ppw: order 4 {low:.4f}, order 16 {high:.4f}")
    assert high <= 0.02 and high < low <= 0.06


@pytest.mark.filterwarnings("ignore::tasks.seismic.stencil.DispersionWarning")
def test_3d_homogeneous_matches_analytic():
    h = V / F0 / 8                                    # 18.75 m, 8 points per wavelength
    # source 8 points from the x=0 edge, receiver 16 further (300 m), 14 points to y/z edges
    model = constant_model((33, 29, 29), h, V)
    src, rec = np.array([[150.0, 262.5, 262.5]]), np.array([[450.0, 262.5, 262.5]])
    record = 0.4  # edge paths: 2*150+300 = 600 m, 2*hypot(150, 262.5) = 605 m >= V * 0.4
    dt = critical_dt(V, (h, h, h), SO) / 4
    geo = make_geometry(model, src, rec, record_length=record, f0=F0, dt=dt, space_order=SO)
    shot = simulate_shot(model, geo, 0, space_order=SO, nbl=20)
    t = shot.time.values
    err = rel_l2(shot.data.values[0], h**3 * ricker(F0, t - 300.0 / V) / (4 * np.pi * 300.0))
    print(f"3D analytic rel L2 at 8 ppw: {err:.4f}")
    assert err <= 0.05


@pytest.fixture(scope="module")
def rough_model() -> xr.Dataset:
    """Layers + random field + a fast circle, on the 12 ppw grid of the 2D test."""
    model = layered_model((97, 84), 12.5, [1500.0, 2000.0, 2600.0], [300.0, 700.0])
    model = add_random_perturbation(model, std=80.0, correlation_lengths=(100.0, 40.0),
                                    seed=11)
    return with_circle(model, center=(700.0, 450.0), radius=90.0, vp=3000.0)


def test_reciprocity_off_grid_in_heterogeneous_medium(rough_model):
    a, b = [333.3, 211.1], [871.7, 640.9]
    geo = make_geometry(rough_model, np.array([a, b]), np.array([[b], [a]]),
                        record_length=1.0, f0=F0, space_order=SO)
    shots = simulate_shots(rough_model, geo, [0, 1], space_order=SO, nbl=NBL)
    ab, ba = shots.data.values[0, 0], shots.data.values[1, 0]
    err = rel_l2(ba, ab)
    print(f"reciprocity rel L2: {err:.2e}")
    assert err <= 1e-3


def test_shots_dataset_noise_and_seeding(rough_model):
    geo = surface_geometry(rough_model, n_shots=3, shot_spacing=500.0, source_depth=25.0,
                           n_receivers=25, receiver_spacing=50.0, receiver_depth=12.5,
                           record_length=0.6, f0=F0, space_order=SO)
    noisy = simulate_shots(rough_model, geo, [0, 2], space_order=SO, nbl=NBL,
                           noise_snr_db=10.0, seed=5)
    assert noisy.data.dims == ("shot", "receiver", "time") and noisy.data.dtype == np.float32
    assert list(noisy.shot.values) == [0, 2] and noisy.rec_x.dims == ("shot", "receiver")
    np.testing.assert_allclose(noisy.src_x, [0.0, 1000.0])
    np.testing.assert_array_equal(noisy.time, geo.time)
    assert noisy.attrs["noise_snr_db"] == 10.0 and noisy.attrs["space_order"] == SO
    one = simulate_shot(rough_model, geo, 2, space_order=SO, nbl=NBL, noise_snr_db=10.0, seed=5,
                        threads=1)
    assert one.data.values.tobytes() == noisy.data.values[1].tobytes()
    clean = simulate_shot(rough_model, geo, 2, space_order=SO, nbl=NBL)
    noise = one.data.values.astype(float) - clean.data.values
    snr = 10 * np.log10(np.mean(clean.data.values.astype(float) ** 2) / np.mean(noise**2))
    assert snr == pytest.approx(10.0, abs=0.3)
    other = simulate_shot(rough_model, geo, 2, space_order=SO, nbl=NBL, noise_snr_db=10.0,
                          seed=6)
    assert other.data.values.tobytes() != one.data.values.tobytes()


def test_bad_simulation_inputs_fail_before_compiling(rough_model):
    geo = surface_geometry(rough_model, n_shots=2, shot_spacing=100.0, n_receivers=3,
                           receiver_spacing=10.0, record_length=0.3, f0=F0, space_order=SO)
    with pytest.raises(InputError, match=r"shot index 2 is out of range \(geometry has 2"):
        simulate_shot(rough_model, geo, 2, space_order=SO, nbl=NBL)
    with pytest.raises(InputError, match="no shots to simulate"):
        simulate_shots(rough_model, geo, [], space_order=SO)
    with pytest.raises(InputError, match="zero shots"):
        simulate_shots(rough_model, geo.isel(shot=[]), [0], space_order=SO)
    with pytest.raises(InputError, match="source 1 at x=100 m, z=0 m is outside"):
        simulate_shot(rough_model.isel(x=slice(0, 5)), geo, 0, space_order=SO)
    with pytest.raises(InputError, match="above the CFL limit"):
        simulate_shot(rough_model * 2, geo, 0, space_order=SO)
    bad = rough_model.copy(deep=True)
    bad["vp"].values[4, 7] = np.nan
    with pytest.raises(InputError, match=r"1 NaN values \(first at x=50 m, z=87.5 m\)"):
        simulate_shot(bad, geo, 0, space_order=SO)
    with pytest.raises(InputError, match="space order must be an even number"):
        simulate_shot(rough_model, geo, 0, space_order=18)
