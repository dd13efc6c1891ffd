"""RTM: a flat reflector is imaged at its depth; map (per-shot slices) then reduce (stack).

The background is the model without the reflector, smoothed; the direct wave is removed by
subtracting the background's modelled data. In 2D the image of an interface is a
phase-rotated pulse whose two lobes straddle the interface (between the last node above and
the first node below it), so max |image| lies within ±2 points of the reflector depth.
"""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from strata_errors import InputError
from tasks.seismic.geometry import surface_geometry
from tasks.seismic.migration import direct_wave_mute, migrate_shot, stack_images
from tasks.seismic.model import constant_model, layered_model, smooth_model
from tasks.seismic.solver import survey_shots

pytestmark = pytest.mark.slow

H, SO, NBL, SHAPE, DEPTH, MUTE = 10.0, 8, 20, (81, 51), 300.0, 100.0


@pytest.fixture(scope="module")
def survey():
    true = layered_model(SHAPE, H, [1500.0, 2000.0], [DEPTH])
    background = smooth_model(constant_model(SHAPE, H, 1500.0), 20.0)
    geo = surface_geometry(true, n_shots=3, shot_spacing=250.0, first_shot_x=150.0,
                           n_receivers=SHAPE[0], receiver_spacing=H, source_depth=20.0,
                           receiver_depth=20.0, record_length=0.6, f0=15.0)
    records = survey_shots(true, geo, space_order=SO, nbl=NBL)
    per_shot = migrate_shot(background, geo, records, space_order=SO, nbl=NBL)
    return background, geo, records, per_shot


def test_flat_reflector_depth(survey):
    _, _, _, per_shot = survey
    assert per_shot.image.dims == ("shot", "x", "z")
    assert list(per_shot.shot.values) == [0, 1, 2]
    assert per_shot.attrs["snapshot_factor"] > 1               # memory-bounded by default
    for normalize in (False, True):
        image = stack_images(per_shot, normalize=normalize, mute_depth=MUTE).image
        assert image.dims == ("x", "z")
        assert np.all(image.sel(z=slice(None, MUTE - H / 2)).values == 0)
        columns = np.abs(image.values[10:-10])                # away from the edges
        depth = image.z.values[columns.argmax(axis=1)]
        assert np.all(np.abs(depth - DEPTH) <= 2 * H), depth


def test_map_then_reduce_equals_one_piece(survey):
    background, geo, records, per_shot = survey
    pieces = [migrate_shot(background, geo.isel(shot=s), records.isel(shot=s),
                           space_order=SO, nbl=NBL) for s in (0, [1, 2])]  # 0: dim dropped
    joined = xr.concat(pieces, dim="shot")
    np.testing.assert_array_equal(joined.image.values, per_shot.image.values)
    stacked = stack_images(joined)
    np.testing.assert_allclose(stacked.image.values, per_shot.image.sum("shot").values,
                               rtol=1e-5, atol=1e-6 * float(np.abs(stacked.image).max()))
    assert stacked.attrs["n_shots"] == 3


def test_records_must_match_geometry(survey):
    background, geo, records, _ = survey
    with pytest.raises(InputError, match="not in the geometry"):
        migrate_shot(background, geo.isel(shot=[0]), records.isel(shot=[1]),
                     space_order=SO, nbl=NBL)
    with pytest.raises(InputError, match="zero shots"):
        stack_images(records.isel(shot=[]).rename({"data": "image"}))


def test_direct_wave_mute():
    t = np.arange(100) * 0.01
    data = np.ones((100, 2))
    rec = np.array([[0.0, 0.0], [300.0, 0.0]])
    out = direct_wave_mute(data, np.array([0.0, 0.0]), rec, t, velocity=1500.0, delay=0.1)
    assert np.all(out[t < 0.1 - 1e-9, 0] == 0) and np.all(out[t >= 0.1 - 1e-9, 0] == 1)
    assert np.all(out[t < 0.3 - 1e-9, 1] == 0) and np.all(out[t >= 0.3 + 1e-9, 1] == 1)
    tapered = direct_wave_mute(data, np.array([0.0, 0.0]), rec, t, 1500.0, 0.1, taper=0.1)
    assert 0 < tapered[15, 0] < 1 and tapered[25, 0] == 1
