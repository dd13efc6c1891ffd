"""Velocity-model builders, imports and validation (no devito compilation)."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from strata_errors import InputError
from tasks.seismic.model import (
    add_random_perturbation,
    constant_model,
    layered_model,
    load_npy,
    load_zarr,
    model_from_array,
    smooth_model,
    validate_model,
    with_box,
    with_circle,
)


def test_layered_model_has_units_coords_and_layers():
    ds = layered_model((11, 21), 10.0, [1500.0, 2000.0, 3000.0], [50.0, 120.0])
    assert ds.vp.dims == ("x", "z") and ds.vp.dtype == np.float32
    assert ds.vp.attrs["units"] == "m/s" and ds.x.attrs["units"] == "m"
    np.testing.assert_allclose(ds.z.values, 10.0 * np.arange(21))
    col = ds.vp.isel(x=3).values
    assert set(col[:5]) == {1500.0} and set(col[5:12]) == {2000.0} and set(col[12:]) == {3000.0}


def test_3d_model_dims_and_anomalies():
    ds = constant_model((9, 7, 5), (10.0, 20.0, 5.0), 2000.0, origin=(100.0, 0.0, 0.0))
    assert ds.vp.dims == ("x", "y", "z") and float(ds.x[0]) == 100.0 and float(ds.y[1]) == 20.0
    ball = with_circle(ds, center=(140.0, 60.0, 10.0), radius=15.0, vp=2500.0)
    assert float(ball.vp.sel(x=140.0, y=60.0, z=10.0)) == 2500.0
    assert float(ball.vp.sel(x=100.0, y=0.0, z=0.0)) == 2000.0
    box = with_box(ds, lower=(100.0, 0.0, 0.0), upper=(120.0, 40.0, 5.0), vp=1800.0)
    assert int((box.vp.values == 1800.0).sum()) == 3 * 3 * 2
    assert float(ds.vp.max()) == 2000.0  # inputs untouched


def test_random_field_is_seeded_and_has_requested_statistics():
    base = constant_model((200, 150), 10.0, 2500.0)
    a = add_random_perturbation(base, std=100.0, correlation_lengths=(80.0, 40.0), seed=3)
    b = add_random_perturbation(base, std=100.0, correlation_lengths=(80.0, 40.0), seed=3)
    c = add_random_perturbation(base, std=100.0, correlation_lengths=(80.0, 40.0), seed=4)
    assert a.vp.values.tobytes() == b.vp.values.tobytes()
    assert a.vp.values.tobytes() != c.vp.values.tobytes()
    pert = a.vp.values.astype(float) - 2500.0
    assert pert.std() == pytest.approx(100.0, rel=1e-3) and abs(pert.mean()) < 0.1
    # correlation exp(-(d/l)^2): at lag d = l it is 1/e; x is correlated longer than z
    def corr(axis, lag):
        p0 = np.take(pert, range(pert.shape[axis] - lag), axis=axis)
        p1 = np.take(pert, range(lag, pert.shape[axis]), axis=axis)
        return float(np.mean(p0 * p1) / pert.var())
    assert corr(0, 8) == pytest.approx(np.exp(-1), abs=0.1)
    assert corr(1, 4) == pytest.approx(np.exp(-1), abs=0.1)


def test_smoothing_keeps_constants_and_blurs_steps():
    const = constant_model((30, 40), 10.0, 1800.0)
    np.testing.assert_allclose(smooth_model(const, 50.0).vp.values, 1800.0, rtol=1e-6)
    step = layered_model((30, 40), 10.0, [1500.0, 3000.0], [200.0])
    smooth = smooth_model(step, 30.0)
    col = smooth.vp.isel(x=10).values
    assert col.min() >= 1500.0 - 1e-3 and col.max() <= 3000.0 + 1e-3
    assert np.all(np.diff(col) >= -1e-3) and 1500.0 < col[20] < 3000.0
    assert np.abs(np.diff(col)).max() < 0.5 * 1500.0
    # in slowness the mean slowness is kept (away from the edges)
    s_in = (1 / step.vp.values.astype(float))[:, 5:-5].mean()
    s_out = (1 / smooth.vp.values.astype(float))[:, 5:-5].mean()
    assert s_out == pytest.approx(s_in, rel=1e-3)
    assert smooth.vp.attrs["smoothing_sigma_m"] == [30.0, 30.0]


def test_import_npy_in_km_per_s(tmp_path):
    arr = np.linspace(1.5, 3.0, 12, dtype=np.float32).reshape(3, 4)
    np.save(tmp_path / "vp.npy", arr)
    ds = load_npy(tmp_path / "vp.npy", spacing=(5.0, 2.5), units="km/s")
    np.testing.assert_allclose(ds.vp.values, arr * 1000, rtol=1e-6)
    np.testing.assert_allclose(ds.z.values, [0.0, 2.5, 5.0, 7.5])


def test_import_zarr_transposed_with_origin(tmp_path):
    vp = np.arange(1, 13, dtype=np.float32).reshape(4, 3) * 100 + 1000  # (z, x)
    src = xr.Dataset({"velocity": (("z", "x"), vp, {"units": "m/s"})},
                     coords={"z": 100.0 + 4.0 * np.arange(4), "x": 8.0 * np.arange(3)})
    src.to_zarr(tmp_path / "m.zarr", consolidated=False)
    ds = load_zarr(tmp_path / "m.zarr", variable="velocity")
    assert ds.vp.dims == ("x", "z")
    np.testing.assert_array_equal(ds.vp.values, vp.T)
    np.testing.assert_allclose(ds.z.values, src.z.values)
    with pytest.raises(InputError, match="has no variable 'vp'"):
        load_zarr(tmp_path / "m.zarr")


def test_bad_velocities_are_one_line_errors_that_say_where():
    vp = np.full((10, 8), 2000.0)
    vp[[6, 7, 9], [2, 5, 5]] = np.nan
    with pytest.raises(InputError) as err:
        model_from_array(vp, 20.0)
    assert str(err.value) == "velocity model 'vp' has 3 NaN values (first at x=120 m, z=40 m)"
    vp = np.full((10, 8), 2000.0)
    vp[2, 3] = 0.0
    vp[4, 1] = -5.0
    with pytest.raises(InputError, match=r"2 non-positive values \(first at x=20 m, z=30 m\)"):
        model_from_array(vp, 10.0)
    ds = constant_model((5, 5), 10.0, 1500.0)
    ds["vp"].values[0, 0] = np.inf
    with pytest.raises(InputError, match="1 infinite values"):
        validate_model(ds)
    with pytest.raises(InputError, match="uniform"):
        validate_model(ds.isel(x=[0, 1, 3]))
    with pytest.raises(InputError, match="dims"):
        validate_model(ds.transpose("z", "x"))
    with pytest.raises(InputError, match="2 interface depths"):
        layered_model((5, 5), 10.0, [1500.0, 2000.0, 2500.0], [10.0])
