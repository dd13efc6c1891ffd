"""The region-filled half of :class:`data_catalog.storage.Storage`: laying a dataset out from its first piece,
the exclusive layout claim, region writes and their markers (a mixin: the methods use the storage's ``fs``,
``path``, ``_store``, ``_group`` and its constants)."""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import xarray as xr
import zarr

from .layout import check_aligned, layout_digest, prepare, region_compressors

__all__ = ["RegionLayout", "LAYOUT_CLAIM"]

_MARKERS = ".strata/regions"
_TEMPLATE_MARKER = ".strata/template"
LAYOUT_CLAIM = ".layout-claim"  # a sibling of the group: laying the group out must not delete it


class RegionLayout:
    """Region layout and writes, mixed into :class:`~data_catalog.storage.Storage`."""

    # -- regions -----------------------------------------------------------------------------
    def create_template(self, uri: str, piece: xr.Dataset, region_dim: str, coord: np.ndarray,
                        chunk: int) -> None:
        """Lay out the full dataset, shaped like ``piece`` but ``len(coord)`` long along
        ``region_dim`` and chunked ``chunk`` along it: metadata, the region dim's coordinate and
        the variables without that dim; no chunk of a region variable is written. Then its consolidated
        metadata (no piece changes the metadata: each reads the layout in one document), then the template
        marker (a killed layout leaves none)."""
        import dask.array as da

        piece = prepare(piece)
        n = len(coord)
        encoding: dict[str, dict[str, Any]] = {}
        variables: dict[str, xr.Variable] = {}
        for name, var in piece.variables.items():
            if name == region_dim:
                continue
            if region_dim not in var.dims:
                variables[str(name)] = var
                continue
            shape = tuple(n if d == region_dim else s for d, s in zip(var.dims, var.shape, strict=True))
            chunks = tuple(chunk if d == region_dim else s for d, s in zip(var.dims, var.shape, strict=True))
            variables[str(name)] = xr.Variable(var.dims, da.zeros(shape, dtype=var.dtype, chunks=chunks),
                                               attrs=var.attrs)
            encoding[str(name)] = {"chunks": chunks}
            if var.dtype.kind in "iuf":
                encoding[str(name)]["compressors"] = region_compressors()
        dim_attrs = piece[region_dim].attrs if region_dim in piece.coords else {}
        coords = {region_dim: xr.Variable(region_dim, np.asarray(coord), dim_attrs)}
        coords.update({k: v for k, v in variables.items() if k not in piece.data_vars})
        tmpl = xr.Dataset({k: v for k, v in variables.items() if k in piece.data_vars}, coords=coords,
                          attrs=piece.attrs)
        self._to_zarr(uri, tmpl, compute=False, encoding=encoding)
        self.consolidate(uri)  # each piece then reads the layout in one document (no piece changes it)
        self.fs.pipe_file(f"{self.path(uri)}/{_TEMPLATE_MARKER}", layout_digest(piece, region_dim).encode())

    def claim_layout(self, uri: str) -> bool:
        """Claim the right to lay out ``uri`` (True for one caller only, until :meth:`reset_layout`): the
        claim is an exclusive create, so pieces computed at once on different workers never both lay out.
        On S3 that is a put with ``If-None-Match: *`` (AWS since 2024, MinIO, moto); a store that ignores
        the header lets a second claim win too, and the template marker then decides."""
        path = self.path(uri) + LAYOUT_CLAIM
        try:
            if self.is_local:
                os.makedirs(os.path.dirname(path), exist_ok=True)
                os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
            else:
                with self.fs.open(path, "xb") as f:  # an exclusive create where the store supports it
                    f.write(b"claimed\n")
        except FileExistsError:
            return False
        return True

    def drop_layout_claim(self, uri: str) -> None:
        """Remove the layout claim of a laid-out dataset (its template marker decides from then on), so that a
        finished dataset leaves nothing beside it."""
        path = self.path(uri) + LAYOUT_CLAIM
        try:
            os.remove(path) if self.is_local else self.fs.rm_file(path)
        except FileNotFoundError:
            pass

    def reset_layout(self, uri: str) -> None:
        """Remove what a run that died while laying out ``uri`` left (no template marker: nothing of it
        counts), and its layout claim; a laid-out dataset is left as it is."""
        if not self.template_ready(uri):
            self.delete(uri)

    def layout_of(self, uri: str) -> str:
        """The layout digest (:func:`layout_digest`) of the piece that laid ``uri`` out."""
        return self.fs.cat_file(f"{self.path(uri)}/{_TEMPLATE_MARKER}").decode().strip()

    def laid_out_as(self, uri: str) -> str | None:
        """:meth:`layout_of`, or None while ``uri`` is not laid out (no template marker): one read."""
        try:
            return self.layout_of(uri)
        except FileNotFoundError:
            return None

    def template_ready(self, uri: str) -> bool:
        """Was the region template written to the end?"""
        return self._is_file(f"{self.path(uri)}/{_TEMPLATE_MARKER}")

    def _is_file(self, path: str) -> bool:
        """Is there an object at ``path``? On an object store one request whatever the answer (``exists``
        asks for a folder of that name too when there is none)."""
        if self.is_local:
            return self.fs.exists(path)
        try:
            self.fs.cat_file(path)  # a marker: a few bytes
        except FileNotFoundError:
            return False
        return True

    def write_region(self, uri: str, index: int, piece: xr.Dataset, region_dim: str, chunk: int) -> None:
        """Write ``piece`` from chunk ``index`` on (chunk-aligned along ``region_dim``; it may span
        several chunks), then one marker per chunk it covers.

        Numeric variables are stored exactly as xarray would store them (no CF encoding: their
        encodings are dropped), so they are written straight into their zarr arrays, which costs
        about half of ``to_zarr(region=…)``; anything xarray encodes (strings, bools, times) goes
        through ``to_zarr(region=…)``."""
        start = index * chunk
        stop = start + piece.sizes[region_dim]
        piece = prepare(piece)
        region = [n for n, v in piece.variables.items() if region_dim in v.dims and n != region_dim]
        numeric = [n for n in region if piece.variables[n].dtype.kind in "iuf"]
        group = zarr.open_group(self._store(uri), mode="r+", zarr_format=3)
        arrays = {name: group[str(name)] for name in region}
        for name, arr in arrays.items():  # every check before the first byte is written
            var = piece.variables[name]
            axis = var.dims.index(region_dim)
            want = tuple(stop - start if i == axis else n for i, n in enumerate(arr.shape))
            if tuple(arr.metadata.dimension_names or ()) != tuple(map(str, var.dims)) or var.shape != want:
                raise ValueError(f"{name}: a piece of dims {var.dims} and shape {var.shape} does not fit the "
                                 f"stored {tuple(arr.metadata.dimension_names or ())} {want}")
            check_aligned(uri, str(name), region_dim, start, stop, arr.shape[axis], (arr.shards or arr.chunks)[axis])
        for name in numeric:
            var = piece.variables[name]
            axis = var.dims.index(region_dim)
            arrays[name][tuple(slice(start, stop) if i == axis else slice(None) for i in range(var.ndim))] = var.values
        rest = [n for n in region if n not in numeric]
        if rest:
            sub = piece[rest]
            sub.drop_vars([n for n in sub.variables if n not in rest]).to_zarr(
                uri, region={region_dim: slice(start, stop)}, mode="r+", consolidated=False, zarr_format=3,
                **self._zarr_kwargs())
        for i in range(index, index + -(-(stop - start) // chunk)):
            self.fs.pipe_file(self._marker(uri, i), b"done\n")

    def _marker(self, uri: str, index: int) -> str:
        return f"{self.path(uri)}/{_MARKERS}/{index}"

    def region_done(self, uri: str, index: int) -> bool:
        """Does region ``index`` have its marker (its chunks are all written)?"""
        return self._is_file(self._marker(uri, index))

    def regions_done(self, uri: str) -> set[int]:
        try:
            names = self.fs.ls(f"{self.path(uri)}/{_MARKERS}", detail=False)
        except FileNotFoundError:
            return set()
        return {int(n.rstrip("/").rsplit("/", 1)[-1]) for n in names if n.rsplit("/", 1)[-1].isdigit()}

