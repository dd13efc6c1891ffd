"""How a dataset is laid out in zarr: what is stored (:func:`prepare`), what the pieces of a region-filled
dataset must agree on (:func:`layout_digest`), the codec of region arrays, and whole-chunk region writes."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import numpy as np
import xarray as xr
import zarr

__all__ = ["COMPLETE_ATTR", "LINEAGE_ATTR", "prepare", "layout_digest", "region_compressors", "check_aligned"]

COMPLETE_ATTR = "strata_complete"
LINEAGE_ATTR = "strata_lineage"


def prepare(ds: xr.Dataset) -> xr.Dataset:
    """``ds`` as strata stores it: encodings inherited from a source store dropped (they would
    fight ours), and fixed-width strings as Python strings, which zarr v3 stores as variable-length
    UTF-8 (a data type its specification defines). The catalog's own attrs (lineage, complete) are the
    store's, never the content's: a step that returns its input's attrs must not mark its output complete
    before it is."""
    ds = ds.copy(deep=False)
    ds.attrs = {k: v for k, v in ds.attrs.items() if k not in (COMPLETE_ATTR, LINEAGE_ATTR)}
    for name, var in ds.variables.items():
        var.encoding = {}
        if var.dtype.kind in "US":
            ds[name] = var.astype(object) if var.dtype.kind == "U" else xr.Variable(
                var.dims, np.char.decode(var.values, "utf-8").astype(object), var.attrs)
    return ds


def _digest_values(values: np.ndarray) -> str:
    if values.dtype.kind == "O":
        return hashlib.sha256(repr(values.tolist()).encode()).hexdigest()
    return hashlib.sha256(np.ascontiguousarray(values).tobytes()).hexdigest()


def layout_digest(piece: xr.Dataset, region_dim: str) -> str:
    """What a region-filled dataset takes from the piece that lays it out, as a digest: the attrs, every
    variable's dims, dtype, attrs and shape outside ``region_dim``, and the values of the variables without
    ``region_dim``. The pieces of one dataset must agree on it (any of them may lay the dataset out)."""
    piece = prepare(piece)
    doc = {"attrs": piece.attrs, "variables": {}}
    for name, var in sorted(piece.variables.items(), key=lambda kv: str(kv[0])):
        if name == region_dim:
            continue
        entry = {"dims": list(var.dims), "dtype": str(var.dtype), "attrs": var.attrs,
                 "shape": [n for d, n in zip(var.dims, var.shape, strict=True) if d != region_dim]}
        if region_dim not in var.dims:
            entry["values"] = _digest_values(np.asarray(var.values))
        doc["variables"][str(name)] = entry
    return hashlib.sha256(json.dumps(doc, sort_keys=True, default=repr).encode()).hexdigest()


def region_compressors() -> tuple[Any, ...]:
    """Codec of region-written arrays: blosc lz4 + byte shuffle compresses float32 shot records
    about 5x faster than zarr's default zstd, decodes 4x faster, and smaller (measured)."""
    return (zarr.codecs.BloscCodec(cname="lz4", clevel=1, shuffle="shuffle"),)


def check_aligned(uri: str, name: str, dim: str, start: int, stop: int, length: int, chunk: int) -> None:
    """A region write must cover whole chunks (its stop may be the end of ``dim``): two writers of one chunk
    each rewrite all of it, and on an object store the later one silently drops the other's part."""
    if start % chunk or (stop % chunk and stop != length) or stop > length:
        raise ValueError(f"{uri}: region [{start}, {stop}) of {dim!r} is not aligned to the chunks of {name} "
                         f"({chunk} long, {length} in all): a region write must cover whole chunks")
