"""acquisition(): one entry point for surface, ocean-bottom and crosswell layouts."""

from __future__ import annotations

import numpy as np
import pytest

from strata_errors import InputError
from tasks.seismic.geometry import acquisition
from tasks.seismic.model import layered_model

MODEL = layered_model((101, 81), 10.0, [1500.0, 2000.0, 2500.0], [200.0, 500.0])
LINES = {"n_shots": 3, "shot_spacing": 100.0, "n_receivers": 11, "receiver_spacing": 20.0,
         "record_length": 0.3, "f0": 10.0}


def test_surface_ocean_bottom_and_crosswell_place_what_they_say():
    s = acquisition(MODEL, layout="surface", source_depth=20.0, receiver_depth=10.0, first_shot_x=100.0, **LINES)
    assert s.attrs["kind"] == "surface" and np.allclose(s.src_z, 20.0) and np.allclose(s.rec_z, 10.0)
    assert np.allclose(s.src_x, [100.0, 200.0, 300.0])
    ob = acquisition(MODEL, layout="ocean_bottom", source_depth=10.0, **LINES)
    assert ob.attrs["kind"] == "ocean_bottom" and np.allclose(ob.rec_z, 200.0)  # the first layer is water
    cw = acquisition(MODEL, layout="crosswell", source_well_x=50.0, receiver_well_x=950.0, first_shot_z=100.0,
                     first_receiver_z=50.0, **LINES)
    assert cw.attrs["kind"] == "crosswell"
    assert np.allclose(cw.src_x, 50.0) and np.allclose(cw.src_z, [100.0, 200.0, 300.0])
    assert np.allclose(cw.rec_x, 950.0) and np.allclose(np.unique(cw.rec_z), 50.0 + 20.0 * np.arange(11))


def test_layout_errors_say_what_is_missing():
    with pytest.raises(InputError, match="needs source_well_x and receiver_well_x"):
        acquisition(MODEL, layout="crosswell", **LINES)
    with pytest.raises(InputError, match="layout 'tower' is not one of"):
        acquisition(MODEL, layout="tower", **LINES)
    with pytest.raises(InputError, match="outside"):
        acquisition(MODEL, layout="crosswell", source_well_x=5000.0, receiver_well_x=950.0, **LINES)
