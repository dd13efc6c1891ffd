"""Several processes writing one catalog at once: nothing is lost, one computes, the other waits."""

from __future__ import annotations

import multiprocessing as mp
import time

import numpy as np
import xarray as xr

from data_catalog import Catalog, make_key


def _register_many(root: str, tag: str, n: int, barrier) -> None:
    cat = Catalog(root)
    barrier.wait()
    for i in range(n):
        key = make_key("many", "1", {"tag": tag, "i": i}, [])
        assert cat.claim(key, f"{tag}-owner", "thing", "many", "1") is None
        ds = xr.Dataset({"v": ("x", np.full(4, i, dtype="f4"))})
        cat.write(key, "thing", ds, {"step": "many", "version": "1", "params": {"tag": tag, "i": i}, "inputs": []})
    cat.close()


def test_two_processes_register_at_once_lose_nothing(tmp_path):
    root = str(tmp_path / "root")
    ctx = mp.get_context("spawn")
    barrier = ctx.Barrier(2)
    procs = [ctx.Process(target=_register_many, args=(root, tag, 40, barrier)) for tag in ("a", "b")]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    cat = Catalog(root)
    recs = cat.list()
    assert len(recs) == 80
    assert {r.params["tag"] for r in recs} == {"a", "b"}
    assert all(ok for _, ok, _ in cat.verify())


def _compute_once(root: str, barrier, out) -> None:
    import os

    cat = Catalog(root)
    key = make_key("shared", "1", {}, [])
    barrier.wait()
    rec = cat.claim(key, f"{__import__('socket').gethostname()}:{os.getpid()}:x", "thing", "shared", "1", poll=0.05)
    if rec is None:  # this process won the claim: compute slowly
        time.sleep(1.0)
        ds = xr.Dataset({"v": ("x", np.arange(3.0))})
        cat.write(key, "thing", ds, {"step": "shared", "version": "1", "params": {}, "inputs": []})
        out.put("computed")
    else:
        out.put("reused")


def test_two_runs_wanting_one_key_compute_it_once(tmp_path):
    root = str(tmp_path / "root")
    ctx = mp.get_context("spawn")
    barrier, out = ctx.Barrier(2), ctx.Queue()
    procs = [ctx.Process(target=_compute_once, args=(root, barrier, out)) for _ in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    assert sorted([out.get(timeout=5), out.get(timeout=5)]) == ["computed", "reused"]
