"""Region-filled datasets through the public write path: every dtype round-trips, strings are a
zarr v3 data type, markers and templates behave, fingerprints hash decoded values."""

from __future__ import annotations

import uuid
import warnings

import numpy as np
import pytest
import xarray as xr
import zarr

from data_catalog import RegionWriter, Storage, fingerprint


@pytest.fixture(params=["local", "memory", "s3"])
def storage(request, tmp_path):
    if request.param == "s3":
        return Storage(request.getfixturevalue("s3_root"))
    root = str(tmp_path / "root") if request.param == "local" else f"memory://strata-{uuid.uuid4().hex}"
    return Storage(root)


def _mixed(n: int = 5) -> xr.Dataset:
    """float32/float64/int/bool/string/0-d variables, NaNs, time-like units."""
    rng = np.random.default_rng(0)
    data = rng.standard_normal((n, 4, 3)).astype("f4")
    data[1, 2, :] = np.nan
    data[3] = np.nan  # a chunk equal to the fill value: zarr does not store it
    return xr.Dataset(
        {
            "data": (("shot", "receiver", "time"), data, {"units": "1", "long_name": "pressure"}),
            "gain": (("shot",), np.linspace(0.5, 1.5, n), {"units": "seconds"}),
            "count": (("shot", "receiver"), rng.integers(-5, 5, (n, 4)).astype("i4")),
            "flag": (("shot",), np.arange(n) % 2 == 0),
            "scalar": ((), np.float64(3.25)),
            "ratio": (("receiver",), np.array([0.1, np.nan, 0.3, 0.4])),
        },
        coords={
            "shot": ("shot", np.arange(n)),
            "receiver": ("receiver", np.arange(4) * 10.0, {"units": "m"}),
            "time": ("time", np.arange(3) * 0.002, {"units": "s"}),
            "rec_x": (("shot", "receiver"), rng.uniform(0, 100, (n, 4)), {"units": "m"}),
            "name": ((), "survey"),
            "loop": (("receiver",), np.array(["a", "bb", "ccc", "d"])),
        },
        attrs={"dt": 0.002},
    )


def _fill(storage: Storage, uri: str, ds: xr.Dataset, chunk: int = 1, skip=()) -> RegionWriter:
    w = RegionWriter(storage, uri, "shot", ds.shot.values, chunk)
    w.lay_out(ds.isel(shot=slice(0, chunk)))
    for i in range(w.n_pieces):
        if i not in skip:
            w.write(i, ds.isel(shot=w.region(i)))
    return w


@pytest.mark.parametrize("chunk", [1, 2])
def test_regions_round_trip_every_dtype(storage, chunk):
    ds = _mixed()
    uri = storage.uri("t", f"mixed{chunk}")
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*FixedLength")  # "may be unreadable by other Zarr libraries"
        w = _fill(storage, uri, ds, chunk=chunk)
    assert w.missing() == []
    with storage.open(uri, dask=False) as got:
        xr.testing.assert_identical(got.load(), ds.load())
        assert got["data"].encoding["chunks"] == (chunk, 4, 3)
    assert storage.regions_done(uri) == set(range(w.n_pieces))
    assert storage.fingerprint(uri) == fingerprint(ds)


def test_strings_are_variable_length_utf8(storage):
    uri = storage.uri("t", "strings")
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*FixedLength")
        storage.write(uri, _mixed(), {"step": "s"})
    group = zarr.open_group(storage._store(uri), mode="r")
    assert "VariableLengthUTF8" in type(group["loop"].metadata.data_type).__name__
    assert storage.variables(uri)["loop"]["dtype"] == "str"


def test_absent_chunks_fingerprint_as_fill_values(storage):
    ds = _mixed(6)
    uri = storage.uri("t", "part")
    _fill(storage, uri, ds, chunk=2, skip={1})
    with storage.open(uri, dask=False) as opened:
        assert np.isnan(opened["data"].values[2:4]).all()
        assert storage.fingerprint(uri) == fingerprint(opened)


def test_mismatched_piece_raises_and_leaves_no_marker(storage):
    ds = _mixed(4)
    uri = storage.uri("t", "bad")
    storage.create_template(uri, ds.isel(shot=[0]), "shot", ds.shot.values, 1)
    with pytest.raises(ValueError):
        storage.write_region(uri, 1, ds.isel(shot=[1], receiver=[0]), "shot", 1)
    assert 1 not in storage.regions_done(uri)


def test_region_done_reads_the_marker(storage):
    ds = _mixed(4)
    uri = storage.uri("t", "markers")
    storage.create_template(uri, ds.isel(shot=[0]), "shot", ds.shot.values, 1)
    assert not storage.region_done(uri, 1)
    storage.write_region(uri, 1, ds.isel(shot=[1]), "shot", 1)
    assert storage.region_done(uri, 1) and not storage.region_done(uri, 0)
    assert storage.regions_done(uri) == {1}


def test_template_replaces_a_leftover(storage):
    """Laying out again (a killed first piece, rerun) leaves nothing of the old group: no chunk,
    no region marker."""
    ds = _mixed(4)
    uri = storage.uri("t", "again")
    storage.create_template(uri, ds.isel(shot=[0]), "shot", ds.shot.values, 1)
    storage.write_region(uri, 2, ds.isel(shot=[2]), "shot", 1)
    storage.create_template(uri, ds.isel(shot=[0]), "shot", ds.shot.values, 1)
    assert storage.regions_done(uri) == set() and storage.template_ready(uri)
    with storage.open(uri, dask=False) as opened:
        assert bool(np.isnan(opened.data.values).all())


def test_a_region_writer_pickles_without_the_index(tmp_path):
    """Workers get the writer itself: storage root, uri, dim, coordinate and chunk, nothing more."""
    import pickle

    storage = Storage(tmp_path / "root")
    w = RegionWriter(storage, storage.uri("t", "p"), "shot", np.arange(5), 2)
    back = pickle.loads(pickle.dumps(w))
    assert (back.uri, back.dim, back.chunk, back.n_pieces) == (w.uri, "shot", 2, 3)
    assert back.labels(2).tolist() == [4]


def test_a_region_write_must_cover_whole_chunks(storage):
    """A write of part of a chunk would rewrite all of it: two writers of one chunk lose data (on an object store,
    silently). The last region may end at the end of the dim."""
    ds = _mixed(5)
    uri = storage.uri("t", "aligned")
    storage.create_template(uri, ds.isel(shot=[0, 1]), "shot", ds.shot.values, 2)
    with pytest.raises(ValueError, match=r"region \[0, 1\) of 'shot' is not aligned to the chunks of .* \(2 long"):
        storage.write_region(uri, 0, ds.isel(shot=[0]), "shot", 2)
    with pytest.raises(ValueError, match=r"region \[1, 2\) of 'shot' is not aligned"):  # a writer's chunk of 1
        storage.write_region(uri, 1, ds.isel(shot=[1]), "shot", 1)
    with pytest.raises(ValueError, match=r"region \[4, 6\) .* 5 in all"):
        storage.write_region(uri, 2, ds.isel(shot=[3, 4]), "shot", 2)
    assert storage.regions_done(uri) == set()
    storage.write_region(uri, 1, ds.isel(shot=slice(2, 5)), "shot", 2)  # chunks 1 and 2, the last one short
    storage.write_region(uri, 0, ds.isel(shot=slice(0, 2)), "shot", 2)
    assert storage.regions_done(uri) == {0, 1, 2} and storage.fingerprint(uri) == fingerprint(ds)


def _elsewhere(storage: Storage) -> Storage:
    """The root as another process sees it: a file system object of its own, with its own caches (other
    options make fsspec build another one; skip_instance_cache would leak a client session per zarr call)."""
    return Storage(storage.root, {"default_block_size": 2**23})


def test_a_second_layout_claim_loses(storage):
    """The layout claim is an exclusive create (S3: a conditional put): one claimant wins until a reset."""
    uri = storage.uri("t", "claimed")
    assert storage.claim_layout(uri)
    assert not storage.claim_layout(uri)
    assert not _elsewhere(storage).claim_layout(uri)
    storage.reset_layout(uri)  # never laid out: the claim goes with the leftovers
    assert storage.claim_layout(uri)


def test_what_other_processes_write_is_seen(storage):
    """Markers written by another process (here: a file system object of its own, with its own caches) are
    seen at once, also after this process listed them (s3fs's listings cache would hide them)."""
    ds = _mixed(4)
    uri = storage.uri("t", "seen")
    other = _elsewhere(storage)
    other.create_template(uri, ds.isel(shot=[0]), "shot", ds.shot.values, 1)
    assert storage.template_ready(uri) and storage.regions_done(uri) == set()
    other.write_region(uri, 0, ds.isel(shot=[0]), "shot", 1)
    assert storage.regions_done(uri) == {0}
    other.write_region(uri, 2, ds.isel(shot=[2]), "shot", 1)
    assert storage.regions_done(uri) == {0, 2} and storage.region_done(uri, 2)
