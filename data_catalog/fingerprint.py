"""Content fingerprint: sha256 over decoded values of every variable, in a fixed order."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import xarray as xr

__all__ = ["fingerprint", "fingerprint_zarr", "plain_dims", "plain_numbers"]

_BLOCK_BYTES = 64 * 2**20
# the direct zarr path reads smaller blocks, so hashing one overlaps with reading the next
_READ_BYTES = 8 * 2**20
# attrs that make xarray decode the stored values into something else (mask, scale, times, bool)
_DECODED_ATTRS = {"scale_factor", "add_offset", "_Unsigned", "missing_value", "dtype", "calendar"}
# xarray decodes numbers with these units into timedelta64 (xarray.coding.times.TIME_UNITS)
_TIME_UNITS = {"days", "hours", "minutes", "seconds", "milliseconds", "microseconds", "nanoseconds"}


def _header(name: str, dims: tuple[str, ...], dtype: str, shape: tuple[int, ...]) -> bytes:
    return f"{name}|{','.join(map(str, dims))}|{dtype}|{shape};".encode()


def _update_strings(h: Any, name: str, var: xr.Variable) -> None:
    values = np.asarray(var.values).ravel().tolist()
    h.update(_header(name, var.dims, "str", var.shape))
    h.update("\x00".join(v.decode() if isinstance(v, bytes) else str(v) for v in values).encode())


def _update_variable(h: Any, name: str, var: xr.Variable) -> None:
    if var.dtype.kind in "OUST":  # strings: stores may hand them back as object or fixed width
        _update_strings(h, name, var)
        return
    h.update(_header(name, var.dims, var.dtype.str, var.shape))
    if var.ndim == 0:
        h.update(np.ascontiguousarray(np.asarray(var.values)).tobytes())
        return
    row_bytes = max(1, var.dtype.itemsize * int(np.prod(var.shape[1:], dtype=np.int64)))
    step = max(1, _BLOCK_BYTES // row_bytes)
    for start in range(0, var.shape[0], step):
        h.update(np.ascontiguousarray(np.asarray(var[start : start + step].values)).data)


def fingerprint(ds: xr.Dataset) -> str:
    """Hash names, dims, dtypes, shapes and C-order values of all variables (coords included).

    Independent of chunking and codecs: the same decoded values give the same fingerprint.
    Large variables are read in blocks along their first axis, so memory stays bounded.
    """
    h = hashlib.sha256()
    for name in sorted(str(n) for n in ds.variables):
        _update_variable(h, name, ds.variables[name])
    return h.hexdigest()


def plain_numbers(dt: Any, attrs: Mapping[str, Any]) -> bool:
    """Are values of dtype ``dt`` with these attrs stored exactly as xarray decodes them (numeric,
    native byte order, no CF scale/mask/time/bool encoding; a ``_FillValue`` is the caller's to judge)?"""
    if not isinstance(dt, np.dtype) or dt.kind not in "iuf" or not dt.isnative:
        return False
    if _DECODED_ATTRS.intersection(attrs):
        return False
    units = attrs.get("units")
    return not (isinstance(units, str) and ("since" in units or units.strip().lower() in _TIME_UNITS))


def plain_dims(arr: Any) -> tuple[str, ...] | None:
    """The dims of a zarr v3 array whose stored values are exactly what xarray decodes (numeric, no
    CF mask/scale/time/bool encoding, native byte order); None when xarray would transform them."""
    dt = arr.dtype
    attrs = arr.attrs
    if not plain_numbers(dt, attrs):
        return None
    dims = arr.metadata.dimension_names
    if dims is None or len(dims) != len(arr.shape) or any(d is None for d in dims):
        return None
    if "_FillValue" in attrs:
        fill = arr.metadata.fill_value
        if dt.kind != "f" or not (isinstance(fill, float | np.floating) and math.isnan(fill)):
            return None
        if _decode_fill(attrs["_FillValue"], dt) is not True:
            return None
    return tuple(str(d) for d in dims)


def _decode_fill(value: Any, dt: np.dtype) -> bool:
    """Is the ``_FillValue`` attr NaN (xarray stores float fills base64-encoded for zarr v3)?"""
    if isinstance(value, float):
        return math.isnan(value)
    if isinstance(value, str):
        if value.lower() == "nan":
            return True
        import base64

        try:
            raw = base64.standard_b64decode(value)
        except ValueError:
            return False
        for width in (8, 4, 2):
            if len(raw) == width:
                return bool(np.isnan(np.frombuffer(raw, dtype=f"<f{width}")[0]))
    return False


def fingerprint_zarr(
    arrays: Mapping[str, Any],
    read: Callable[[list[tuple[Any, tuple[slice, ...]]]], list[np.ndarray]],
    open_dataset: Callable[[], xr.Dataset],
    read_bytes: int = _READ_BYTES,
) -> str:
    """:func:`fingerprint` of a stored group, reading plain numeric arrays straight from zarr.

    ``arrays``: {name: zarr async array}; ``read([(array, selection), ...])`` returns those blocks
    (one round trip); ``open_dataset()`` opens the group with xarray, used only for variables that
    xarray decodes (strings, times, masks, ...). The hashed byte stream is the one
    :func:`fingerprint` hashes for ``open_dataset()``, so the value is the same. ``read_bytes``:
    about how much one ``read`` fetches (at least one chunk's rows).
    """
    names = sorted(str(n) for n in arrays)
    dims = {n: plain_dims(arrays[n]) for n in names}
    ds: list[xr.Dataset] = []

    def xr_var(name: str) -> xr.Variable:
        if not ds:
            ds.append(open_dataset())
        return ds[0].variables[name]

    # one item per hash update: bytes, or a list of (array, selection) read in one round trip
    def items() -> Iterator[Any]:
        batch: list[tuple[Any, tuple[slice, ...]]] = []
        batch_bytes = 0
        for name in names:
            arr, d = arrays[name], dims[name]
            if d is None:
                if batch:
                    yield batch
                    batch, batch_bytes = [], 0
                yield name  # xarray-decoded variable
                continue
            dt = np.dtype(arr.dtype)
            shape = tuple(arr.shape)
            header = _header(name, d, dt.str, shape)
            if len(shape) == 0:
                batch.append((header, ()))
                batch.append((arr, ()))
                continue
            row_bytes = max(1, dt.itemsize * int(np.prod(shape[1:], dtype=np.int64)))
            total = row_bytes * shape[0]
            if batch and batch_bytes + total > read_bytes:
                yield batch
                batch, batch_bytes = [], 0
            batch.append((header, ()))
            if total <= read_bytes:
                batch.append((arr, (slice(None),)))
                batch_bytes += total
                continue
            chunk0 = int(arr.chunks[0]) if getattr(arr, "chunks", None) else 1
            step = max(chunk0, (read_bytes // row_bytes) // chunk0 * chunk0)
            yield batch
            batch, batch_bytes = [], 0
            for start in range(0, shape[0], step):
                yield [(arr, (slice(start, start + step),))]
        if batch:
            yield batch

    def fetch(item: Any) -> Any:
        if isinstance(item, str):
            return item
        reads = [(a, s) for a, s in item if not isinstance(a, bytes)]
        got = iter(read(reads)) if reads else iter(())
        return [a if isinstance(a, bytes) else next(got) for a, _ in item]

    h = hashlib.sha256()
    with ThreadPoolExecutor(1) as pool:
        it = items()
        nxt = next(it, None)
        pending = pool.submit(fetch, nxt) if nxt is not None else None
        while pending is not None:
            done = pending.result()
            nxt = next(it, None)
            # read the next block while this one is hashed (sha256 and zarr I/O release the GIL)
            pending = pool.submit(fetch, nxt) if nxt is not None else None
            if isinstance(done, str):
                _update_variable(h, done, xr_var(done))
                continue
            for part in done:
                h.update(part if isinstance(part, bytes) else np.ascontiguousarray(part).data)
    return h.hexdigest()
