"""Where datasets live: zarr v3 groups under a root (local directory or fsspec URL).

No SQLite here: Dask workers use this module alone to write data, regions and markers. Every
read and write goes through xarray's and zarr's public API.

A complete dataset's group metadata (``zarr.json``) holds zarr's consolidated metadata (every array's
metadata) beside its attrs, lineage and ``strata_complete`` among them: one read opens it, with strata or with
a plain ``xr.open_zarr(uri)``. A region-filled dataset has it from its layout on (its pieces then read one
document, not one per array). Consolidated metadata is not part of the zarr v3 specification yet (zarr warns
when it writes it; that warning is ours, not the user's, and kept off the terminal): a reader without it reads
each array's own ``zarr.json``, which stays as it is.
"""

from __future__ import annotations

import hashlib
import json
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
from .layout import COMPLETE_ATTR, LINEAGE_ATTR, layout_digest, prepare
from .region_layout import RegionLayout

__all__ = ["Storage", "COMPLETE_ATTR", "LINEAGE_ATTR", "prepare", "layout_digest"]


# Region markers live inside the group (the contract: they travel with the data); zarr notes that
# it does not know the `.strata` folder when it lists the group. That note is ours, not the user's.
warnings.filterwarnings("ignore", message=r"Object at \.strata is not recognized")
# What zarr says each time it writes consolidated metadata to a v3 group (filtered around that call only)
_CONSOLIDATED_V3 = r"Consolidated metadata is currently not part in the Zarr format 3 specification"


class Storage(RegionLayout):
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
        if text.split("://", 1)[0] in ("s3", "s3a"):
            # s3fs asks an object's size (a HEAD) before each whole-object GET, to fetch one over 50 MB in
            # concurrent ranges: that doubles the requests of every metadata document and chunk. Zarr already
            # reads a dataset's chunks concurrently; a root of single chunks that large may pass its own value.
            self.storage_options["max_concurrency"] = 1
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
        self._to_zarr(uri, ds)
        fp, parts = fingerprints(ds)
        self.mark_complete(uri, lineage, fp, parts)
        return fp

    def open(self, uri: str, dask: bool = True, consolidated: bool | None = None) -> xr.Dataset:
        """Open lazily: dask-backed, or (``dask=False``) xarray's lazy indexing alone, which reads
        only what is sliced and needs no dask scheduler (nor ``distributed``). The metadata in one read, from
        the consolidated metadata (a dataset of an older root without it: each array's own);
        ``consolidated=False``: each array's own metadata (what ``verify`` checks)."""
        chunks = {} if dask else None
        kwargs = {"chunks": chunks, "zarr_format": 3, **self._zarr_kwargs()}
        if consolidated is not False:
            try:
                return xr.open_zarr(uri, consolidated=True, **kwargs)
            except ValueError:  # zarr: no consolidated metadata
                if consolidated:
                    raise
        return xr.open_zarr(uri, consolidated=False, **kwargs)

    def _to_zarr(self, uri: str, ds: xr.Dataset, **kwargs: Any) -> Any:
        """``ds.to_zarr(uri)`` in place of whatever is there: mode ``w-`` (zarr looks once whether anything is
        there: one listing) and, when something is, mode ``w`` (which clears the group's folder and each
        array's: a few requests per array on an object store)."""
        kwargs = {"consolidated": False, "zarr_format": 3, **kwargs, **self._zarr_kwargs()}
        try:
            return ds.to_zarr(uri, mode="w-", **kwargs)
        except (FileExistsError, zarr.errors.ContainsGroupError, zarr.errors.ContainsArrayError):  # a leftover
            return ds.to_zarr(uri, mode="w", **kwargs)

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
        """Consolidate the metadata (every array's, into the group's ``zarr.json``), then write lineage +
        fingerprint (and each variable's, ``variable_fingerprints``) and ``strata_complete = true`` in one
        last write of that document (after every array's), which keeps the consolidated metadata: the one
        write that says complete also carries the metadata a reader opens it with."""
        g = self.consolidate(uri)
        doc = {**dict(lineage), "fingerprint": fp, **({"variable_fingerprints": dict(parts)} if parts else {})}
        g.update_attributes({LINEAGE_ATTR: doc, COMPLETE_ATTR: True})  # one write (attrs.update: one per key)

    def consolidate(self, uri: str) -> zarr.Group:
        """Write zarr's consolidated metadata of ``uri`` into its group's ``zarr.json`` (its attrs kept), so
        that one read opens it; returns the group, open for writing. Zarr warns that consolidated metadata is
        not in the v3 specification yet: that warning, of this call only, is not shown."""
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=_CONSOLIDATED_V3, category=UserWarning)
            return zarr.consolidate_metadata(self._store(uri), zarr_format=3)

    def is_consolidated(self, uri: str) -> bool:
        """Does the group's metadata hold consolidated metadata (False when there is no group)?"""
        g = self._group(uri)
        return g is not None and g.metadata.consolidated_metadata is not None

    def consolidated_differs(self, uri: str) -> list[str]:
        """The arrays whose metadata in the consolidated metadata is not that of their own ``zarr.json`` (or
        is missing from one of them); none when the group has no consolidated metadata."""
        g = self._group(uri)
        if g is None or g.metadata.consolidated_metadata is None:
            return []
        own = zarr.open_group(self._store(uri), mode="r", zarr_format=3, use_consolidated=False)

        def text(meta: Any) -> str:
            return json.dumps(meta.to_dict(), sort_keys=True, default=str)

        stored = {str(name): text(arr.metadata) for name, arr in own.arrays()}
        listed = {str(name): text(meta) for name, meta in g.metadata.consolidated_metadata.metadata.items()}
        return sorted(n for n in set(stored) | set(listed) if stored.get(n) != listed.get(n))

    def fingerprint(self, uri: str) -> str:
        """Recompute the fingerprint from the stored, decoded values (what ``verify`` compares)."""
        return self.fingerprints(uri)[0]

    def fingerprints(self, uri: str, consolidated: bool | None = None) -> tuple[str, dict[str, str]]:
        """The fingerprint and each variable's, from the stored, decoded values (``consolidated``: see
        :meth:`open`)."""
        with self.open(uri, dask=False, consolidated=consolidated) as ds:
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
        self.drop_layout_claim(uri)

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

    def _store(self, uri: str) -> Any:
        if self.is_local:
            return zarr.storage.LocalStore(uri)
        return zarr.storage.FsspecStore.from_url(uri, storage_options=self.storage_options or None)
