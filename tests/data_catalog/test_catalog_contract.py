"""The catalog contract, written once and run against every store (local directory, fsspec memory, S3 on a
loopback server)."""

from __future__ import annotations

import os
import socket
import time
import uuid

import numpy as np
import pytest
import xarray as xr

from data_catalog import Catalog, check_key, fingerprint, make_key
from data_catalog.region_layout import LAYOUT_CLAIM
from strata_errors import InputError, RunError

from ..conftest import S3_KEY_ID, S3_SECRET


def _root(kind: str, request, tmp_path) -> str:
    """A fresh root of one kind of store (the S3 server starts with the first test that needs it)."""
    if kind == "s3":
        return request.getfixturevalue("s3_root")
    return str(tmp_path / "root") if kind == "local" else f"memory://strata-{uuid.uuid4().hex}"


@pytest.fixture(params=["local", "memory", "s3"])
def cat(request, tmp_path, monkeypatch):
    monkeypatch.setenv("STRATA_CACHE_DIR", str(tmp_path / "cache"))
    c = Catalog(_root(request.param, request, tmp_path))
    yield c
    c.close()


def _ds(n: int = 6, value: float = 1.0) -> xr.Dataset:
    x = np.arange(n, dtype="f8") * 10.0
    return xr.Dataset(
        {"v": (("x", "z"), np.full((n, 3), value, dtype="f4") + np.arange(n * 3, dtype="f4").reshape(n, 3),
               {"units": "m/s", "long_name": "velocity"})},
        coords={"x": ("x", x, {"units": "m"}), "z": ("z", [0.0, 5.0, 10.0], {"units": "m"})},
    )


def _lineage(step: str, inputs=(), **params):
    return {"step": step, "version": "1", "params": params, "inputs": list(inputs),
            "input_fingerprints": {}, "code": {"function": "mod:fn", "source_hash": "abc"}}


def _put(cat: Catalog, step: str, ds: xr.Dataset, inputs=(), kind="thing", **params):
    key = make_key(step, "1", params, list(inputs))
    assert cat.claim(key, "test-owner", kind, step, "1") is None
    return cat.write(key, kind, ds, _lineage(step, inputs, **params))


def test_keys_are_canonical():
    a = make_key("s", "1", {"b": 1, "a": np.float32(0.5), "c": (1, 2)}, ["k1"])
    b = make_key("s", "1", {"a": 0.5, "c": [1, 2], "b": np.int64(1)}, ["k1"])
    assert a == b and len(a) == 20 and check_key(a) == a
    assert make_key("s", "2", {"a": 0.5}, []) != make_key("s", "1", {"a": 0.5}, [])
    assert make_key("s", "1", {"a": 0.1 + 0.2}, []) != make_key("s", "1", {"a": 0.3}, [])
    for bad in ["ABCDEF", "12345", "xyz123", "0" * 21, ""]:
        with pytest.raises(InputError, match="malformed key"):
            check_key(bad)


def test_write_open_show_roundtrip(cat):
    ds = _ds()
    rec = _put(cat, "make", ds, a=1.5)
    assert rec.complete and rec.kind == "thing" and rec.uri.endswith(f"datasets/thing/{rec.key}.zarr")
    back = cat.open(rec.key).load()
    xr.testing.assert_identical(back.drop_attrs(), ds.drop_attrs())
    assert back.v.attrs["units"] == "m/s"
    assert rec.variables["v"] == {"dims": ["x", "z"], "shape": [6, 3], "chunks": [6, 3], "dtype": "float32",
                                  "units": "m/s"}
    assert rec.fingerprint == fingerprint(ds)
    assert cat.resolve(rec.key[:8]) == rec.key
    with pytest.raises(InputError, match="no dataset"):
        cat.resolve("abcdef")


def test_incomplete_is_invisible_and_claims_are_exclusive(cat):
    key = make_key("slow", "1", {}, [])
    assert cat.claim(key, "owner-a", "thing", "slow", "1") is None
    assert cat.get(key) is None
    with pytest.raises(InputError, match="not complete"):
        cat.open(key)
    # a live claimant on this host (our own pid) makes others wait; a dead one is taken over
    import socket
    live = f"{socket.gethostname()}:{os.getpid()}:run-a"
    key2 = make_key("slow", "1", {"x": 1}, [])
    assert cat.claim(key2, live, "thing", "slow", "1") is None
    with pytest.raises(RunError, match="timed out waiting"):
        cat.claim(key2, "someone-else", "thing", "slow", "1", wait=0.3, poll=0.1)
    dead = f"{socket.gethostname()}:999999999:run-b"
    key3 = make_key("slow", "1", {"x": 2}, [])
    assert cat.claim(key3, dead, "thing", "slow", "1") is None
    assert cat.claim(key3, "new-owner", "thing", "slow", "1", wait=0.3) is None


def test_complete_in_storage_is_adopted(cat):
    """A run killed after the attrs but before the index row: the next claim adopts the dataset."""
    key = make_key("adopt", "1", {}, [])
    uri = cat.storage.uri("thing", key)
    cat.storage.write(uri, _ds(), {**_lineage("adopt"), "key": key, "kind": "thing"})
    rec = cat.claim(key, "owner", "thing", "adopt", "1")
    assert rec is not None and rec.complete and rec.key == key


def test_a_finished_dataset_leaves_no_layout_claim_beside_it(cat):
    """The layout claim (a sibling of the group, taken by the piece that lays the dataset out) goes when the
    dataset is finished: the root holds the dataset and nothing else."""
    full = _ds(8)
    key = make_key("claimed", "1", {}, [])
    w = cat.create(key, "thing", "x", full.x.values, 4)
    for i in (0, 1):
        piece = full.isel(x=slice(4 * i, 4 * i + 4))
        w.ensure_layout(piece)
        w.write(i, piece)
    claim = cat.storage.path(w.uri) + LAYOUT_CLAIM
    assert cat.storage.fs.exists(claim)
    cat.finish(w, {**_lineage("claimed"), "key": key, "kind": "thing"})
    assert not cat.storage.fs.exists(claim)
    xr.testing.assert_equal(cat.open(key).load(), full)


def test_region_writer_resumes_and_fingerprint_ignores_chunking(cat):
    full = _ds(10)
    key = make_key("mapped", "1", {}, [])
    coord = full.x.values
    lineage = {**_lineage("mapped"), "key": key, "kind": "thing"}
    w = cat.create(key, "thing", "x", coord, 4, template=full.isel(x=slice(0, 4)))
    assert w.missing() == [0, 1, 2]
    w.write(0, full.isel(x=slice(0, 4)))
    w.write(2, full.isel(x=slice(8, 10)))
    with pytest.raises(RunError, match=r"regions \[1\]"):
        cat.finish(w, lineage)
    assert cat.get(key) is None
    # a new writer (a resumed run) sees only the missing region
    w2 = cat.create(key, "thing", "x", coord, 4, template=full.isel(x=slice(0, 4)))
    assert w2.missing() == [1]
    w2.write(1, full.isel(x=slice(4, 8)))
    rec = cat.finish(w2, lineage)
    assert rec.fingerprint == fingerprint(full)
    assert rec.variables["v"]["chunks"] == [4, 3]
    xr.testing.assert_equal(cat.open(key).load(), full)


def test_lineage_up_down_depth_and_stale(cat):
    a = _put(cat, "a", _ds(value=1.0))
    b = _put(cat, "b", _ds(value=2.0), inputs=[a.key])
    c = _put(cat, "c", _ds(value=3.0), inputs=[b.key])
    # record input fingerprints as the step wrapper does
    for rec, parent in ((b, a), (c, b)):
        doc = cat.storage.attrs(rec.uri)["strata_lineage"]
        doc["input_fingerprints"] = {parent.key: parent.fingerprint}
        cat.register(rec.uri, doc)
    up = cat.lineage(c.key, "up")
    assert up["nodes"][0]["key"] == c.key and {n["key"] for n in up["nodes"]} == {a.key, b.key, c.key}
    assert {(e["from"], e["to"]) for e in up["edges"]} == {(b.key, c.key), (a.key, b.key)}
    assert {n["key"] for n in cat.lineage(c.key, "up", depth=1)["nodes"]} == {c.key, b.key}
    down = cat.lineage(a.key, "down")
    assert {n["key"] for n in down["nodes"]} == {a.key, b.key, c.key}
    assert all(n["params"] is not None and n["code"] for n in up["nodes"])
    assert cat.stale(c.key, lambda fn: "abc") == {c.key: []}
    assert any("code of c" in r for r in cat.stale(c.key, lambda fn: "changed")[c.key])
    # rewrite a's values under the same key: b and c become stale (an input changed)
    cat.write(a.key, "thing", _ds(value=9.0), _lineage("a"))
    reasons = cat.stale(c.key, lambda fn: "abc")[c.key]
    assert any("is stale" in r for r in reasons)
    assert any("changed" in r for r in cat.stale(b.key)[b.key])


def test_verify_finds_a_flipped_byte(cat):
    rec = _put(cat, "victim", _ds(50, value=0.25))
    assert all(ok for _, ok, _ in cat.verify())
    fs, base = cat.storage.fs, cat.storage.path(rec.uri)
    chunks = [p for p in fs.find(f"{base}/v") if "/c/" in p]
    data = bytearray(fs.cat_file(chunks[0]))
    data[len(data) // 2] ^= 0xFF
    fs.pipe_file(chunks[0], bytes(data))
    results = cat.verify(rec.key)
    assert results[0][0] == rec.key and not results[0][1]
    assert rec.key in results[0][2]


def test_reindex_rebuilds_from_attrs(cat):
    a = _put(cat, "a", _ds())
    b = _put(cat, "b", _ds(value=5.0), inputs=[a.key])
    incomplete = make_key("never", "1", {}, [])
    cat.storage.create_template(cat.storage.uri("thing", incomplete), _ds(), "x", _ds().x.values, 2)
    before = {r.key: r.to_json() for r in cat.list()}
    counts = cat.reindex()
    assert counts["datasets"] == 2 and counts["incomplete_skipped"] == 1
    after = {r.key: r.to_json() for r in cat.list()}
    assert after == before
    assert cat.lineage(b.key)["edges"][0]["from"] == a.key


def test_string_coordinates_fingerprint_the_same_after_a_round_trip(cat):
    ds = _ds(2).assign_coords(name=("x", np.array(["fully_synthetic", "fresh"], dtype=object)))
    rec = _put(cat, "strings", ds)
    assert cat.verify(rec.key)[0][1]
    assert fingerprint(ds.assign_coords(name=("x", np.array(["fully_synthetic", "fresh"])))) == rec.fingerprint


def test_a_region_write_may_span_several_chunks(cat):
    full = _ds(10)
    key = make_key("spans", "1", {}, [])
    w = cat.create(key, "thing", "x", full.x.values, 2, template=full.isel(x=slice(0, 2)))
    w.write(1, full.isel(x=slice(2, 8)))  # chunks 1, 2, 3 in one write
    assert w.missing() == [0, 4]
    w.write(0, full.isel(x=slice(0, 2)))
    w.write(4, full.isel(x=slice(8, 10)))
    assert cat.finish(w, {**_lineage("spans"), "key": key, "kind": "thing"}).fingerprint == fingerprint(full)


def test_keys_fingerprints_and_lineage_do_not_depend_on_the_root(tmp_path, monkeypatch, s3_root):
    """One dataset written under a local and an S3 root: the same key, fingerprint and lineage block; nothing
    written under the S3 root names its endpoint or credentials."""
    monkeypatch.setenv("STRATA_CACHE_DIR", str(tmp_path / "cache"))
    docs = []
    for root in (str(tmp_path / "root"), s3_root):
        c = Catalog(root)
        a = _put(c, "a", _ds(), x=1.0)
        b = _put(c, "b", _ds(value=2.0), inputs=[a.key])
        docs.append([(r.key, r.fingerprint, c.storage.attrs(r.uri)["strata_lineage"]) for r in (a, b)])
        if c.storage.shared:
            fs = c.storage.fs
            stored = b"".join(fs.cat_file(p) for p in fs.find(c.storage.path(c.root)))
            endpoint = os.environ["AWS_ENDPOINT_URL"].split("//")[1]
            assert not [w for w in (S3_KEY_ID, S3_SECRET, endpoint) if w.encode() in stored]
        c.close()
    assert docs[0] == docs[1]


def test_a_removal_cut_short_leaves_nothing_a_run_would_adopt(cat, monkeypatch):
    """Storage.delete removes the group's metadata (which marks the dataset complete) first: a removal
    interrupted after it leaves files no claim adopts as complete, only an incomplete leftover."""
    rec = _put(cat, "a", _ds())
    rm = cat.storage.fs.rm

    def rm_once(path, *args, **kw):
        monkeypatch.setattr(cat.storage.fs, "rm", lambda *a, **k: (_ for _ in ()).throw(KeyboardInterrupt()))
        return rm(path, *args, **kw)

    monkeypatch.setattr(cat.storage.fs, "rm", rm_once)
    with pytest.raises(KeyboardInterrupt):
        cat.storage.delete(rec.uri)
    monkeypatch.setattr(cat.storage.fs, "rm", rm)
    assert cat.storage.fs.exists(cat.storage.path(rec.uri)) and not cat.storage.is_complete(rec.uri)
    cat.index.delete([rec.key])  # the index row went too (as a run finds it after an interrupted rm)
    assert cat.claim(rec.key, "another-run", "thing", "a", "1") is None  # to compute, not adopted


def test_du_rm_and_gc_lose_nothing_else(cat):
    """Housekeeping: sizes per kind; a dataset others depend on is removed only with them (dependents first,
    a dry run removes nothing); gc removes what dead runs left incomplete and keeps a live run's claim."""
    from data_catalog.housekeeping import collect, remove, usage
    from data_catalog.index import owner_id

    a = _put(cat, "a", _ds(), kind="model")
    b = _put(cat, "b", _ds(value=2.0), [a.key], kind="records")
    c = _put(cat, "c", _ds(value=3.0), [b.key], kind="image")
    d = _put(cat, "d", _ds(value=4.0), kind="model")
    du = usage(cat)
    assert set(du["by_kind"]) == {"model", "records", "image"} and all(n > 0 for n in du["by_kind"].values())
    assert du["total"] == sum(du["by_kind"].values()) and du["incomplete"] == 0

    with pytest.raises(InputError, match=r"1 dataset\(s\) depend on it .*--with-dependents"):
        remove(cat, b.key)
    planned = remove(cat, b.key[:8], with_dependents=True, dry_run=True)
    assert [r.key for r in planned] == [c.key, b.key] and cat.get(c.key) is not None  # nothing removed yet
    remove(cat, b.key, with_dependents=True)
    assert {r.key for r in cat.list()} == {a.key, d.key}
    assert not cat.storage.fs.exists(cat.storage.path(b.uri)) and not cat.storage.fs.exists(cat.storage.path(c.uri))
    assert cat.open(a.key).load().v.shape == (6, 3)  # what it was made from is untouched

    dead = make_key("dead", "1", {}, [])
    killed = f"{socket.gethostname()}:{2**22 + 12345}:killed"  # this host, a pid that is not running
    cat.index.claim(dead, killed, {"kind": "thing", "step": "dead", "version": "1",
                                   "uri": cat.storage.uri("thing", dead)})
    w = cat.create(dead, "thing", "x", np.arange(6), 2)
    w.lay_out(_ds().isel(x=slice(0, 2)))  # a half-written dataset of a run that died
    live = make_key("live", "1", {}, [])
    assert cat.claim(live, owner_id("run"), "thing", "live", "1") is None
    cat.create(live, "thing", "x", np.arange(6), 2).lay_out(_ds().isel(x=slice(0, 2)))
    gone = collect(cat)
    assert gone == [cat.storage.uri("thing", dead)]
    assert cat.storage.template_ready(cat.storage.uri("thing", live))  # a live run's work is kept
    assert {r.key for r in cat.list()} == {a.key, d.key} and collect(cat) == []


def test_gc_older_than_removes_only_outputs_nothing_references(cat):
    """gc --older-than: kept are what runs since the cutoff or a run going on made or reused, what the newest
    completed run of each configuration made or reused, imports, and everything those are made from; the rest
    goes, dependents first. The index is read ten days from now, so every dataset and use here is old."""
    from datetime import UTC, datetime

    from data_catalog.housekeeping import collect_unreferenced, parse_duration, unreferenced
    from data_catalog.index import owner_id

    t0 = time.time()
    later, week = t0 + 10 * 86400, parse_duration("7d")

    def iso(t: float) -> str:
        return datetime.fromtimestamp(t, UTC).isoformat(timespec="seconds")

    def made(step: str, run: str, inputs=(), created: float = t0):
        key = make_key(step, "1", {}, [r.key for r in inputs])
        assert cat.claim(key, owner_id(run), "thing", step, "1") is None
        lineage = {**_lineage(step, [r.key for r in inputs]), "flow_run_id": run, "created": iso(created)}
        return cat.write(key, "thing", _ds(), lineage)

    def reused(run: str, *recs) -> None:
        for r in recs:
            assert cat.claim(r.key, owner_id(run), "thing", r.step, "1") is not None

    def ran(run: str, config: str, started: float, status: str) -> None:
        cat.index.put_run(run, study=config, preset="tiny", overrides=[], started=iso(started), status=status)

    if not cat.storage.is_local:  # each host's index knows its own runs only: refused, before any change
        with pytest.raises(InputError, match="needs a local data root"):
            collect_unreferenced(cat, week, now=later)
        return
    imported = _put(cat, "segy_import", _ds())  # made by no run
    unknown = made("u", "r0")  # made by a run this index does not know (a root from before uses were noted)
    ran("r1", "A", t0, "COMPLETE")  # configuration A, superseded by r2
    a = made("a", "r1")
    b = made("b", "r1", [a])
    c = made("c", "r1", [b])
    ran("r2", "A", t0 + 86400, "COMPLETE")  # A's newest completed run: a fully cached rerun but for d
    reused("r2", a, b)
    d = made("d", "r2", [b])
    ran("r3", "B", t0 + 2 * 86400, "FAIL")
    e = made("e", "r3", [a])
    f = made("f", "r3", [e])
    j = made("j", "r3")
    k = made("k", "r3", created=later - 3600)  # made an hour before "now"
    ran("r5", "C", later - 3600, "COMPLETE")  # a run since the cutoff that reused j
    reused("r5", j)
    ran("r6", "D", t0 + 3 * 86400, "RUNNING")  # a run still going (this process) that reused e
    reused("r6", e)

    assert {r.key for r in unreferenced(cat, week, later)} == {c.key, f.key}  # e: r6 is still going
    ran("r6", "D", t0 + 3 * 86400, "FAIL")
    plan = collect_unreferenced(cat, week, dry_run=True, now=later)
    assert {r.key for r in plan} == {c.key, e.key, f.key}
    assert [r.key for r in plan].index(f.key) < [r.key for r in plan].index(e.key)  # dependents first
    assert len(cat.list()) == 10 and unreferenced(cat, 30 * 86400, later) == []  # nothing is 30 days old
    assert unreferenced(cat, week) == []  # today, nothing is a week old

    assert cat.claim(c.key, owner_id("r9"), "thing", "c", "1") is not None  # a run reuses c after the listing
    removed = collect_unreferenced(cat, week, now=later)
    assert [r.key for r in removed] == [f.key, e.key]  # c: a run used it since the listing
    kept = {imported.key, unknown.key, a.key, b.key, c.key, d.key, j.key, k.key}
    assert {r.key for r in cat.list()} == kept and cat.index.claims() == []
    for r in (e, f):
        assert not cat.storage.fs.exists(cat.storage.path(r.uri)) and cat.index.get(r.key) is None
    for r in cat.list():
        assert cat.open(r.key).load().v.shape == (6, 3)
    assert collect_unreferenced(cat, week, now=later) == [] and collect_unreferenced(cat, 0) == []

    owner = owner_id("gc")  # taking a dataset for removal: refused once a run used it since; runs wait meanwhile
    assert not cat.index.take(c.key, owner, since=t0) and cat.index.take(d.key, owner, since=time.time() + 1)
    assert cat.index.claim(d.key, owner_id("r10"), {"kind": "thing", "step": "d", "version": "1", "uri": d.uri})[0] \
        == "busy"
    with pytest.raises(InputError, match="older-than '7 days'"):
        parse_duration("7 days")
    assert parse_duration("12h") == 43200 and parse_duration("30m") == 1800 and parse_duration("1.5d") == 129600


def test_a_piece_carrying_its_inputs_catalog_attrs_is_not_complete_before_it_is(cat):
    """A step that returns its input's attrs (``strata_complete``, ``strata_lineage``) lays out a dataset that is
    in flight, not complete: the catalog's attrs are the store's own, never the content's."""
    key = make_key("inherit", "1", {}, [])
    piece = _ds(10).isel(x=slice(0, 4))
    piece.attrs.update({"strata_complete": True, "strata_lineage": {"key": "someone-else"}, "mine": 1})
    w = cat.create(key, "thing", "x", _ds(10).x.values, 4, template=piece)
    w.write(0, piece)
    uri = cat.storage.uri("thing", key)
    assert not cat.storage.is_complete(uri)
    attrs = cat.storage.attrs(uri)
    assert attrs.get("mine") == 1 and "strata_lineage" not in attrs
