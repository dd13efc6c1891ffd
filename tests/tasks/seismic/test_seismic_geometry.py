"""Acquisition geometry, time step, wavelets and stencil facts (no devito compilation)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from strata_errors import InputError
from tasks.seismic.geometry import (
    choose_dt,
    crosswell_geometry,
    make_geometry,
    ocean_bottom_geometry,
    surface_geometry,
    time_axis,
    validate_geometry,
)
from tasks.seismic.model import constant_model, layered_model
from tasks.seismic.stencil import (
    DispersionWarning,
    critical_dt,
    laplacian_weights,
    required_points_per_wavelength,
)
from tasks.seismic.wavelet import max_frequency, resample_wavelet, ricker


@pytest.fixture(scope="module")
def model():
    return layered_model((101, 51), 10.0, [1500.0, 2500.0], [200.0])


def test_stencil_weights_and_limits():
    np.testing.assert_allclose(laplacian_weights(4), [-5 / 2, 4 / 3, -1 / 12])
    # 2D, order 4: sum|w| = 16/3, dt v / h <= sqrt(4 / (2 * 16/3))
    assert critical_dt(1.0, (1.0, 1.0), 4) == pytest.approx(np.sqrt(3 / 8))
    assert critical_dt(2000.0, (10.0, 10.0, 10.0), 8) < critical_dt(2000.0, (10.0, 10.0), 8)
    needs = [required_points_per_wavelength(so) for so in range(4, 17, 2)]
    assert np.all(np.diff(needs) < 0) and 5 < needs[0] < 5.5 and 2.6 < needs[-1] < 2.8
    with pytest.raises(InputError, match="even number from 4 to 16"):
        critical_dt(1.0, (1.0, 1.0), 5)


def test_ricker_and_user_wavelet():
    t = np.arange(0, 0.5, 1e-3)
    w = ricker(10.0, t)
    assert np.argmax(w) == 100 and w.max() == pytest.approx(1.0)
    assert 2.5 * 10 <= max_frequency(w, 1e-3) <= 3.0 * 10
    coarse = ricker(10.0, np.arange(0, 0.5, 4e-3))
    np.testing.assert_allclose(resample_wavelet(coarse, 4e-3, t), w, atol=0.02)
    with pytest.raises(InputError, match="peak frequency"):
        ricker(0.0, t)


def test_time_axis_and_cfl_dt(model):
    t = time_axis(1.0, 0.003)
    assert t[-1] >= 1.0 and t[-2] < 1.0 and len(t) == 335
    limit = critical_dt(2500.0, (10.0, 10.0), 8)
    dt = choose_dt(model, 8)
    assert 0.85 * limit < dt <= 0.9 * limit
    assert choose_dt(model, 8, 1e-3) == 1e-3
    with pytest.raises(InputError) as err:
        choose_dt(model, 8, 0.01)
    assert f"above the CFL limit {limit:.6g} s" in str(err.value)
    assert "vp_max=2500 m/s, h=10 m, space order 8" in str(err.value)


def test_surface_geometry(model):
    geo = surface_geometry(model, n_shots=4, shot_spacing=250.0, first_shot_x=100.0,
                           source_depth=10.0, n_receivers=51, receiver_spacing=20.0,
                           receiver_depth=20.0, record_length=0.5, f0=15.0)
    assert dict(geo.sizes) == {"shot": 4, "receiver": 51, "time": geo.sizes["time"]}
    np.testing.assert_allclose(geo.src_x, [100.0, 350.0, 600.0, 850.0])
    assert geo.rec_x.dims == ("shot", "receiver") and float(geo.rec_x[3, -1]) == 1000.0
    assert set(np.unique(geo.rec_z)) == {20.0} and set(np.unique(geo.src_z)) == {10.0}
    assert geo.attrs["f0"] == 15.0 and geo.attrs["dt"] == choose_dt(model, 8)
    assert geo.time.attrs["units"] == "s" and geo.src_x.attrs["units"] == "m"
    assert geo.wavelet.dtype == np.float32 and geo.time.values[-1] >= 0.5
    validate_geometry(model, geo, 8)


def test_ocean_bottom_and_crosswell(model):
    obn = ocean_bottom_geometry(model, n_shots=2, shot_spacing=100.0, n_receivers=5,
                                receiver_spacing=200.0, source_depth=5.0,
                                record_length=0.2, f0=10.0)
    np.testing.assert_allclose(obn.rec_z, 200.0)  # first node in the 2500 m/s layer
    assert obn.attrs["kind"] == "ocean_bottom"
    xw = crosswell_geometry(model, source_well_x=50.0, receiver_well_x=950.0, n_shots=3,
                            shot_spacing=100.0, first_shot_z=100.0, n_receivers=11,
                            receiver_spacing=40.0, record_length=0.2, f0=10.0)
    np.testing.assert_allclose(xw.src_z, [100.0, 200.0, 300.0])
    assert set(np.unique(xw.rec_x)) == {950.0} and float(xw.rec_z[0, -1]) == 400.0


@pytest.mark.filterwarnings("ignore::tasks.seismic.stencil.DispersionWarning")
def test_3d_line_and_user_wavelet():
    m3 = constant_model((21, 11, 11), 20.0, 2000.0)
    w = ricker(8.0, np.arange(0, 0.3, 2e-3))
    geo = surface_geometry(m3, n_shots=1, shot_spacing=0.0, n_receivers=3,
                           receiver_spacing=100.0, record_length=0.4, wavelet=w,
                           wavelet_dt=2e-3, space_order=4)
    assert float(geo.src_y[0]) == 100.0 and "f0" not in geo.attrs
    assert geo.wavelet.values.max() == pytest.approx(1.0, abs=1e-2)


def test_bad_geometry_inputs(model):
    timing = {"record_length": 0.2, "f0": 10.0}
    with pytest.raises(InputError, match="zero shots"):
        surface_geometry(model, n_shots=0, shot_spacing=10.0, n_receivers=3,
                         receiver_spacing=10.0, **timing)
    with pytest.raises(InputError, match="zero shots"):
        make_geometry(model, np.zeros((0, 2)), np.zeros((3, 2)), **timing)
    with pytest.raises(InputError) as err:
        surface_geometry(model, n_shots=3, shot_spacing=550.0, n_receivers=3,
                         receiver_spacing=10.0, **timing)
    assert str(err.value) == ("source 2 at x=1100 m, z=0 m is outside the model "
                              "(x in [0, 1000] m, z in [0, 500] m); 1 position(s) outside")
    with pytest.raises(InputError, match="receiver 0 of shot 1 at x=10 m, z=-5 m"):
        make_geometry(model, np.array([[10.0, 0.0], [20.0, 0.0]]),
                      np.array([[[10.0, 5.0]], [[10.0, -5.0]]]), **timing)
    with pytest.raises(InputError, match="above the CFL limit"):
        make_geometry(model, np.array([[10.0, 0.0]]), np.array([[20.0, 0.0]]), dt=0.01,
                      **timing)
    with pytest.raises(InputError, match="exactly one"):
        make_geometry(model, np.array([[10.0, 0.0]]), np.array([[20.0, 0.0]]),
                      record_length=0.2)
    # a geometry made for a slow model has a dt above the CFL limit of a fast one
    geo = make_geometry(constant_model((101, 51), 10.0, 1000.0), np.array([[10.0, 0.0]]),
                        np.array([[20.0, 0.0]]), **timing)
    with pytest.raises(InputError, match="above the CFL limit"):
        validate_geometry(model, geo, 8)


def test_dispersion_warning_names_the_need(model):
    with pytest.warns(DispersionWarning, match="space order 4 needs >= 5.26"):
        make_geometry(model, np.array([[10.0, 0.0]]), np.array([[20.0, 0.0]]),
                      record_length=0.2, f0=20.0, space_order=4)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        make_geometry(model, np.array([[10.0, 0.0]]), np.array([[20.0, 0.0]]),
                      record_length=0.2, f0=10.0, space_order=8)
