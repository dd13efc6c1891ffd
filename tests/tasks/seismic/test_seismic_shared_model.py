"""shared_model: one Model per content of vp and its grid, whatever array object holds it.

Building a Model makes devito Functions but compiles nothing, so these tests run in
milliseconds.
"""

from __future__ import annotations

import numpy as np
import pytest

from strata_errors import InputError
from tasks.seismic.geometry import make_geometry
from tasks.seismic.model import layered_model
from tasks.seismic.solver import clear_operator_cache, shared_model
from tasks.seismic.stencil import DispersionWarning

SO, NBL = 8, 10


@pytest.fixture
def vel():
    clear_operator_cache()
    yield layered_model((41, 31), 10.0, [1500.0, 2000.0], [150.0])
    clear_operator_cache()


def geometry(vel, src=(200.0, 20.0)):
    rec = np.stack([np.linspace(50.0, 350.0, 5), np.full(5, 20.0)], axis=-1)
    return make_geometry(vel, np.array([src]), rec, record_length=0.2, f0=10.0, space_order=SO)


def get(ds, geo, **kw):
    return shared_model(ds, geo, **{"space_order": SO, "nbl": NBL, **kw})


def test_equal_content_shares_a_model_and_any_change_gets_a_new_one(vel):
    geo = geometry(vel)
    a, b = vel.copy(deep=True), vel.copy(deep=True)
    assert a.vp.values is not b.vp.values and a.vp.values.flags.writeable and b.vp.values.flags.writeable
    first = get(a, geo)
    assert get(b, geo) is first  # distinct, writeable arrays of equal content
    assert get(a, geo, nbl=NBL + 2) is not first and get(a, geo) is first

    a.vp.values[20, 20] += 1.0  # edited in place: never served the Model of the old values
    edited = get(a, geo)
    assert edited is not first and edited.vp[20, 20] == first.vp[20, 20] + 1.0
    assert get(b, geo) is first  # the unedited copy still shares the first one

    shifted = b.assign_coords(x=b.x + 10.0)  # same vp, another grid
    assert get(shifted, geo) is not first
    assert get(vel.astype(np.float64), geo) is not first  # same values, other bytes


def test_at_most_two_models_are_kept_and_clearing_forgets_them(vel):
    geo = geometry(vel)
    models = [vel.copy(deep=True) for _ in range(3)]
    for i, ds in enumerate(models):
        ds.vp.values[0, 0] += i
    first = get(models[0], geo)
    get(models[1], geo)
    assert get(models[0], geo) is first  # a hit makes it the newest
    get(models[2], geo)  # evicts models[1], not models[0]
    assert get(models[0], geo) is first
    clear_operator_cache()
    assert get(models[0], geo) is not first


def test_a_shared_model_is_still_checked_against_each_geometry(vel):
    get(vel, geometry(vel))
    with pytest.raises(InputError, match="source 0 at x=900 m, z=20 m is outside"):
        get(vel.copy(deep=True), geometry(vel).assign_coords(src_x=("shot", [900.0])))
    fast = geometry(vel)
    fast.attrs["dt"] = 1.0
    with pytest.raises(InputError, match="above the CFL limit"):
        get(vel, fast)
    coarse = geometry(vel)
    coarse.attrs["f_max"] = 60.0  # 2.5 points per wavelength: too few for order 8 (3.4), above the floor (2)
    with pytest.warns(DispersionWarning, match="points per wavelength"):
        get(vel, coarse)
    coarse.attrs["f_max"] = 500.0  # 0.3: no stencil carries it, one error
    with pytest.raises(InputError, match="0.30 points per wavelength .* below the grid's limit of 2"):
        get(vel, coarse)


def test_an_invalid_model_is_rejected_even_when_an_equal_valid_one_is_cached(vel):
    geo = geometry(vel)
    get(vel, geo)
    kms = vel.copy(deep=True)
    kms.vp.attrs["units"] = "km/s"  # same bytes, not a valid model
    with pytest.raises(InputError, match="must be in m/s"):
        get(kms, geo)
