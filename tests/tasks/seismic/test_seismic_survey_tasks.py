"""The survey study's pure pieces: build_model from settings, survey_shots on a slice of a geometry."""

from __future__ import annotations

import os

import numpy as np
import pytest
import xarray as xr

from strata_errors import InputError
from tasks.seismic.geometry import surface_geometry
from tasks.seismic.model import build_model, layered_model
from tasks.seismic.solver import simulate_shots, survey_shots

MODEL = {"shape": (41, 31), "spacing": 10.0, "velocities": (1500.0, 2200.0), "depths": (150.0,)}


def test_build_model_layers_perturbation_and_circle():
    plain = build_model(**MODEL)
    xr.testing.assert_identical(plain, layered_model((41, 31), 10.0, [1500.0, 2200.0], [150.0]))
    pert = {"std": 40.0, "correlation_length": 50.0, "seed": 3}
    a = build_model(**MODEL, perturbation=pert)
    b = build_model(**MODEL, perturbation=pert)
    xr.testing.assert_identical(a, b)  # seeded
    diff = (a.vp - plain.vp).values
    assert abs(diff.std() - 40.0) < 1e-3 and not np.array_equal(a.vp, build_model(
        **MODEL, perturbation={**pert, "seed": 4}).vp)
    c = build_model(**MODEL, perturbation=pert, circle={"center": (200.0, 150.0), "radius": 50.0, "vp": 3000.0})
    assert float(c.vp.sel(x=200.0, z=150.0)) == 3000.0
    assert float(c.vp.sel(x=0.0, z=0.0)) == float(a.vp.sel(x=0.0, z=0.0))
    assert build_model(**MODEL, perturbation={**pert, "std": 0.0}).identical(plain)
    with pytest.raises(InputError, match="non-positive"):
        build_model(**MODEL, perturbation={**pert, "std": 3000.0})


@pytest.fixture(scope="module")
def small_survey():
    os.environ.setdefault("DEVITO_LANGUAGE", "openmp")
    model = build_model(**MODEL)
    geo = surface_geometry(model, n_shots=3, shot_spacing=150.0, first_shot_x=50.0, source_depth=20.0,
                           n_receivers=41, receiver_spacing=10.0, receiver_depth=10.0, record_length=0.25,
                           f0=12.0, space_order=8)
    return model, geo


def test_survey_shots_on_a_slice_keeps_shot_labels_and_noise(small_survey):
    model, geo = small_survey
    whole = simulate_shots(model, geo, [0, 1, 2], space_order=8, nbl=20, noise_snr_db=10.0, seed=5)
    part = survey_shots(model, geo.isel(shot=[1, 2]), space_order=8, nbl=20, noise_snr_db=10.0, seed=5)
    assert part["shot"].values.tolist() == [1, 2]
    np.testing.assert_array_equal(part["data"].values, whole["data"].values[1:])  # same noise per shot
    np.testing.assert_array_equal(part["src_x"].values, [200.0, 350.0])
    assert part["data"].dims == ("shot", "receiver", "time") and part["data"].dtype == np.float32
    assert part.attrs["noise_snr_db"] == 10.0 and part.attrs["seed"] == 5
    one = survey_shots(model, geo.isel(shot=[2]), space_order=8, nbl=20, noise_snr_db=10.0, seed=5)
    np.testing.assert_array_equal(one["data"].values[0], whole["data"].values[2])
    with pytest.raises(InputError, match="zero shots"):
        survey_shots(model, geo.isel(shot=[]), space_order=8, nbl=20)
