"""The direct-zarr region writes and fingerprint give what the xarray paths give."""

from __future__ import annotations

import uuid

import numpy as np
import pytest
import xarray as xr

from data_catalog import Storage, fingerprint
from data_catalog.storage import _HANDLES


@pytest.fixture(params=["local", "memory"])
def storage(request, tmp_path):
    root = str(tmp_path / "root") if request.param == "local" else f"memory://strata-{uuid.uuid4().hex}"
    return Storage(root)


def _mixed(n: int = 5) -> xr.Dataset:
    """float32/float64/int/bool/string/0-d variables, NaNs, time-like units (no datetime64: no path hashes it)."""
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
            "label": (("shot",), np.array([f"s{i}" for i in range(n)])),
            "scalar": ((), np.float64(3.25)),
            "iscalar": ((), np.int64(7)),
            "ratio": (("receiver",), np.array([0.1, np.nan, 0.3, 0.4])),
        },
        coords={
            "shot": ("shot", np.arange(n)),
            "receiver": ("receiver", np.arange(4) * 10.0, {"units": "m"}),
            "time": ("time", np.arange(3) * 0.002, {"units": "s"}),
            "rec_x": (("shot", "receiver"), rng.uniform(0, 100, (n, 4)), {"units": "m"}),
            "src_x": (("shot",), np.arange(n) * 5.0, {"units": "m"}),
            "name": ((), "survey"),
            "loop": (("receiver",), np.array(["a", "bb", "ccc", "d"])),
        },
        attrs={"dt": 0.002},
    )


def _fill(storage: Storage, uri: str, ds: xr.Dataset, direct: bool, chunk: int = 1, skip=()) -> None:
    n = ds.sizes["shot"]
    storage.create_template(uri, ds.isel(shot=slice(0, chunk)), "shot", ds.shot.values, chunk)
    for i in range(-(-n // chunk)):
        if i in skip:
            continue
        piece = ds.isel(shot=slice(i * chunk, (i + 1) * chunk))
        if direct:
            storage.write_region(uri, i, piece, "shot", chunk)
        else:  # the xarray path alone, as before the direct writes
            storage._forget(uri)
            piece.drop_vars([k for k, v in piece.variables.items() if "shot" not in v.dims]).to_zarr(
                uri, region={"shot": slice(i * chunk, i * chunk + piece.sizes["shot"])}, consolidated=False,
                zarr_format=3, **storage._zarr_kwargs())


@pytest.mark.parametrize("chunk", [1, 2])
def test_region_writes_match_xarray(storage, chunk):
    ds = _mixed()
    a, b = storage.uri("t", f"direct{chunk}"), storage.uri("t", f"xarray{chunk}")
    _fill(storage, a, ds, direct=True, chunk=chunk)
    _fill(storage, b, ds, direct=False, chunk=chunk)
    with storage.open(a, dask=False) as got, storage.open(b, dask=False) as want:
        xr.testing.assert_identical(got.load(), want.load())
        for name in want.variables:
            assert got[name].dtype == want[name].dtype, name
            assert got[name].encoding.get("chunks") == want[name].encoding.get("chunks"), name
        xr.testing.assert_identical(got.load(), ds.load())
    assert storage.regions_done(a) == set(range(-(-ds.sizes["shot"] // chunk)))
    assert storage.fingerprint(a) == storage.fingerprint(b) == fingerprint(ds)


def test_fast_fingerprint_matches_xarray(storage):
    ds = _mixed(6)
    uri = storage.uri("t", "fp")
    storage.write(uri, ds, {"step": "s"})
    with storage.open(uri, dask=False) as opened:
        assert storage.fingerprint(uri) == fingerprint(opened) == fingerprint(ds)
    # absent chunks count as fill values, on both paths
    part = storage.uri("t", "part")
    _fill(storage, part, ds, direct=True, chunk=2, skip={1})
    with storage.open(part, dask=False) as opened:
        assert storage.fingerprint(part) == fingerprint(opened)
        assert np.isnan(opened["data"].values[2:4]).all()
    if storage.is_local:
        with xr.open_zarr(uri, consolidated=False) as opened:
            assert storage.fingerprint(uri) == fingerprint(opened)


def test_handles_dropped_when_dataset_is_recreated(storage):
    ds = _mixed(4)
    uri = storage.uri("t", "again")
    _fill(storage, uri, ds, direct=True)
    assert any(k[1] == uri for k in _HANDLES)
    storage.delete(uri)
    assert not any(k[1] == uri for k in _HANDLES)
    wider = ds.isel(receiver=slice(0, 3))  # a new template with other shapes, same uri
    _fill(storage, uri, wider, direct=True)
    with storage.open(uri, dask=False) as opened:
        xr.testing.assert_identical(opened.load(), wider.load())


def test_mismatched_piece_still_raises(storage):
    ds = _mixed(4)
    uri = storage.uri("t", "bad")
    storage.create_template(uri, ds.isel(shot=[0]), "shot", ds.shot.values, 1)
    with pytest.raises(ValueError):
        storage.write_region(uri, 1, ds.isel(shot=[1], receiver=[0]), "shot", 1)
    assert 1 not in storage.regions_done(uri)


def _plain(n: int = 6) -> xr.Dataset:
    """What a survey piece holds: plain numbers only (the direct template and chunk-file paths)."""
    ds = _mixed(n).drop_vars(["flag", "label", "loop", "name", "gain"])
    return ds.assign_attrs(space_order=np.int64(8), nested={"a": [1, 2]})


def _files(storage: Storage, uri: str) -> dict[str, bytes]:
    """Every object of a stored group but the strata markers: zarr.json documents parsed, chunks raw."""
    import json

    base = storage._fs_path(uri)
    out: dict[str, bytes] = {}
    for path in storage.fs.find(base):
        rel = path[len(base.rstrip("/")) + 1 :]
        if rel.startswith(".strata"):
            continue
        raw = storage.fs.cat_file(path)
        out[rel] = json.loads(raw) if rel.endswith("zarr.json") else raw
    return out


@pytest.mark.parametrize("chunk", [1, 2, 4])
def test_direct_template_and_chunk_files_are_what_zarr_and_xarray_write(storage, chunk, monkeypatch):
    """Byte for byte: the template laid out by zarr directly = xarray's ``to_zarr(compute=False)``
    (every zarr.json document, the coordinates written whole), and the region chunks written as
    files = zarr's own (local store; a 6-shot dataset in chunks of 4 ends with a partial chunk,
    which goes through zarr)."""
    from data_catalog import storage as storage_mod

    ds = _plain()
    fast, slow = storage.uri("t", f"fast{chunk}"), storage.uri("t", f"slow{chunk}")
    _fill(storage, fast, ds, direct=True, chunk=chunk)
    fp_fast = storage.fingerprint(fast)
    if storage.is_local:  # the fingerprint reads those chunk files directly too (absent = fill)
        import zarr

        arr = zarr.open_group(fast, mode="r", zarr_format=3)["data"]
        files = storage_mod.ChunkFiles.of(arr._async_array)
        assert files is not None
        for start, stop in [(0, 6), (chunk, 6), (0, chunk)]:
            np.testing.assert_array_equal(files.read_rows(start, stop), arr[start:stop])
    used = []
    monkeypatch.setattr(Storage, "_template_direct", lambda self, *a: used.append(1) and False)
    monkeypatch.setattr(storage_mod.ChunkFiles, "of", classmethod(lambda cls, arr: None))
    _fill(storage, slow, ds, direct=True, chunk=chunk)
    assert used, "the slow layout did not go through xarray"
    got, want = _files(storage, fast), _files(storage, slow)
    assert got.keys() == want.keys()
    for name in want:
        assert got[name] == want[name], name
    assert any(k.startswith("data/c/") for k in want)
    with storage.open(fast, dask=False) as opened:
        xr.testing.assert_identical(opened.load(), ds.load())
    assert fp_fast == storage.fingerprint(slow) == fingerprint(ds)


def test_template_falls_back_to_xarray_for_encoded_variables(storage):
    """Strings, bools and time-like units are xarray's to encode: the direct layout declines."""
    ds = _mixed()
    uri = storage.uri("t", "mixed-template")
    assert not storage._template_direct(uri, ds, {})
    assert not storage.fs.exists(storage._fs_path(uri))  # nothing written


@pytest.mark.parametrize("order", ["in order", "reversed"])
def test_fingerprint_taken_while_regions_are_written(tmp_path, order):
    """RegionWriter hashes regions as they are reported written (a background thread that waits
    for the rows it needs): the same fingerprint as recomputing it afterwards, whatever the order."""
    import time

    from data_catalog import Catalog

    cat = Catalog(tmp_path / "root")
    ds = _plain(7)
    w = cat.create("k" * 20, "t", None, "shot", ds.shot.values, 2, {"step": "s"})
    idx = list(range(w.n_pieces))
    cat.storage.create_template(w.uri, ds.isel(shot=slice(0, 2)), "shot", ds.shot.values, 2)
    for i in idx if order == "in order" else idx[::-1]:
        cat.storage.write_region(w.uri, i, ds.isel(shot=w.region(i)), "shot", 2)
        w.regions_written([i])
        time.sleep(0.01)  # let the thread catch up and wait for the next region
    assert w._fp_thread is not None
    rec = w.finish()
    assert rec.fingerprint == cat.storage.fingerprint(w.uri) == fingerprint(ds)
    assert w._fp_result == rec.fingerprint  # it was the background thread's value
    cat.close()


def test_background_fingerprint_stops_when_a_region_fails(tmp_path):
    from data_catalog import Catalog

    cat = Catalog(tmp_path / "root")
    ds = _plain(4)
    w = cat.create("j" * 20, "t", None, "shot", ds.shot.values, 1, {"step": "s"})
    cat.storage.create_template(w.uri, ds.isel(shot=[0]), "shot", ds.shot.values, 1)
    cat.storage.write_region(w.uri, 0, ds.isel(shot=[0]), "shot", 1)
    w.regions_written([0])  # the thread now waits for region 1, which never comes
    w.stop_fingerprint()
    w._fp_thread.join(timeout=10)
    assert not w._fp_thread.is_alive() and w._fp_result is None
    with pytest.raises(Exception, match="never written"):
        w.finish()
    cat.close()


def test_background_fingerprint_follows_region_markers(tmp_path):
    """A task of several pieces reports them only when it ends: the thread also reads the region
    markers (a local store), and hashes each region once its marker exists, unreported."""
    import time

    from data_catalog import Catalog

    cat = Catalog(tmp_path / "root")
    ds = _plain(5)
    w = cat.create("m" * 20, "t", None, "shot", ds.shot.values, 1, {"step": "s"})
    cat.storage.create_template(w.uri, ds.isel(shot=[0]), "shot", ds.shot.values, 1)
    cat.storage.write_region(w.uri, 0, ds.isel(shot=[0]), "shot", 1)
    w.regions_written([0])  # starts the thread; regions 1-4 are never reported
    for i in range(1, 5):
        cat.storage.write_region(w.uri, i, ds.isel(shot=[i]), "shot", 1)
    deadline = time.monotonic() + 10
    while w._fp_thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not w._fp_thread.is_alive(), "the thread did not see the markers"
    assert w._fp_done == set(range(5))
    rec = w.finish()
    assert rec.fingerprint == w._fp_result == fingerprint(ds)
    cat.close()


def test_region_done_reads_the_marker(storage):
    ds = _plain(4)
    uri = storage.uri("t", "markers")
    storage.create_template(uri, ds.isel(shot=[0]), "shot", ds.shot.values, 1)
    assert not storage.region_done(uri, 1)
    storage.write_region(uri, 1, ds.isel(shot=[1]), "shot", 1)
    assert storage.region_done(uri, 1) and not storage.region_done(uri, 0)
    assert storage.regions_done(uri) == {1}


def test_template_replaces_a_leftover(storage):
    """Laying out again (a killed first piece, rerun) leaves nothing of the old group: no chunk,
    no region marker."""
    ds = _plain(4)
    uri = storage.uri("t", "again")
    storage.create_template(uri, ds.isel(shot=[0]), "shot", ds.shot.values, 1)
    storage.write_region(uri, 2, ds.isel(shot=[2]), "shot", 1)
    storage._forget(uri)
    storage.create_template(uri, ds.isel(shot=[0]), "shot", ds.shot.values, 1)
    assert storage.regions_done(uri) == set() and storage.template_ready(uri)
    with storage.open(uri, dask=False) as opened:
        assert bool(np.isnan(opened.data.values).all())
