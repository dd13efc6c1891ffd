"""Consolidated metadata: a complete dataset opens with one metadata read, with strata or a plain
``xr.open_zarr(uri)`` and no warning; it is written with the completion attribute in one last write of the group's
metadata, which a killed completion never leaves; ``reindex`` gives it to a dataset of an older root; ``verify``
notices consolidated metadata that is not the arrays' own. On S3 (moto on loopback, every request counted): a piece
and an open cost what they must, no more."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
import zarr

from data_catalog import Catalog, RegionWriter, Storage, make_key
from data_catalog.storage import COMPLETE_ATTR, LINEAGE_ATTR

from ..conftest import Strata
from .s3_requests import CountingMotoServer


def _ds(n: int = 6) -> xr.Dataset:
    rng = np.random.default_rng(1)
    return xr.Dataset(
        {"data": (("shot", "time"), rng.standard_normal((n, 5)).astype("f4"), {"units": "1"}),
         "flag": ("shot", np.arange(n) % 2 == 0),
         "wavelet": ("time", np.linspace(0, 1, 5))},
        coords={"shot": np.arange(n), "time": ("time", np.arange(5) * 0.002, {"units": "s"}),
                "src_x": ("shot", np.arange(n) * 10.0)},
        attrs={"dt": 0.002})


def _put(cat: Catalog, step: str, ds: xr.Dataset | None = None):
    key = make_key(step, "1", {}, [])
    cat.claim(key, "t", "thing", step, "1")
    return cat.write(key, "thing", _ds() if ds is None else ds, {"step": step, "version": "1", "params": {},
                                                                  "inputs": []})


def _fill(storage: Storage, uri: str, ds: xr.Dataset) -> RegionWriter:
    w = RegionWriter(storage, uri, "shot", ds.shot.values, 2)
    for i in range(w.n_pieces):
        piece = ds.isel(shot=w.region(i))
        w.ensure_layout(piece)
        w.write(i, piece)
    return w


def _open_plain(uri: str) -> xr.Dataset:
    """A user's ``xr.open_zarr(uri)``, every warning an error."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return xr.open_zarr(uri)


def _group_doc(uri: str) -> dict:
    return json.loads(Path(uri, "zarr.json").read_text())


@pytest.fixture
def cat(tmp_path):
    c = Catalog(tmp_path / "root")
    yield c
    c.close()


# -- local roots -----------------------------------------------------------------------------------
def test_a_complete_dataset_opens_with_plain_open_zarr_without_a_warning(cat):
    whole = _put(cat, "whole")
    key = make_key("mapped", "1", {}, [])
    cat.claim(key, "t", "thing", "mapped", "1")
    mapped = cat.finish(_fill(cat.storage, cat.storage.uri("thing", key), _ds()), {"key": key, "kind": "thing",
                                                                                   "step": "mapped", "version": "1"})
    for rec in (whole, mapped):
        doc = _group_doc(rec.uri)
        assert set(doc["consolidated_metadata"]["metadata"]) == {"data", "flag", "wavelet", "shot", "time", "src_x"}
        assert doc["attributes"][COMPLETE_ATTR] is True and doc["attributes"][LINEAGE_ATTR]["key"] == rec.key
        with _open_plain(rec.uri) as ds, cat.open(rec.key, dask=False) as ours:
            xr.testing.assert_identical(ds.load(), ours.load())
            xr.testing.assert_equal(ds.load(), _ds())
            assert ds.attrs[COMPLETE_ATTR] is True


def test_complete_is_the_last_write_and_carries_the_consolidated_metadata(cat, monkeypatch):
    """Every write of the group's ``zarr.json`` in order: none says complete before the last, which does, with the
    consolidated metadata of every array and the lineage."""
    writes: list[dict] = []
    set_ = zarr.storage.LocalStore.set

    async def recording(self, key, value):
        if key == "zarr.json":
            writes.append(json.loads(value.to_bytes()))
        return await set_(self, key, value)

    monkeypatch.setattr(zarr.storage.LocalStore, "set", recording)
    rec = _put(cat, "whole")
    *before, last = writes
    assert before and not any(w["attributes"].get(COMPLETE_ATTR) for w in before)
    assert last["attributes"][COMPLETE_ATTR] is True and last["attributes"][LINEAGE_ATTR]["key"] == rec.key
    assert len(last["consolidated_metadata"]["metadata"]) == 6
    assert before[-1]["consolidated_metadata"] == last["consolidated_metadata"]  # consolidated, then complete


def test_a_completion_cut_short_leaves_an_incomplete_dataset(cat, monkeypatch):
    key = make_key("cut", "1", {}, [])
    cat.claim(key, "t", "thing", "cut", "1")
    writer = _fill(cat.storage, cat.storage.uri("thing", key), _ds())

    def killed(self, new_attributes):
        raise KeyboardInterrupt

    monkeypatch.setattr(zarr.Group, "update_attributes", killed)
    with pytest.raises(KeyboardInterrupt):
        cat.finish(writer, {"key": key, "kind": "thing", "step": "cut", "version": "1"})
    monkeypatch.undo()
    assert cat.storage.is_consolidated(writer.uri) and not cat.storage.is_complete(writer.uri)
    assert cat.get(key) is None and cat.reindex()["datasets"] == 0


def test_an_in_flight_dataset_is_consolidated_from_its_layout_and_not_complete(cat):
    """Its pieces read the layout in one document; it is not complete (nor adopted) until finished."""
    key = make_key("flight", "1", {}, [])
    cat.claim(key, "t", "thing", "flight", "1")
    uri = cat.storage.uri("thing", key)
    w = RegionWriter(cat.storage, uri, "shot", _ds().shot.values, 2)
    w.ensure_layout(_ds().isel(shot=slice(0, 2)))
    w.write(0, _ds().isel(shot=slice(0, 2)))
    assert cat.storage.is_consolidated(uri) and not cat.storage.is_complete(uri)
    assert COMPLETE_ATTR not in _group_doc(uri)["attributes"]
    assert cat.get(key) is None and w.missing() == [1, 2]
    cat.release(key, "t")
    assert cat.claim(key, "t2", "thing", "flight", "1") is None  # not adopted: claimed to be computed


def test_a_whole_write_replaces_a_leftover(cat):
    """A leftover group (more arrays than the new dataset, a chunk) is replaced, not merged into."""
    key = make_key("left", "1", {}, [])
    uri = cat.storage.uri("thing", key)
    _ds().assign(extra=("shot", np.ones(6))).to_zarr(uri, mode="w", zarr_format=3, consolidated=False)
    cat.claim(key, "t", "thing", "left", "1")
    rec = cat.write(key, "thing", _ds(), {"step": "left", "version": "1", "params": {}, "inputs": []})
    assert not Path(uri, "extra").exists() and set(_group_doc(uri)["consolidated_metadata"]["metadata"]) == {
        "data", "flag", "wavelet", "shot", "time", "src_x"}
    with _open_plain(rec.uri) as ds:
        assert "extra" not in ds and ds.attrs[COMPLETE_ATTR] is True


def _strip_consolidated(uri: str) -> None:
    """As an older strata wrote it: the group's metadata without consolidated metadata."""
    doc = _group_doc(uri)
    doc.pop("consolidated_metadata", None)
    Path(uri, "zarr.json").write_text(json.dumps(doc))


def test_reindex_adds_consolidated_metadata_to_a_dataset_of_an_older_root(cat):
    rec = _put(cat, "old")
    _strip_consolidated(rec.uri)
    key = make_key("inflight", "1", {}, [])
    inflight = cat.storage.uri("thing", key)
    cat.storage.create_template(inflight, _ds().isel(shot=slice(0, 2)), "shot", _ds().shot.values, 2)
    _strip_consolidated(inflight)
    inflight_doc = Path(inflight, "zarr.json").read_bytes()
    attrs = _group_doc(rec.uri)["attributes"]
    with pytest.warns(RuntimeWarning, match="consolidated metadata"):
        xr.open_zarr(rec.uri).close()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cat.storage.open(rec.uri).close()  # strata opens it array by array, quietly

    counts = cat.reindex()
    assert counts["consolidated"] == 1 and counts["datasets"] == 1 and counts["incomplete_skipped"] == 1
    assert _group_doc(rec.uri)["attributes"] == attrs  # complete and lineage kept
    assert Path(inflight, "zarr.json").read_bytes() == inflight_doc  # an in-flight dataset is left alone
    with _open_plain(rec.uri) as ds:
        xr.testing.assert_equal(ds.load(), _ds())
    assert cat.verify(rec.key) == [(rec.key, True, "ok")]
    assert cat.reindex()["consolidated"] == 0


def test_catalog_reindex_says_it_consolidated_an_older_dataset(strata_offline):
    cat = Catalog(strata_offline.root)
    try:
        rec = _put(cat, "old")
    finally:
        cat.close()
    _strip_consolidated(rec.uri)
    out = strata_offline("catalog", "reindex").stdout
    assert "reindexed 1 dataset(s)" in out and "consolidated the metadata of 1 dataset(s)" in out, out
    _open_plain(rec.uri).close()


def test_verify_notices_consolidated_metadata_that_is_not_the_arrays_own(cat):
    rec = _put(cat, "lie")
    doc = _group_doc(rec.uri)
    doc["consolidated_metadata"]["metadata"]["data"]["attributes"]["units"] = "m"
    Path(rec.uri, "zarr.json").write_text(json.dumps(doc))
    [(key, ok, msg)] = cat.verify(rec.key)
    assert key == rec.key and not ok and "consolidated metadata of data" in msg, msg


def test_the_consolidated_warning_of_zarr_stays_off_and_in_its_call_only(cat):
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        _put(cat, "quiet")
        ours = [str(w.message) for w in seen if "Consolidated metadata" in str(w.message)]
        assert ours == []
        g = zarr.open_group(str(Path(cat.root, "elsewhere.zarr")), mode="w", zarr_format=3)
        g.create_array("a", shape=(2,), dtype="f4")
        zarr.consolidate_metadata(g.store, zarr_format=3)  # a user's own call still warns
        assert any("Consolidated metadata" in str(w.message) for w in seen)


# -- S3: requests counted ----------------------------------------------------------------------------
def _forget_s3_clients() -> None:
    """Drop the S3 filesystems fsspec keeps (they hold the endpoint they were made for)."""
    import s3fs

    s3fs.S3FileSystem.clear_instance_cache()


@pytest.fixture(scope="module")
def counting_s3():
    """A moto server of this module, counting requests; the AWS variables point at it meanwhile."""
    import s3fs

    server = CountingMotoServer()
    server.start()
    with pytest.MonkeyPatch.context() as mp:
        for name, value in {"AWS_ACCESS_KEY_ID": "counting", "AWS_SECRET_ACCESS_KEY": "counting",
                            "AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT_URL": server.url}.items():
            mp.setenv(name, value)
        for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
            mp.delenv(name, raising=False)
        _forget_s3_clients()  # none made for another endpoint
        s3fs.S3FileSystem().mkdir("strata-counted")
        yield server
        _forget_s3_clients()
    server.stop()


@pytest.fixture
def s3_cat(counting_s3, tmp_path, monkeypatch):
    import uuid

    monkeypatch.setenv("STRATA_CACHE_DIR", str(tmp_path / "cache"))
    c = Catalog(f"s3://strata-counted/{uuid.uuid4().hex[:12]}")
    yield c
    c.close()


def _metadata_reads(tally) -> list[str]:
    return [key for op, key in tally.keys if op == "GET" and key.endswith("zarr.json")]


def test_on_s3_a_complete_dataset_opens_with_one_metadata_read(s3_cat, counting_s3):
    rec = _put(s3_cat, "opened")
    for opener in (lambda: s3_cat.storage.open(rec.uri), lambda: _open_plain(rec.uri)):
        mark = counting_s3.mark()
        opener().close()
        tally = counting_s3.since(mark)
        assert _metadata_reads(tally) == [f"/{rec.uri.removeprefix('s3://')}/zarr.json"], tally.keys
    mark = counting_s3.mark()
    s3_cat.storage.open(rec.uri).close()
    assert counting_s3.since(mark).ops.keys() == {"GET"}  # strata's: no HEAD, no listing


def test_on_s3_a_piece_reads_its_layout_once_and_asks_for_nothing_else(s3_cat, counting_s3):
    """A piece of numeric variables (a bool or string one goes through xarray's region write, which reads each
    array's metadata)."""
    storage = s3_cat.storage
    uri = storage.uri("thing", "pieces")
    ds = _ds().drop_vars("flag")
    w = RegionWriter(storage, uri, "shot", ds.shot.values, 2)
    w.ensure_layout(ds.isel(shot=slice(0, 2)))
    mark = counting_s3.mark()
    piece = ds.isel(shot=w.region(1))
    w.ensure_layout(piece)
    w.write(1, piece)
    tally = counting_s3.since(mark)
    assert tally.ops["HEAD"] == 0 and tally.ops["LIST"] == 0, tally.keys
    assert _metadata_reads(tally) == [f"/{uri.removeprefix('s3://')}/zarr.json"], tally.keys
    assert tally.ops["GET"] == 2  # the layout marker, the group's metadata
    puts = [k.rsplit(".zarr/", 1)[1] for op, k in tally.keys if op == "PUT"]
    assert sorted(puts[:-1]) == ["data/c/1/0", "src_x/c/1"] and puts[-1] == ".strata/regions/1", puts  # marker last
    mark = counting_s3.mark()
    assert w.done(1) and not w.done(2)
    assert counting_s3.since(mark).ops == {"GET": 2}  # one request each, there or not


@pytest.mark.prefect
@pytest.mark.slow
def test_every_output_of_a_tiny_survey_on_s3_opens_with_plain_open_zarr(counting_s3, tmp_path, prefect_server,
                                                                         monkeypatch):
    """``strata run seismic_survey --preset tiny`` on an S3 root: every dataset it made opens with a plain
    ``xr.open_zarr(uri)``, no warning, reading one metadata document; the run's requests stay under a budget
    (796 before consolidated metadata and fewer requests per piece, 327 after: tests/benchmarks/bench_scale.py)."""
    root = "s3://strata-counted/tiny-survey"
    s3 = Strata(tmp_path / "unused", prefect_server)
    s3.env.update(STRATA_CACHE_DIR=str(tmp_path / "cache"))
    mark = counting_s3.mark()
    out = s3.json("run", "seismic_survey", "--preset", "tiny", "--root", root)
    run = counting_s3.since(mark)
    monkeypatch.setenv("STRATA_CACHE_DIR", str(tmp_path / "cache"))
    cat = Catalog(root)
    recs = [cat.get(k) for k in out["computed"]]
    cat.close()
    assert len(recs) == 3 and set(out["outputs"].values()) <= {r.key for r in recs}
    for rec in recs:
        mark = counting_s3.mark()
        with _open_plain(rec.uri) as ds:
            assert ds.attrs[COMPLETE_ATTR] is True and ds.attrs[LINEAGE_ATTR]["key"] == rec.key
        assert _metadata_reads(counting_s3.since(mark)) == [f"/{rec.uri.removeprefix('s3://')}/zarr.json"]
    assert run.total < 450, str(run)


@pytest.mark.prefect
def test_every_dataset_of_a_tiny_run_opens_with_plain_open_zarr(tiny_run):
    """The same on a local root: the session's tiny survey, every dataset it made or reused."""
    s, proc = tiny_run("seismic_survey")
    out = json.loads(proc.stdout)
    cat = Catalog(s.root)
    try:
        recs = [cat.get(k) for k in [*out["computed"], *out["reused"]]]
    finally:
        cat.close()
    assert recs and all(recs) and set(out["outputs"].values()) <= {r.key for r in recs}
    for rec in recs:
        assert "consolidated_metadata" in _group_doc(rec.uri)
        with _open_plain(rec.uri) as ds:
            assert ds.attrs[COMPLETE_ATTR] is True and ds.attrs[LINEAGE_ATTR]["key"] == rec.key
