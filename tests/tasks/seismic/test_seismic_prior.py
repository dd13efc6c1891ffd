"""The structural prior (tasks.seismic.prior): seeded per sample label, inside its stated bounds, structures
that vary; and the ring layout (tasks.seismic.geometry): every position inside the model, mirror-symmetric."""

from __future__ import annotations

import numpy as np
import pytest

from strata_errors import InputError
from tasks.seismic.geometry import acquisition, ring_positions
from tasks.seismic.model import layered_model
from tasks.seismic.prior import structural_models, velocity_range

GRID = {"shape": [32, 24], "spacing": 15.0}
LAYERS = {"top_velocity": [1600.0, 2000.0], "contrast": [100.0, 600.0], "depths": [[90.0, 150.0], [200.0, 300.0]],
          "max_dip": 15.0, "min_thickness": 30.0}
ANOMALY = {"radius": [30.0, 90.0], "contrast": [-350.0, 500.0], "margin": 60.0}
TEXTURE = {"std": 25.0, "correlation_length": 40.0}
PRIOR = {"layers": LAYERS, "anomaly": ANOMALY, "texture": TEXTURE}


def test_a_sample_depends_on_its_label_alone():
    both = structural_models(np.array([3, 7, 11]), **GRID, **PRIOR, seed=5)
    alone = structural_models(np.array([7]), **GRID, **PRIOR, seed=5)
    again = structural_models(np.array([11, 7]), **GRID, **PRIOR, seed=5)
    np.testing.assert_array_equal(both.vp.sel(sample=7).values, alone.vp.sel(sample=7).values)
    np.testing.assert_array_equal(both.vp.sel(sample=7).values, again.vp.sel(sample=7).values)
    assert both.sample.values.tolist() == [3, 7, 11]
    other_seed = structural_models(np.array([7]), **GRID, **PRIOR, seed=6)
    assert not np.array_equal(other_seed.vp.values, alone.vp.values)


def test_the_layout_is_sample_models_one():
    ds = structural_models(np.arange(2), **GRID, **PRIOR, seed=0)
    assert ds.vp.dims == ("sample", "x", "z") and ds.vp.shape == (2, 32, 24) and ds.vp.dtype == np.float32
    assert ds.vp.attrs["units"] == "m/s" and ds.x.attrs["units"] == "m" and ds.z.attrs["units"] == "m"
    np.testing.assert_allclose(ds.x.values, 15.0 * np.arange(32))
    np.testing.assert_allclose(ds.z.values, 15.0 * np.arange(24))


def test_velocities_stay_inside_the_stated_range():
    lo, hi = velocity_range(**PRIOR)
    assert (lo, hi) == (1600.0 - 350.0 - 75.0, 2000.0 + 2 * 600.0 + 500.0 + 75.0)
    vp = structural_models(np.arange(200), **GRID, **PRIOR, seed=1).vp.values
    assert lo <= vp.min() and vp.max() <= hi
    # without anomaly and texture: the first layer's velocity is inside its range, layers get faster downwards
    plain = structural_models(np.arange(50), **GRID, layers=LAYERS, seed=1).vp.values
    assert (plain[:, :, 0] >= 1600.0).all() and (plain[:, :, 0] <= 2000.0).all()
    assert (np.diff(plain, axis=2) >= 0).all()
    assert velocity_range(layers=LAYERS) == (1600.0, 3200.0)


def test_interfaces_vary_in_depth_and_dip_between_samples():
    vp = structural_models(np.arange(40), **GRID, layers=LAYERS, seed=2).vp.values
    z = 15.0 * np.arange(24)

    def first_interface(column):  # depth of the first velocity step (up to one cell of anti-aliasing)
        return z[np.argmax(np.abs(column - column[0]) > 1.0)]

    left = np.array([first_interface(v[0]) for v in vp])
    right = np.array([first_interface(v[-1]) for v in vp])
    centre = np.array([first_interface(v[16]) for v in vp])
    assert np.ptp(centre) >= 45.0                         # the depth varies
    assert (centre >= 90.0 - 15.0).all() and (centre <= 150.0 + 15.0).all()  # within its range (± a cell)
    dips = right - left
    assert (dips > 0).any() and (dips < 0).any()          # dipping both ways
    assert np.abs(dips).max() <= np.tan(np.deg2rad(15.0)) * 465.0 + 30.0
    # the interfaces' velocity steps vary too
    assert np.ptp(vp[:, 16, -1] - vp[:, 16, 0]) > 100.0


def test_the_anomaly_moves_and_changes():
    base = structural_models(np.arange(30), **GRID, layers=LAYERS, seed=3).vp.values
    with_anomaly = structural_models(np.arange(30), **GRID, layers=LAYERS, anomaly=ANOMALY, seed=3).vp.values
    diff = with_anomaly - base
    assert (np.abs(diff).reshape(30, -1).max(1) > 0).all()   # every sample has one
    centres = np.array([np.unravel_index(np.argmax(np.abs(d)), d.shape) for d in diff])
    assert len({tuple(c) for c in centres}) > 20           # at different places
    areas = (np.abs(diff) > 1.0).reshape(30, -1).sum(1)
    assert areas.min() < 0.5 * areas.max()                  # of different sizes
    signs = np.sign([d.reshape(-1)[np.argmax(np.abs(d))] for d in diff])
    assert (signs > 0).any() and (signs < 0).any()          # faster and slower


def test_bad_settings_are_input_errors():
    with pytest.raises(InputError, match="zero samples"):
        structural_models(np.array([], dtype=int), **GRID, **PRIOR, seed=0)
    with pytest.raises(InputError, match="low <= high"):
        structural_models(np.arange(2), **GRID, layers={**LAYERS, "contrast": [600.0, 100.0]}, seed=0)
    with pytest.raises(InputError, match="margin"):
        structural_models(np.arange(2), **GRID, layers=LAYERS, anomaly={**ANOMALY, "margin": 400.0}, seed=0)
    with pytest.raises(InputError, match="down to -2400 m/s"):
        structural_models(np.arange(2), **GRID, layers={**LAYERS, "contrast": [-2000.0, -1500.0]}, seed=0)


MODEL = layered_model((32, 24), 15.0, [1800.0, 2400.0], [200.0])


@pytest.mark.parametrize("shots,receivers,inset", [(4, 64, 30.0), (5, 33, 0.0), (1, 1, 15.0), (16, 128, 100.0)])
def test_the_ring_places_every_position_inside_the_model_on_its_rectangle(shots, receivers, inset):
    geo = acquisition(MODEL, layout="ring", ring_inset=inset, n_shots=shots, n_receivers=receivers,
                      shot_spacing=0.0, receiver_spacing=0.0, record_length=0.3, f0=8.0)
    assert geo.attrs["kind"] == "ring" and geo.sizes["shot"] == shots and geo.sizes["receiver"] == receivers
    lo_x, hi_x, lo_z, hi_z = inset, 465.0 - inset, inset, 345.0 - inset
    for p in ("src", "rec"):
        x, z = geo[f"{p}_x"].values.ravel(), geo[f"{p}_z"].values.ravel()
        assert (x >= lo_x - 1e-9).all() and (x <= hi_x + 1e-9).all() and (z >= lo_z - 1e-9).all() \
            and (z <= hi_z + 1e-9).all()
        on_edge = np.isclose(x, lo_x) | np.isclose(x, hi_x) | np.isclose(z, lo_z) | np.isclose(z, hi_z)
        assert on_edge.all()
    np.testing.assert_allclose(geo.src_x.values[0], 232.5)   # the first source: the top side's centre
    np.testing.assert_allclose(geo.src_z.values[0], inset)


@pytest.mark.parametrize("count,offset", [(4, 0.0), (7, 0.0), (64, 0.5), (9, 0.5)])
def test_ring_positions_are_mirror_symmetric_and_evenly_spaced(count, offset):
    p = ring_positions(MODEL, count, 30.0, offset)
    mirrored = np.stack([465.0 - p[:, 0], p[:, 1]], -1)
    assert np.abs(mirrored[:, None] - p[None]).sum(-1).min(1).max() < 1e-9
    perimeter = 2 * (405.0 + 285.0)
    steps = np.linalg.norm(np.diff(np.vstack([p, p[:1]]), axis=0), axis=1)
    assert steps.max() <= perimeter / count + 1e-9            # straight-line gaps, at most the arc spacing


def test_ring_errors():
    with pytest.raises(InputError, match="needs ring_inset"):
        acquisition(MODEL, layout="ring", n_shots=2, n_receivers=4, shot_spacing=0.0, receiver_spacing=0.0,
                    record_length=0.3, f0=8.0)
    with pytest.raises(InputError, match="leave a rectangle"):
        ring_positions(MODEL, 4, 200.0)
