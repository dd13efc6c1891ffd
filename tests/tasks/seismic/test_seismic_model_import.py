"""Velocity models imported from .npy, post-stack SEG-Y and zarr; the content hash guards the key."""

from __future__ import annotations

import numpy as np
import pytest

from strata_errors import InputError
from tasks.seismic.model import build_model, content_hash, load_model
from tasks.seismic.segy import write_segy


def _vp() -> np.ndarray:
    x, z = np.meshgrid(np.arange(30), np.arange(20), indexing="ij")
    return (1500.0 + 10.0 * z + x).astype(np.float32)


def test_npy_segy_and_zarr_imports_agree(tmp_path):
    vp = _vp()
    np.save(tmp_path / "m.npy", vp)
    a = load_model(tmp_path / "m.npy", spacing=5.0)
    assert a.vp.dims == ("x", "z") and a.vp.shape == (30, 20) and float(a.x[1]) == 5.0
    np.testing.assert_array_equal(a.vp.values, vp)
    # a post-stack section: one trace per x, samples along depth
    import xarray as xr
    section = xr.Dataset({"data": (("trace", "time"), vp)},
                         coords={"trace": np.arange(30), "time": np.arange(20) * 0.001})
    write_segy(section, tmp_path / "m.sgy")
    b = load_model(tmp_path / "m.sgy", spacing=5.0)
    np.testing.assert_array_equal(b.vp.values, vp)
    a.to_zarr(tmp_path / "m.zarr", zarr_format=3, consolidated=False)
    c = load_model(tmp_path / "m.zarr", spacing=999.0)  # zarr keeps its own coordinates
    np.testing.assert_array_equal(c.vp.values, vp)
    assert float(c.x[1]) == 5.0


def test_km_per_s_and_build_model_with_a_file(tmp_path):
    np.save(tmp_path / "m.npy", _vp() / 1000.0)
    m = build_model(shape=(3, 3), spacing=5.0, velocities=[1.0], file={"path": str(tmp_path / "m.npy"),
                    "units": "km/s"}, circle={"center": [50.0, 50.0], "radius": 12.0, "vp": 3000.0})
    assert m.vp.shape == (30, 20) and float(m.vp.max()) == 3000.0
    assert abs(float(m.vp.min()) - 1500.0) < 1e-3


def test_a_changed_file_is_refused_and_bad_files_are_input_errors(tmp_path):
    path = tmp_path / "m.npy"
    np.save(path, _vp())
    digest = content_hash(path)
    load_model(path, spacing=5.0, sha256=digest)
    np.save(path, _vp() + 1)
    with pytest.raises(InputError, match="changed since"):
        load_model(path, spacing=5.0, sha256=digest)
    with pytest.raises(InputError, match="does not exist"):
        content_hash(tmp_path / "nope.npy")
    (tmp_path / "m.txt").write_text("1 2 3")
    with pytest.raises(InputError, match="unknown format"):
        load_model(tmp_path / "m.txt", spacing=5.0)
    bad = _vp()
    bad[3, 4] = np.nan
    np.save(tmp_path / "bad.npy", bad)
    with pytest.raises(InputError, match="NaN"):
        build_model(shape=(3, 3), spacing=5.0, velocities=[1.0], file={"path": str(tmp_path / "bad.npy")})
