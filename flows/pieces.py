"""The worker side of a step: load the inputs, call the science function, write what it returns.

These functions run wherever the run's executor puts them (in process or on a Dask worker) and
touch storage only, never the SQLite index. What they need travels in one frozen, picklable
:class:`PieceSpec`. Tests make chosen pieces fail through :mod:`flows.faults`.
"""

from __future__ import annotations

import errno
import os
import threading
import warnings
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np
import xarray as xr

from data_catalog import RegionWriter, Storage
from strata_errors import RunError
from tasks.nn.resume import epoch_store

from .faults import maybe_fault, write_fault
from .fpenv import default_fp_env
from .kinds import require as require_kind

__all__ = ["PieceSpec", "Warned", "compute_whole", "compute_pieces", "select_piece", "as_dataset"]

# (category, message) of a warning raised by the science function: sent back to the flow process,
# which shows each once
Warned = tuple[type[Warning], str]


@dataclass(frozen=True)
class PieceSpec:
    """Everything a worker needs to compute (part of) one step's dataset.

    ``inputs``: (uri, fingerprint) of each input dataset, in the function's argument order.
    ``writer``: the region writer of a mapped step (None: the whole dataset is written at ``uri``
    with ``lineage``). ``coord_param``: the parameter that receives the piece's coordinate values.
    """

    step: str
    fn: Callable[..., xr.Dataset]
    params: Mapping[str, Any]
    inputs: tuple[tuple[str, str | None], ...]
    storage: Storage
    uri: str
    lineage: Mapping[str, Any] = field(default_factory=dict)
    writer: RegionWriter | None = None
    coord_param: str | None = None


@contextmanager
def _disk_full_named(uri: str, step: str | None = None) -> Iterator[None]:
    """A full disk (or quota) while writing ``uri``: one line that says so and names the dataset (an ``OSError`` of
    a write may name no file at all). ``step``: named too (a whole step; a piece's failure is named by the step)."""
    try:
        yield
    except OSError as exc:
        if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        msg = f"disk full writing {uri} ({exc.strerror or exc})"
        raise RunError(f"step {step}: {msg}; nothing of it is visible: a rerun with space writes it" if step
                       else msg) from None


@contextmanager
def _warnings_kept(into: list[Warned]) -> Iterator[None]:
    """Collect the warnings raised inside (each distinct one once) instead of printing them here."""
    with warnings.catch_warnings(record=True) as caught:
        yield
    for w in caught:
        item = (w.category, str(w.message))
        if item not in into:
            into.append(item)


# -- inputs, loaded once per process ---------------------------------------------------------------
# A complete dataset never changes (same uri + fingerprint = same values), so each worker process
# keeps the inputs it loaded and the pieces of a mapped step do not reread the same model and
# geometry every time. Least recently used entries are dropped beyond the budget. Kept arrays are
# made read-only: a step function must not modify its inputs (it gets an error if it tries).
_CACHE_BYTES = int(float(os.environ.get("STRATA_INPUT_CACHE_MB", "512")) * 2**20)
_SLICED_WHOLE_BYTES = 32 * 2**20  # an input sliced by the piece is kept whole only when this small
_cache: OrderedDict[tuple[str, str], xr.Dataset] = OrderedDict()
_cache_lock = threading.Lock()


def _input(storage: Storage, uri: str, fingerprint: str | None, dim: str | None) -> tuple[xr.Dataset, bool]:
    """(the input at ``uri``, kept): this process's in-memory copy, loaded on first use; or, when
    too big to keep, opened lazily."""
    key = (uri, fingerprint or "")
    with _cache_lock:
        if fingerprint and key in _cache:
            _cache.move_to_end(key)
            return _cache[key], True
        lazy = storage.open(uri, dask=False)  # reads only what is selected, no dask graph
        limit = min(_CACHE_BYTES, _SLICED_WHOLE_BYTES) if dim in lazy.dims else _CACHE_BYTES
        if not fingerprint or lazy.nbytes > limit:
            return lazy, False
        ds = lazy.load()
        lazy.close()
        for var in ds.variables.values():
            if isinstance(var.data, np.ndarray):
                var.data.flags.writeable = False
        _cache[key] = ds
        while len(_cache) > 1 and sum(d.nbytes for d in _cache.values()) > _CACHE_BYTES:
            _cache.popitem(last=False)
        return ds, True


def select_piece(ds: xr.Dataset, dim: str, labels: np.ndarray) -> xr.Dataset:
    """``ds.sel({dim: labels})`` with attrs of its own (a piece may set them; the input is shared)."""
    out = ds.sel({dim: labels})
    out.attrs = dict(out.attrs)
    return out


def _load_inputs(spec: PieceSpec, dim: str | None = None, labels: np.ndarray | None = None) -> list[xr.Dataset]:
    """Every input, in memory; inputs having the mapped ``dim`` sliced to ``labels``."""
    out = []
    for uri, fp in spec.inputs:
        ds, kept = _input(spec.storage, uri, fp, dim)
        if dim is not None and dim in ds.dims:
            ds = select_piece(ds, dim, labels)
        elif kept:
            ds = ds.copy(deep=False)  # a piece may set its own attrs
        out.append(ds if kept else ds.load())
    return out


def as_dataset(out: Any, step: str) -> xr.Dataset:
    """The result as a dataset: an ``xr.Dataset``, or a trained network (``tasks.nn.checkpoint.Trained``,
    converted to its checkpoint dataset; torch is imported only then)."""
    if isinstance(out, xr.Dataset):
        return out
    from tasks.nn.checkpoint import Trained, to_dataset

    if isinstance(out, Trained):
        return to_dataset(out)
    raise RunError(f"step {step} returned {type(out).__name__}, not an xarray.Dataset nor a Trained network")


# -- the work (each piece in the default floating-point environment, whatever its thread ran before: fpenv.py) --
@default_fp_env()
def compute_whole(spec: PieceSpec) -> list[Warned]:
    """Run the function and write the whole dataset (complete when this returns)."""
    import dask

    kept: list[Warned] = []
    maybe_fault(spec.step, 0)
    from .epochs import CatalogEpochStore

    store = CatalogEpochStore(spec.storage, spec.uri, spec.step, spec.lineage.get("code", {}),
                              saved=partial(maybe_fault, f"{spec.step}.epoch"))  # STRATA_FAULT=<step>.epoch:<n>:kill
    with _warnings_kept(kept), dask.config.set(scheduler="synchronous"), epoch_store(store):
        out = as_dataset(spec.fn(*_load_inputs(spec), **spec.params), spec.step)
    require_kind(out, spec.lineage.get("kind", ""), spec.step)
    with _disk_full_named(spec.uri, spec.step), write_fault(spec.step, 0):
        spec.storage.write(spec.uri, out, spec.lineage)
    return kept


def compute_pieces(spec: PieceSpec, indices: Sequence[int]) -> list[Warned]:
    """One task: the regions ``indices`` of a mapped step, one after the other, each computed by one
    call of the function and written (region, then its marker) before the next starts. A region
    whose marker exists is skipped (a retried task redoes only what it did not finish)."""
    kept: list[Warned] = []
    for index in indices:
        if spec.writer.laid_out() and spec.writer.done(index):
            continue
        compute_piece(spec, index, kept)
    return kept


@default_fp_env()
def compute_piece(spec: PieceSpec, index: int, kept: list[Warned]) -> None:
    """Run the function on region ``index`` and write it (and its marker); the first piece to finish
    lays the dataset out (:meth:`~data_catalog.RegionWriter.ensure_layout`)."""
    import dask

    maybe_fault(spec.step, index)
    writer = spec.writer
    labels = writer.labels(index)
    params = dict(spec.params)
    if spec.coord_param:
        params[spec.coord_param] = labels
    with _warnings_kept(kept), dask.config.set(scheduler="synchronous"):
        out = as_dataset(spec.fn(*_load_inputs(spec, writer.dim, labels), **params), spec.step)
    if writer.dim not in out.dims or not np.array_equal(np.asarray(out[writer.dim].values), labels):
        raise RunError(f"step {spec.step} piece {index}: the result must have dim {writer.dim!r} "
                       f"with the piece's coordinates {labels.tolist()[:5]}...")
    require_kind(out, spec.lineage.get("kind", ""), f"{spec.step} piece {index}")
    with _disk_full_named(writer.uri):
        try:
            writer.ensure_layout(out)
        except (ValueError, TimeoutError) as exc:
            raise RunError(f"step {spec.step} piece {index}: {exc}") from None
        with write_fault(spec.step, index):
            writer.write(index, out)
