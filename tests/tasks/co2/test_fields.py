"""Permeability and porosity fields for the CO2 simulator: seeding, geometry, statistics, errors."""

from __future__ import annotations

import numpy as np
import pytest

from strata_errors import InputError
from tasks.co2.fields import channelized, fno4co2_channel, fno4co2_covariance, lognormal_grf, porosity, rock_samples

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


@pytest.mark.parametrize("kind", ["channelized", "grf", "fno4co2"])
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


def _runs(k: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(top, bottom, has) of the 120 mD run of each column of fields (sample, x, z): top = its first cell
    (0-based), bottom = one past its last, has = the column has one; asserts one contiguous run per column."""
    inside = k == 120.0
    first = inside.argmax(axis=2)
    last = k.shape[2] - inside[..., ::-1].argmax(axis=2)
    has = inside.any(axis=2)
    assert (inside.sum(axis=2)[has] == (last - first)[has]).all()  # contiguous
    return first, last, has


def test_fno4co2_offsets_follow_the_kernel():
    """With the base top and bottom fixed (32 and 48 of 64), every column's top − 32 and bottom − 48 are the
    rounded GP offsets: per lag, their covariance over 1500 fields is θ₀ exp(−Δ²/δ²) (θ₀ = 5 cells², δ = 6.25
    cells), plus rounding's 1/12 at lag 0; tops and bottoms are independent."""
    ds = _rock(np.arange(1500), kind="fno4co2", seed=3,
               fno4co2={"top": [0.5, 0.5], "bottom": [0.75, 0.75]})
    k = ds["permeability"].values
    assert set(np.unique(k)) == {20.0, 120.0}
    top, bottom, has = _runs(k)
    assert has.all()
    u, v = (top - 32).astype(float), (bottom - 48).astype(float)
    assert abs(u.mean()) < 0.15 and abs(v.mean()) < 0.15
    for lag in (0, 2, 4, 6, 9, 14):
        expected = 5.0 * np.exp(-(lag / 6.25) ** 2) + (1 / 12 if lag == 0 else 0.0)
        for off in (u, v):
            got = float((off[:, :64 - lag] * off[:, lag:]).mean())
            assert abs(got - expected) < 0.3, (lag, got, expected)
    assert abs(float((u * v).mean())) < 0.2
    cov = fno4co2_covariance(64)
    assert cov[0, 0] == pytest.approx(5.0 * (1 + 1e-5)) and cov[0, 25] == pytest.approx(5.0 * np.exp(-16.0))


def test_fno4co2_base_cells_lie_in_their_depth_ranges():
    """Without offsets (variance 0) each field is flat: its top is round(64·U(0.37, 0.42)) ∈ 24…27 and its
    bottom round(64·U(0.55, 0.60)) ∈ 35…38, every value of each range drawn; 20 mD outside, 120 mD inside."""
    k = _rock(np.arange(400), kind="fno4co2", fno4co2={"variance": 0.0})["permeability"].values
    top, bottom, has = _runs(k)
    assert has.all() and (top == top[:, :1]).all() and (bottom == bottom[:, :1]).all()
    assert set(top[:, 0]) == {24, 25, 26, 27} and set(bottom[:, 0]) == {35, 36, 37, 38}
    # the defaults, with offsets: whole cells around those depths, in the FNO4CO2 set-up (64 x 64, 20/120 mD)
    # (a column may lose its channel where the offsets cross, as in gen_perm.jl: rare, 11 cells ≈ 3.5 σ)
    top, bottom, has = _runs(_rock(np.arange(200), kind="fno4co2")["permeability"].values)
    assert has.mean() > 0.995
    top, bottom = top[has], bottom[has]
    assert 24.5 < top.mean() < 26.1 and 35.7 < bottom.mean() < 37.3
    assert top.min() >= 24 - 12 and bottom.max() <= 38 + 12


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
    (lambda: _rock([0], kind="gaussian"), r"kind must be one of \['channelized', 'fno4co2', 'grf'\]"),
    (lambda: _rock([0], kind="fno4co2", fno4co2={"delta": 25.0}), r"unknown key\(s\) \['delta'\]"),
    (lambda: fno4co2_channel((8, 8), top=(0.5, 0.4), rng=np.random.default_rng(0)), "top must be a depth-fraction"),
    (lambda: _rock([0], channel={"depht": 300.0}), r"unknown key\(s\) \['depht'\]"),
    (lambda: porosity(np.ones((2, 2)), value=1.2), r"porosity \(constant\) is 1.2 at cell \(0, 0\)"),
    (lambda: porosity(np.array([[1.0, 1e12]]), kind="from_permeability"), r"at cell \(0, 1\), outside \(0, 1\)"),
    (lambda: porosity(np.ones((2, 2)), kind="lognormal"), "porosity kind must be"),
    (lambda: channelized((4, 4), 15.0, thickness=0.0, rng=np.random.default_rng(0)), "thickness > 0"),
])
def test_bad_input(call, match):
    with pytest.raises(InputError, match=match):
        call()
