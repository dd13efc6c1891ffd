"""The lease of an object-store root: runs of two hosts (two catalogs given two host names) on one S3 root
(moto's server on loopback): one writes, the other waits, then fails with one line; expired leases are taken."""

from __future__ import annotations

import json
import os
import socket
import threading
import time

import numpy as np
import pytest
import xarray as xr

from data_catalog import Catalog, make_key
from data_catalog.lease import LEASE_PATH, Lease
from strata_errors import RunError


@pytest.fixture
def root(s3_root, tmp_path, monkeypatch):
    monkeypatch.setenv("STRATA_CACHE_DIR", str(tmp_path / "cache"))
    return s3_root


def _write(cat: Catalog, tag: str) -> str:
    key = make_key("leased", "1", {"tag": tag}, [])
    assert cat.claim(key, f"{cat._host}:{os.getpid()}:run-{tag}", "thing", "leased", "1") is None
    cat.write(key, "thing", xr.Dataset({"v": ("x", np.arange(3.0))}),
              {"step": "leased", "version": "1", "params": {"tag": tag}, "inputs": []})
    return key


def _lease_doc(cat: Catalog) -> dict | None:
    path = cat.storage.path(f"{cat.root}/{LEASE_PATH}")
    return json.loads(cat.storage.fs.cat_file(path)) if cat.storage.fs.exists(path) else None


def test_a_second_host_waits_then_fails_with_one_line(root, tmp_path, monkeypatch):
    a = Catalog(root, host="host-a")
    _write(a, "a")
    doc = _lease_doc(a)
    assert (doc["host"], doc["pid"], doc["run"]) == ("host-a", os.getpid(), "run-a") and doc["expires"] > time.time()
    assert set(doc) == {"host", "pid", "run", "expires", "expires_at"}
    # another host has its own index (cache dir); reading needs no lease
    monkeypatch.setenv("STRATA_CACHE_DIR", str(tmp_path / "cache-b"))
    b = Catalog(root, host="host-b", lease_wait=0.5)
    assert b.list() == []
    t0 = time.monotonic()
    with pytest.warns(UserWarning, match="in use by run run-a on host-a"), \
            pytest.raises(RunError, match=r"in use by run run-a on host-a \(pid \d+\), lease .* renewed until "
                                          + doc["expires_at"][:16]) as err:
        _write(b, "b")
    assert 0.5 <= time.monotonic() - t0 < 5 and "\n" not in str(err.value)
    # a reads and writes on; once it closes, b takes the lease and adopts a's dataset from the root
    _write(a, "a2")
    a.close()
    assert _lease_doc(a) is None
    key = _write(b, "b")
    assert _lease_doc(b)["host"] == "host-b"
    assert b.claim(make_key("leased", "1", {"tag": "a"}, []), "x:1:y", "thing", "leased", "1").complete
    b.close()
    assert _lease_doc(b) is None and b.get(key).complete  # released at close; reading takes no lease
    assert _lease_doc(b) is None
    b.close()


def test_a_waiting_host_gets_the_lease_when_it_is_released(root):
    a, b = Catalog(root, host="host-a"), Catalog(root, host="host-b", lease_wait=30)
    _write(a, "a")
    threading.Timer(0.5, a.close).start()
    t0 = time.monotonic()
    with pytest.warns(UserWarning, match="waiting up to 30 s"):
        _write(b, "b")
    assert time.monotonic() - t0 < 10
    b.close()


def test_an_expired_lease_or_a_dead_process_lease_is_taken_over(root):
    b = Catalog(root, host="host-b", lease_wait=0)
    path = b.storage.path(f"{root}/{LEASE_PATH}")
    dead = {"host": "host-z", "pid": 1, "run": "gone", "expires": time.time() - 1, "expires_at": "then"}
    b.storage.fs.pipe_file(path, json.dumps(dead).encode())
    _write(b, "b")  # no wait
    assert _lease_doc(b)["host"] == "host-b"
    b.close()
    # a live-looking lease of a dead pid on this very host
    c = Catalog(root, lease_wait=0)
    dead = {"host": socket.gethostname(), "pid": 999_999_999, "run": "gone", "expires": time.time() + 60}
    c.storage.fs.pipe_file(path, json.dumps(dead).encode())
    _write(c, "c")
    assert _lease_doc(c)["pid"] == os.getpid()
    c.close()


def test_the_holder_renews_and_notices_a_take_over(root):
    cat = Catalog(root)
    fs, path = cat.storage.fs, cat.storage.path(f"{root}/{LEASE_PATH}")
    lease = Lease(fs, path, root, host="host-r", ttl=0.6)
    lease.acquire("r")
    first = json.loads(fs.cat_file(path))["expires"]
    time.sleep(0.5)
    assert json.loads(fs.cat_file(path))["expires"] > first  # renewed every ttl / 3
    lease.check()
    fs.pipe_file(path, json.dumps({"host": "host-s", "pid": 1, "run": "s", "expires": time.time() + 60}).encode())
    time.sleep(0.5)  # the next renewal's conditional put fails: the lease was taken
    with pytest.raises(RunError, match="lost the lease of data root .*: another run took it over"):
        lease.check()
    lease.release()
    assert json.loads(fs.cat_file(path))["host"] == "host-s"  # not ours: left alone
    cat.close()
