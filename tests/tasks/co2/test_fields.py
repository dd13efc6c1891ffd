"""Permeability and porosity fields for the CO2 simulator: seeding, geometry, statistics, errors."""

from __future__ import annotations

import numpy as np
import pytest

from strata_errors import InputError
from tasks.co2.fields import channelized, lognormal_grf, porosity, rock_samples

CONSTANT = {"kind": "constant", "value": 0.25}


def _rock(samples, kind="channelized", seed=7, shape=(64, 64), spacing=15.0, **kw):
    return rock_samples(np.asarray(samples), kind=kind, shape=shape, spacing=spacing,
                        porosity=kw.pop("porosity", CONSTANT), seed=seed, **kw)


def test_layout_units_and_cell_centres():
    ds = _rock([0, 1], shape=(64, 48), spacing=(15.0, 10.0))
    assert ds["permeability"].dims == ("sample", "x", "z") and ds["permeability"].dtype == np.float64
    assert ds["permeability"].attrs["units"] == "mD" and ds["porosity"].attrs["units"] == "1"
    assert ds["sample"].dtype == np.int64 and ds.attrs["spacing"] == [15.0, 10.0]
    np.testing.assert_allclose(ds["x"].values, 15.0 * (np.arange(64) + 0.5))
    np.testing.assert_allclose(ds["z"].values, 10.0 * (np.arange(48) + 0.5))
    assert ds["x"].attrs["units"] == "m" and ds["z"].attrs["units"] == "m"


@pytest.mark.parametrize("kind", ["channelized", "grf"])
def test_seeded_and_independent_of_the_other_samples(kind):
    many, again, alone = _rock([0, 1, 2], kind), _rock([0, 1, 2], kind), _rock([2], kind)
    assert many["permeability"].values.tobytes() == again["permeability"].values.tobytes()
    np.testing.assert_array_equal(many["permeability"].sel(sample=2).values, alone["permeability"].sel(sample=2).values)
    assert not np.array_equal(many["permeability"].sel(sample=0).values, many["permeability"].sel(sample=1).values)
    other_seed = _rock([2], kind, seed=8)
    assert not np.array_equal(alone["permeability"].values, other_seed["permeability"].values)


def test_channel_values_contiguity_and_depth():
    ds = _rock(np.arange(16))
    k = ds["permeability"].values
    assert set(np.unique(k)) == {20.0, 120.0}
    z = ds["z"].values
    depths = []
    for column in k.reshape(-1, k.shape[-1]):
        rows = np.flatnonzero(column == 120.0)
        assert rows.size >= 1 and np.all(np.diff(rows) == 1)  # one contiguous run per column
        depths.append(z[rows].mean())
    assert abs(np.mean(depths) - 480.0) < 25.0
    assert abs((k == 120.0).sum(axis=2).mean() * 15.0 - 150.0) < 30.0  # mean thickness, m


def test_flat_channel_without_undulation_is_exact():
    k = channelized((8, 64), 15.0, undulation=0.0, rng=np.random.default_rng(0))
    z = (np.arange(64) + 0.5) * 15.0
    expected = np.where((z >= 405.0) & (z < 555.0), 120.0, 20.0)
    np.testing.assert_array_equal(k, np.broadcast_to(expected, k.shape))


def test_thin_channel_keeps_at_least_one_cell():
    k = channelized((64, 64), 15.0, thickness=1.0, undulation=60.0, rng=np.random.default_rng(3))
    assert ((k == 120.0).sum(axis=1) >= 1).all()


def test_grf_log_statistics_and_correlation():
    rng = np.random.default_rng(11)
    fields = [lognormal_grf((96, 96), 15.0, mean=50.0, log_std=0.5, correlation_length=120.0, rng=rng)
              for _ in range(4)]
    for k in fields:
        assert abs(np.log(k).mean() - np.log(50.0)) < 1e-9 and abs(np.log(k).std() - 0.5) < 1e-9
    g = np.stack([(np.log(k) - np.log(50.0)) / 0.5 for k in fields])
    lag = 8  # 120 m: correlation exp(-1/2) = 0.61
    corr = float((g[:, :-lag] * g[:, lag:]).mean())
    assert 0.45 < corr < 0.75, corr
    assert float((g[:, :-1] * g[:, 1:]).mean()) > 0.95


def test_porosity_kinds():
    k = _rock([0], "grf")["permeability"].values[0]
    phi = porosity(k, kind="from_permeability")
    assert ((phi > 0) & (phi < 1)).all()
    order = np.argsort(k.ravel())
    assert np.all(np.diff(phi.ravel()[order]) >= 0)  # monotone in k
    np.testing.assert_allclose(porosity(np.array([[50.0]]), kind="from_permeability"), 0.25)
    np.testing.assert_array_equal(porosity(k, value=0.3), np.full(k.shape, 0.3))
    ds = _rock([0, 1], "grf", porosity={"kind": "from_permeability", "value": 0.2})
    assert ((ds["porosity"] > 0) & (ds["porosity"] < 1)).all()


@pytest.mark.parametrize("call, match", [
    (lambda: _rock([]), "zero samples"),
    (lambda: _rock([0], kind="gaussian"), "kind must be 'channelized' or 'grf'"),
    (lambda: _rock([0], channel={"depht": 300.0}), r"unknown key\(s\) \['depht'\]"),
    (lambda: porosity(np.ones((2, 2)), value=1.2), r"porosity \(constant\) is 1.2 at cell \(0, 0\)"),
    (lambda: porosity(np.array([[1.0, 1e12]]), kind="from_permeability"), r"at cell \(0, 1\), outside \(0, 1\)"),
    (lambda: porosity(np.ones((2, 2)), kind="lognormal"), "porosity kind must be"),
    (lambda: channelized((4, 4), 15.0, thickness=0.0, rng=np.random.default_rng(0)), "thickness > 0"),
])
def test_bad_input(call, match):
    with pytest.raises(InputError, match=match):
        call()
