"""Imaging conditions of RTM: ``born``, ``crosscorrelation`` and ``isic`` (inverse scattering).

Known answer: a flat reflector (1500 over 2000 m/s at 200 m) under a 1.2 km surface spread, the
migration background the true model smoothed (60 m), records from the true model, the modelled
background data subtracted, 3 shots stacked with source-illumination normalisation and muted
above 50 m with a 30 m taper. With offsets up to 900 m over a 200 m deep interface (well past the
critical angle, 48.6°) the residual holds post-critical reflections and head waves, which travel
with the source wavefield: their correlation is the low-wavenumber RTM artifact. Its share of the
image energy (:func:`tasks.seismic.quality.low_wavenumber_share`, ``k_low`` as
:func:`tasks.seismic.quality.image_quality` takes it) is smallest with ``isic``, which cancels
same-direction correlations, largest with the zero-lag cross-correlation, which has no
``ω²`` weight. Also: ``isic`` and ``born`` images point the same way (positive inner product),
``isic`` is linear in the data, snapshots without the halo ``isic`` needs are refused, and
``isic`` runs in 3-D.
"""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from strata_errors import InputError
from tasks.seismic.born import backpropagate, forward_snapshots
from tasks.seismic.geometry import areal_geometry, shot_positions, surface_geometry
from tasks.seismic.linear_operators import CONDITIONS
from tasks.seismic.migration import migrate_shot, mute_shallow, stack_images
from tasks.seismic.model import constant_model, layered_model, smooth_model, with_circle
from tasks.seismic.quality import low_frequency, low_wavenumber_share
from tasks.seismic.solver import shared_model, survey_shots

pytestmark = pytest.mark.slow

H, SO, NBL, SHAPE, DEPTH = 10.0, 8, 20, (121, 41), 200.0
MUTE, TAPER = 50.0, 30.0
KW = {"space_order": SO, "nbl": NBL}


@pytest.fixture(scope="module")
def flat():
    true = layered_model(SHAPE, H, [1500.0, 2000.0], [DEPTH])
    background = smooth_model(true, 60.0)
    geo = surface_geometry(true, n_shots=3, shot_spacing=300.0, first_shot_x=300.0,
                           n_receivers=SHAPE[0], receiver_spacing=H, source_depth=20.0,
                           receiver_depth=10.0, record_length=0.8, f0=12.0)
    records = survey_shots(true, geo, **KW)
    per_shot = {c: migrate_shot(background, geo, records, condition=c, **KW) for c in CONDITIONS}
    return true, background, geo, records, per_shot


def k_low_of(background: xr.Dataset, geo: xr.Dataset) -> float:
    """``2 f_low / v_max`` as :func:`tasks.seismic.quality.image_quality` takes it."""
    f_low = low_frequency(geo["wavelet"].values, float(geo.attrs["dt"]))
    return 2.0 * f_low / float(background["vp"].max())


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    a, b = np.asarray(a, np.float64).ravel(), np.asarray(b, np.float64).ravel()
    return float(np.vdot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))


def test_isic_has_the_smallest_low_wavenumber_share(flat):
    _, background, geo, _, per_shot = flat
    k_low = k_low_of(background, geo)
    share, depth = {}, {}
    for c, ds in per_shot.items():
        assert ds.attrs["condition"] == c and ds.attrs["snapshot_factor"] > 1
        image = mute_shallow(stack_images(ds, normalize=True).image, MUTE, TAPER)
        assert np.all(np.isfinite(image.values)) and float(np.abs(image).max()) > 0
        share[c] = low_wavenumber_share(image, mute_depth=MUTE, k_low=k_low)
        middle = np.abs(image.sel(x=slice(500.0, 700.0)).values)          # between the shots
        depth[c] = float(np.median(image.z.values[middle.argmax(axis=1)]))
    print(f"\nlow-wavenumber share (k_low {k_low:.5f} 1/m): "
          + ", ".join(f"{c} {s:.4f}" for c, s in share.items()))
    print("strongest event at x 500..700 m (median depth, m):", depth)
    assert share["isic"] < share["born"], share
    assert share["isic"] < share["crosscorrelation"], share
    assert abs(depth["isic"] - DEPTH) <= 3 * H, depth          # the reflector is still imaged


def test_isic_and_born_images_agree_in_sign(flat):
    per_shot = flat[4]
    born, isic = per_shot["born"].image, per_shot["isic"].image
    stacked = cosine(born.sum("shot").values, isic.sum("shot").values)
    shots = [cosine(born.isel(shot=k).values, isic.isel(shot=k).values)
             for k in range(born.sizes["shot"])]
    print(f"\ncos(isic, born): stacked {stacked:.4f}, per shot "
          + " ".join(f"{c:.4f}" for c in shots))
    assert stacked > 0 and all(c > 0 for c in shots)


def test_isic_is_linear_in_the_data(flat):
    true, background, geo, records, _ = flat
    geo1, d1 = geo.isel(shot=[1]), records.isel(shot=[1])
    other = with_circle(layered_model(SHAPE, H, [1800.0, 1600.0], [300.0]), center=(600.0, 150.0),
                        radius=40.0, vp=2000.0)      # another direct wave, other reflections
    d2 = survey_shots(other, geo1, **KW)
    a, b = 0.7, -1.3
    combined = d1.copy(data={"data": a * d1.data.astype(np.float64) + b * d2.data.astype(np.float64)})

    def image(data: xr.Dataset) -> np.ndarray:
        ds = migrate_shot(background, geo1, data, condition="isic", subtract_background=False, **KW)
        return ds.image.values[0].astype(np.float64)

    i1, i2, i12 = image(d1), image(d2), image(combined)
    err = float(np.linalg.norm(i12 - (a * i1 + b * i2)) / np.linalg.norm(i12))
    print(f"\nisic linearity: ||I(a d1 + b d2) - a I(d1) - b I(d2)|| / ||I(a d1 + b d2)|| = {err:.2e}"
          f" (cos(I(d1), I(d2)) = {cosine(i1, i2):.3f})")
    assert err <= 1e-4, err


def test_isic_needs_snapshots_with_a_halo(flat):
    _, background, geo, records, _ = flat
    model = shared_model(background, geo, **KW)
    src, rec = shot_positions(geo, 0, model.dims)
    wavelet, dt = geo.wavelet.values.astype(np.float64), float(geo.attrs["dt"])
    state = forward_snapshots(model, src, wavelet, rec, dt, factor=4, condition="born")
    assert state.usave.space_order == 0
    with pytest.raises(InputError, match="halo"):
        backpropagate(model, state, rec, state.traces, dt, condition="isic")
    with pytest.raises(InputError, match="imaging condition"):
        backpropagate(model, state, rec, state.traces, dt, condition="deconvolution")
    with pytest.raises(InputError, match="imaging condition"):
        migrate_shot(background, geo.isel(shot=[0]), records.isel(shot=[0]), condition="ISIC", **KW)


def test_isic_in_3d():
    shape, depth = (25, 25, 25), 150.0
    true = layered_model(shape, H, [1500.0, 2000.0], [depth])
    background = constant_model(shape, H, 1500.0)
    geo = areal_geometry(true, n_shots=1, shot_spacing=H, n_shots_y=1, first_shot_x=120.0,
                         first_shot_y=120.0, source_depth=20.0, n_receivers=13,
                         receiver_spacing=2 * H, n_receivers_y=13, receiver_depth=10.0,
                         record_length=0.3, f0=15.0)
    kw = {"space_order": SO, "nbl": 10}
    records = survey_shots(true, geo, **kw)
    ds = migrate_shot(background, geo, records, condition="isic", **kw)
    image = ds.image.isel(shot=0)
    assert image.dims == ("x", "y", "z")
    values = image.values
    assert np.all(np.isfinite(values)) and float(np.abs(values).max()) > 0
    column = np.abs(values[12, 12])
    below = image.z.values >= MUTE
    peak = float(image.z.values[below][column[below].argmax()])
    print(f"\n3-D isic: max |image| {np.abs(values).max():.3g}, peak under the source at z = {peak:g} m")
    assert abs(peak - depth) <= 3 * H
