"""`verify` finds a flipped byte, a deleted chunk and truncated metadata, naming the dataset and the variable;
`verify --fix` removes what is corrupt and marks it incomplete (its key and its dependents' stay)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from data_catalog import Catalog, make_key


@pytest.fixture
def cat(tmp_path):
    c = Catalog(tmp_path / "root")
    yield c
    c.close()


def _put(cat, step, inputs=()):
    ds = xr.Dataset({"v": (("x", "z"), np.arange(40.0).reshape(8, 5)), "w": ("x", np.linspace(0, 1, 8))},
                    coords={"x": np.arange(8)})
    key = make_key(step, "1", {}, list(inputs))
    cat.claim(key, "t", "thing", step, "1")
    return cat.write(key, "thing", ds, {"step": step, "version": "1", "params": {}, "inputs": list(inputs)})


def _chunk(rec, var):
    return next(p for p in sorted(Path(rec.uri, var).rglob("*")) if p.is_file() and p.name != "zarr.json")


def _flip(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("damage,expect", [
    (lambda rec: _flip(_chunk(rec, "v")), "v"),
    (lambda rec: _chunk(rec, "w").unlink(), "w"),
    (lambda rec: Path(rec.uri, "v", "zarr.json").write_text('{"zarr_format": 3, "node_ty'), "metadata"),
])
def test_verify_names_the_corrupt_dataset_and_variable(cat, damage, expect):
    a = _put(cat, "a")
    b = _put(cat, "b", [a.key])
    damage(a)
    results = dict((k, (ok, msg)) for k, ok, msg in cat.verify())
    assert results[b.key] == (True, "ok")
    ok, msg = results[a.key]
    assert not ok and a.key in msg and "\n" not in msg
    assert (f"variable(s) {expect} changed" in msg or f"variable {expect} cannot be decoded" in msg
            if expect != "metadata" else "metadata cannot be read" in msg), msg

    fixed = dict((k, (ok, msg)) for k, ok, msg in cat.verify(fix=True))
    assert "the next run recomputes it" in fixed[a.key][1]
    assert cat.get(a.key) is None and not Path(a.uri).exists()  # gone, incomplete: a run recomputes it
    assert cat.index.get(a.key) is not None and [k for k, _ in cat.index.children(a.key)] == [b.key]
    assert cat.get(b.key) is not None and cat.verify(b.key) == [(b.key, True, "ok")]
