"""The runtime's epoch store (:mod:`tasks.nn.resume`): a whole step's training state kept in its own
dataset's incomplete entry, so a step killed mid-training goes on from its last epoch on the rerun.

Where: ``<dataset>.zarr/.strata/training/fit-<call>-<slot>``, zarr groups inside the step's own
dataset location, which holds nothing else until the step finishes: the dataset is invisible
(neither complete nor indexed) and writing it whole replaces them. Two slots per fit, used in turn:
a slot is complete only once its last attribute is written, so a kill while saving one leaves the
other, one epoch older. The state of another code version (the step's source hash) is not used.
``strata catalog gc`` removes it with the other leftovers of dead runs.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import xarray as xr

from data_catalog import LINEAGE_ATTR, Storage

__all__ = ["CatalogEpochStore"]


class CatalogEpochStore:
    """Epoch state of the fits of one whole step, at ``uri`` (the step's dataset) in ``storage``;
    ``saved(epoch)`` is called after each epoch is kept (the runtime's fault hook for tests)."""

    def __init__(self, storage: Storage, uri: str, step: str, code: Mapping[str, Any],
                 saved: Callable[[int], None] | None = None):
        self.storage, self.uri, self.step, self.saved = storage, uri, step, saved
        self.failed = False  # a save failed (the disk is full): no more saves
        self.source = str(code.get("source_hash", ""))

    def _slot(self, call: int, slot: int) -> str:
        return f"{self.uri}/.strata/training/fit-{call}-{slot}"

    def _saved(self, call: int) -> list[tuple[int, str, Mapping[str, Any]]]:
        """(epoch, uri, doc) of the complete slots of fit ``call`` from this code, newest first."""
        found = []
        for slot in (0, 1):
            uri = self._slot(call, slot)
            if self.storage.is_complete(uri):
                doc = self.storage.attrs(uri)[LINEAGE_ATTR]
                if doc.get("source_hash") == self.source:
                    found.append((int(doc["meta"]["epoch"]), uri, doc))
        return sorted(found, key=lambda t: t[0], reverse=True)

    def load(self, call: int) -> tuple[dict[str, np.ndarray], dict[str, Any]] | None:
        saved = self._saved(call)
        if not saved:
            return None
        epoch, uri, doc = saved[0]
        with self.storage.open(uri, dask=False) as ds:
            flat = {str(name): np.asarray(ds[name].values) for name in ds.data_vars}
        arrays = {name: flat[dtype][start:start + int(np.prod(shape))].reshape(shape)
                  for name, dtype, shape, start in doc["names"]}
        what = "its finished fit" if doc["meta"]["stopped"] else f"epoch {epoch}"
        warnings.warn(f"step {self.step}: training resumes after {what} (fit {call}), kept by an interrupted run",
                      UserWarning, stacklevel=2)
        return arrays, dict(doc["meta"])

    def save(self, call: int, arrays: Mapping[str, np.ndarray], meta: Mapping[str, Any]) -> None:
        epoch = int(meta["epoch"])
        # one flat array per dtype (a few zarr arrays, not one per tensor: saving costs milliseconds)
        names, parts = [], {}
        for name, a in arrays.items():
            dtype = a.dtype.name
            names.append([name, dtype, list(a.shape), sum(p.size for p in parts.get(dtype, []))])
            parts.setdefault(dtype, []).append(np.ascontiguousarray(a).reshape(-1))
        ds = xr.Dataset({dtype: (f"n_{i}", np.concatenate(p)) for i, (dtype, p) in enumerate(parts.items())})
        if self.failed:
            return
        try:
            self.storage.write(self._slot(call, epoch % 2), ds,
                               {"names": names, "meta": dict(meta), "source_hash": self.source})
        except OSError as exc:  # e.g. a full disk: training goes on, without a state to resume from
            self.failed = True
            warnings.warn(f"step {self.step}: the epoch state could not be kept ({exc.strerror or exc}); training "
                          "goes on, but a kill now restarts it from the start", UserWarning, stacklevel=2)
            return
        if self.saved is not None:
            self.saved(epoch)
