"""Where datasets live: zarr v3 groups under a root (local directory or fsspec URL).

No SQLite here: Dask workers use this module alone to write data, regions and markers. Every
read and write goes through xarray's and zarr's public API.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import fsspec
import numpy as np
import xarray as xr
import zarr

from .fingerprint import fingerprints
from .keys import check_name
from .layout import COMPLETE_ATTR, LINEAGE_ATTR, check_aligned, layout_digest, prepare, region_compressors

__all__ = ["Storage", "COMPLETE_ATTR", "LINEAGE_ATTR", "prepare", "layout_digest"]

_MARKERS = ".strata/regions"
_TEMPLATE_MARKER = ".strata/template"
_LAYOUT_CLAIM = ".layout-claim"  # a sibling of the group: laying the group out must not delete it

# Region markers live inside the group (the contract: they travel with the data); zarr notes that
# it does not know the `.strata` folder when it lists the group. That note is ours, not the user's.
warnings.filterwarnings("ignore", message=r"Object at \.strata is not recognized")


class Storage:
    """A data root: ``<root>/datasets/<kind>/<key>.zarr`` plus small marker objects."""

    def __init__(self, root: str | os.PathLike, storage_options: Mapping[str, Any] | None = None):
        text = str(root)
        self.is_local = "://" not in text or text.startswith("file://")
        if self.is_local:
            text = str(Path(text.removeprefix("file://")).expanduser().resolve())
        self.root = text.rstrip("/")
        # no listings cache: other processes and hosts write markers and groups (s3fs would answer from its
        # cache that they do not exist). Endpoint and credentials come from the standard variables (e.g.
        # AWS_ENDPOINT_URL, AWS_PROFILE) and never enter the root, a key or lineage.
        self.storage_options = {} if self.is_local else {"use_listings_cache": False}
        self.storage_options.update(storage_options or {})
        if self.is_local:
            self.fs: fsspec.AbstractFileSystem = fsspec.filesystem("file", auto_mkdir=True)
            self._base = self.root
        else:
            self.fs, self._base = fsspec.core.url_to_fs(self.root, **self.storage_options)
        protocols = self.fs.protocol if isinstance(self.fs.protocol, tuple) else (self.fs.protocol,)
        # other hosts may write this root at once (an object store; not a directory, not this process's memory)
        self.shared = not self.is_local and "memory" not in protocols

    def __repr__(self) -> str:
        return f"Storage({self.root!r})"

    # -- paths -------------------------------------------------------------------------------
    def uri(self, kind: str, key: str) -> str:
        """The dataset's location as users see it (path or URL); a kind or key that could leave the root: InputError."""
        return f"{self.root}/datasets/{check_name(kind, 'kind')}/{check_name(key, 'key')}.zarr"

    def path(self, uri: str) -> str:
        """``uri`` as a path of :attr:`fs` (the protocol stripped)."""
        if self.is_local:
            return uri
        return self._base + uri[len(self.root):] if uri.startswith(self.root) else uri

    def _zarr_kwargs(self) -> dict[str, Any]:
        return {} if self.is_local else {"storage_options": self.storage_options or None}

    def cache_dir(self) -> Path:
        """Local directory for the SQLite index, event log and Prefect home of this root."""
        if self.is_local:
            return Path(self.root)
        base = Path(os.environ.get("STRATA_CACHE_DIR") or Path.home() / ".cache" / "strata")
        return base / hashlib.sha256(self.root.encode()).hexdigest()[:16]

    def iter_groups(self) -> Iterator[str]:
        """Yield the uri of every ``<kind>/<key>.zarr`` group under ``datasets/``."""
        base = f"{self._base}/datasets"
        if not self.fs.exists(base):
            return
        for kind_dir in sorted(self.fs.ls(base, detail=False)):
            for entry in sorted(self.fs.ls(kind_dir, detail=False)):
                if entry.endswith(".zarr"):
                    yield entry if self.is_local else f"{self.root}{entry[len(self._base):]}"

    # -- whole datasets ----------------------------------------------------------------------
    def write(self, uri: str, ds: xr.Dataset, lineage: Mapping[str, Any]) -> str:
        """Write ``ds`` at ``uri`` (replacing any incomplete leftover), then mark it complete.

        Returns the fingerprint. The completion attribute is written last.
        """
        ds = prepare(ds)
        ds.to_zarr(uri, mode="w", consolidated=False, zarr_format=3, **self._zarr_kwargs())
        fp, parts = fingerprints(ds)
        self.mark_complete(uri, lineage, fp, parts)
        return fp

    def open(self, uri: str, dask: bool = True) -> xr.Dataset:
        """Open lazily: dask-backed, or (``dask=False``) xarray's lazy indexing alone, which reads
        only what is sliced and needs no dask scheduler (nor ``distributed``)."""
        chunks = {} if dask else None
        return xr.open_zarr(uri, chunks=chunks, consolidated=False, zarr_format=3, **self._zarr_kwargs())

    def _group(self, uri: str, mode: str = "r") -> zarr.Group | None:
        try:
            return zarr.open_group(self._store(uri), mode=mode, zarr_format=3)
        except (FileNotFoundError, zarr.errors.GroupNotFoundError, KeyError):
            return None

    def attrs(self, uri: str) -> dict[str, Any]:
        """Group attrs, or {} when there is no group."""
        g = self._group(uri)
        return {} if g is None else dict(g.attrs)

    def is_complete(self, uri: str) -> bool:
        return bool(self.attrs(uri).get(COMPLETE_ATTR))

    def mark_complete(self, uri: str, lineage: Mapping[str, Any], fp: str,
                      parts: Mapping[str, str] | None = None) -> None:
        """Write lineage + fingerprint (and each variable's, ``variable_fingerprints``) and
        ``strata_complete = true``, in one last update of the group's metadata (after every array's)."""
        g = zarr.open_group(self._store(uri), mode="r+", zarr_format=3)
        doc = {**dict(lineage), "fingerprint": fp, **({"variable_fingerprints": dict(parts)} if parts else {})}
        g.attrs.update({LINEAGE_ATTR: doc, COMPLETE_ATTR: True})

    def fingerprint(self, uri: str) -> str:
        """Recompute the fingerprint from the stored, decoded values (what ``verify`` compares)."""
        return self.fingerprints(uri)[0]

    def fingerprints(self, uri: str) -> tuple[str, dict[str, str]]:
        """The fingerprint and each variable's, from the stored, decoded values."""
        with self.open(uri, dask=False) as ds:
            return fingerprints(ds)

    def values(self, uri: str, name: str) -> np.ndarray | None:
        """The decoded values of one variable (a dim without a coordinate: its positions), or None
        when the dataset has neither."""
        with self.open(uri, dask=False) as ds:
            return np.asarray(ds[name].values) if name in ds.variables or name in ds.dims else None

    def delete(self, uri: str) -> None:
        """Remove a dataset: its group metadata (which marks it complete) first, so a removal cut short leaves
        what no run adopts, only an incomplete leftover."""
        path = self.path(uri)
        if self.fs.exists(f"{path}/zarr.json"):
            self.fs.rm(f"{path}/zarr.json")
        if self.fs.exists(path):
            self.fs.rm(path, recursive=True)
        if self.fs.exists(path + _LAYOUT_CLAIM):
            self.fs.rm(path + _LAYOUT_CLAIM)

    def variables(self, uri: str) -> dict[str, dict[str, Any]]:
        """{name: {dims, shape, chunks, dtype, units}} for ``catalog show`` (metadata only)."""
        g = zarr.open_group(self._store(uri), mode="r", zarr_format=3)
        out: dict[str, dict[str, Any]] = {}
        for name, arr in sorted(g.arrays()):
            dims = list(arr.metadata.dimension_names or [])
            out[str(name)] = {
                "dims": [str(d) for d in dims],
                "shape": list(arr.shape),
                "chunks": list(arr.chunks),
                "dtype": "str" if arr.dtype.kind in "OUST" else str(arr.dtype),
                "units": arr.attrs.get("units"),
            }
        return out

    # -- regions -----------------------------------------------------------------------------
    def create_template(self, uri: str, piece: xr.Dataset, region_dim: str, coord: np.ndarray,
                        chunk: int) -> None:
        """Lay out the full dataset, shaped like ``piece`` but ``len(coord)`` long along
        ``region_dim`` and chunked ``chunk`` along it: metadata, the region dim's coordinate and
        the variables without that dim; no chunk of a region variable is written. Then the
        template marker (a killed layout leaves none)."""
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
        tmpl.to_zarr(uri, mode="w", compute=False, consolidated=False, zarr_format=3, encoding=encoding,
                     **self._zarr_kwargs())
        self.fs.pipe_file(f"{self.path(uri)}/{_TEMPLATE_MARKER}", layout_digest(piece, region_dim).encode())

    def claim_layout(self, uri: str) -> bool:
        """Claim the right to lay out ``uri`` (True for one caller only, until :meth:`reset_layout`): the
        claim is an exclusive create, so pieces computed at once on different workers never both lay out.
        On S3 that is a put with ``If-None-Match: *`` (AWS since 2024, MinIO, moto); a store that ignores
        the header lets a second claim win too, and the template marker then decides."""
        path = self.path(uri) + _LAYOUT_CLAIM
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

    def reset_layout(self, uri: str) -> None:
        """Remove what a run that died while laying out ``uri`` left (no template marker: nothing of it
        counts), and its layout claim; a laid-out dataset is left as it is."""
        if not self.template_ready(uri):
            self.delete(uri)

    def layout_of(self, uri: str) -> str:
        """The layout digest (:func:`layout_digest`) of the piece that laid ``uri`` out."""
        return self.fs.cat_file(f"{self.path(uri)}/{_TEMPLATE_MARKER}").decode().strip()

    def template_ready(self, uri: str) -> bool:
        """Was the region template written to the end?"""
        return self.fs.exists(f"{self.path(uri)}/{_TEMPLATE_MARKER}")

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
        return self.fs.exists(self._marker(uri, index))

    def regions_done(self, uri: str) -> set[int]:
        try:
            names = self.fs.ls(f"{self.path(uri)}/{_MARKERS}", detail=False)
        except FileNotFoundError:
            return set()
        return {int(n.rstrip("/").rsplit("/", 1)[-1]) for n in names if n.rsplit("/", 1)[-1].isdigit()}

    def _store(self, uri: str) -> Any:
        if self.is_local:
            return zarr.storage.LocalStore(uri)
        return zarr.storage.FsspecStore.from_url(uri, storage_options=self.storage_options or None)
