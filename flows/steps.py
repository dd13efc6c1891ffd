"""The step wrapper: a pure ``tasks/`` function becomes a cached, lineage-recording Prefect task.

``Step(...)(*input_refs, **params)`` inside a study flow computes the dataset key; a complete
dataset with that key is reused, otherwise the step runs as one Prefect task (in the flow's
process) whose work — the function, and the writing of its zarr group, whole or region by region
for a mapped step — runs on the run's Dask cluster (or in process); the result is indexed with
lineage.
Catalog (SQLite) writes happen here, in the flow process; tasks on workers touch storage only.
"""

from __future__ import annotations

import hashlib
import os
import signal
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from data_catalog import LINEAGE_ATTR, Storage, canonical, make_key, now_iso
from strata_errors import InputError, RunError, StrataError

if TYPE_CHECKING:
    from .study import StudyRun

__all__ = ["Ref", "Step", "source_hash", "module_source_hash", "function_name"]


@dataclass(frozen=True)
class Ref:
    """What passes between steps: a small reference, never the arrays."""

    key: str
    uri: str
    kind: str
    step: str
    fingerprint: str | None = None

    @classmethod
    def of(cls, rec: Any) -> Ref:
        """The reference to a catalog record."""
        return cls(rec.key, rec.uri, rec.kind, rec.step, rec.fingerprint)


@dataclass(frozen=True)
class Step:
    """A named, versioned producer of one kind of dataset.

    ``map_over``: the output dim filled region by region (one task per ``chunk`` of it); inputs
    having that dim are sliced to the piece; the full coordinate is the param ``coord_param``
    if given (and the piece's slice of it is passed in its place), else the first input's.
    """

    name: str
    fn: Callable[..., Any]
    version: str
    kind: str
    map_over: str | None = None
    coord_param: str | None = None
    retries: int = 0

    def __call__(self, *inputs: Ref, chunk: int | None = None, per_task: int = 1, label: str | None = None,
                 **params: Any) -> Ref:
        """Reuse or compute the dataset. Mapped steps: ``chunk`` entries of ``map_over`` per zarr
        chunk (enters the key), ``per_task`` chunks per task (a runtime choice: coarser tasks
        spread the scheduler's per-task cost; resumption stays per chunk)."""
        from .study import current_run

        return current_run().run_step(self, inputs, params, chunk=chunk, label=label, per_task=per_task)

    def key(self, inputs: Sequence[Ref], params: Mapping[str, Any], chunk: int | None) -> str:
        doc = dict(canonical(params))
        if self.map_over:
            doc["_region"] = {"dim": self.map_over, "chunk": chunk}
        return make_key(self.name, self.version, doc, [r.key for r in inputs])


def function_name(fn: Callable[..., Any]) -> str:
    return f"{fn.__module__}:{fn.__qualname__}"


def module_source_hash(module: str) -> str | None:
    """sha256 (16 hex) of a module's source file, or None when it can no longer be found."""
    import importlib.util

    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.origin:
        return None
    with open(spec.origin, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()[:16]


def source_hash(fn: Callable[..., Any]) -> str | None:
    """The source hash recorded for a step's function: its module's file (``catalog stale`` compares)."""
    return module_source_hash(fn.__module__)


# -- fault injection -----------------------------------------------------------------------------
def maybe_fault(step: str, piece: int) -> None:
    """Honour ``STRATA_FAULT=<step>:<piece>:<raise|kill>`` (tests hit a chosen point)."""
    spec = os.environ.get("STRATA_FAULT")
    if not spec:
        return
    try:
        name, idx, action = spec.rsplit(":", 2)
        idx_i = int(idx)
    except ValueError:
        raise InputError(f"STRATA_FAULT={spec!r}: expected <step>:<piece>:<raise|kill>") from None
    if name != step or idx_i != piece:
        return
    if action == "kill":
        os.killpg(os.getpgrp(), signal.SIGKILL)
    if action == "raise":
        raise RuntimeError(f"injected fault at {step}:{piece}")
    raise InputError(f"STRATA_FAULT action must be raise or kill, not {action!r}")


# -- inputs, loaded once per process ----------------------------------------------------------------
# A complete dataset never changes (same uri + fingerprint = same values), so each worker process
# keeps the inputs it loaded, and the pieces of a mapped step do not reopen and reread the same
# model and geometry every time. Least recently used entries are dropped beyond the budget; an
# input sliced by the piece is kept whole only when small, otherwise each piece reads its slice.
_CACHE_BYTES = int(float(os.environ.get("STRATA_INPUT_CACHE_MB", "512")) * 2**20)
_SLICED_WHOLE_BYTES = 32 * 2**20
_cache: OrderedDict[tuple[str, str], Any] = OrderedDict()
_cache_lock = threading.Lock()


def _input(storage: Storage, uri: str, fingerprint: str | None, dim: str | None):
    """The input at ``uri``: a shallow copy of this process's in-memory copy (arrays read-only),
    loaded on first use; or, when it is too big to keep, opened lazily. An input having the
    mapped ``dim`` is kept whole only when small (each piece reads its slice otherwise)."""
    key = (uri, fingerprint or "")
    with _cache_lock:
        if fingerprint and key in _cache:
            _cache.move_to_end(key)
            return _cache[key].copy(deep=False)  # a task may set its own attrs
        lazy = storage.open(uri, dask=False)  # reads only what is selected, no dask graph
        limit = min(_CACHE_BYTES, _SLICED_WHOLE_BYTES) if dim in lazy.dims else _CACHE_BYTES
        if not fingerprint or lazy.nbytes > limit:
            return lazy
        ds = lazy.load()
        lazy.close()
        for var in ds.variables.values():
            if isinstance(var.data, np.ndarray):
                var.data.flags.writeable = False  # shared by later pieces: a task must not edit it
        _cache[key] = ds
        while len(_cache) > 1 and sum(d.nbytes for d in _cache.values()) > _CACHE_BYTES:
            _cache.popitem(last=False)
        return ds.copy(deep=False)


def _load_inputs(storage: Storage, spec: Mapping[str, Any], part: np.ndarray | None = None) -> list:
    """Every input loaded in memory; with ``part``, inputs having the mapped dim are sliced to it."""
    dim = spec["map_over"] if part is not None else None
    fps = spec.get("input_fingerprints") or [None] * len(spec["inputs"])
    out = []
    for uri, fp in zip(spec["inputs"], fps, strict=True):
        ds = _input(storage, uri, fp, dim)
        if dim is not None and dim in ds.dims:
            ds = ds.sel({dim: part})
        out.append(ds.load())
    return out


# -- work done by tasks (on any worker) -------------------------------------------------------------
def compute_whole(spec: Mapping[str, Any]) -> str:
    """Run the function and write the whole dataset (complete when this returns)."""
    import dask

    maybe_fault(spec["step"], 0)
    storage = Storage(spec["root"], spec["storage_options"])
    with dask.config.set(scheduler="synchronous"):
        inputs = _load_inputs(storage, spec)
        out = spec["fn"](*inputs, **spec["params"])
        _check_dataset(out, spec)
        return storage.write(spec["uri"], out, spec["lineage"])


def compute_pieces(spec: Mapping[str, Any], indices: Sequence[int], make_template: bool,
                   after: Any = None) -> list[int]:
    """One task: the chunks ``indices`` of a mapped step, one after the other, each computed by
    one call of the function and written (region, then its marker) before the next starts.
    ``after``: ignored (the result of the task that laid out the dataset, to run after it)."""
    for n, index in enumerate(indices):
        compute_piece(spec, index, make_template and n == 0)
    return list(indices)


def compute_piece(spec: Mapping[str, Any], index: int, make_template: bool) -> None:
    """Run the function on chunk ``index`` and write its region and marker."""
    import dask

    maybe_fault(spec["step"], index)
    dim, chunk = spec["map_over"], spec["chunk"]
    coord = np.asarray(spec["coord"])
    part = coord[index * chunk : (index + 1) * chunk]
    storage = Storage(spec["root"], spec["storage_options"])
    params = dict(spec["params"])
    if spec["coord_param"]:
        params[spec["coord_param"]] = part
    with dask.config.set(scheduler="synchronous"):
        inputs = _load_inputs(storage, spec, part)
        out = spec["fn"](*inputs, **params)
    _check_dataset(out, spec)
    if dim not in out.dims or not np.array_equal(np.asarray(out[dim].values), part):
        raise RunError(f"step {spec['step']} piece {index}: the result must have dim {dim!r} "
                       f"with the piece's coordinates {part.tolist()[:5]}...")
    if make_template:
        storage.create_template(spec["uri"], out, dim, coord, chunk)
    storage.write_region(spec["uri"], index, out, dim, chunk)


def _check_dataset(out: Any, spec: Mapping[str, Any]) -> None:
    import xarray as xr

    if not isinstance(out, xr.Dataset):
        raise RunError(f"step {spec['step']} returned {type(out).__name__}, not an xarray.Dataset")


# -- the flow-process side ---------------------------------------------------------------------------
def execute(run: StudyRun, step: Step, inputs: Sequence[Ref], params: Mapping[str, Any],
            chunk: int | None, label: str | None, per_task: int = 1) -> Ref:
    """Reuse or compute one step (called by ``StudyRun.run_step``)."""
    if step.map_over and not chunk:
        raise InputError(f"step {step.name} is mapped over {step.map_over!r}: give chunk=")
    if per_task < 1:
        raise InputError(f"step {step.name}: per_task must be ≥ 1, got {per_task}")
    for r in inputs:
        if not isinstance(r, Ref):
            raise TypeError(f"step {step.name}: inputs must be Refs, got {type(r).__name__}")
    key = step.key(inputs, params, chunk)
    t0 = time.perf_counter()
    cat = run.catalog
    rec = cat.claim(key, run.owner, step.kind, step.name, step.version)
    if rec is not None:
        ref = Ref.of(rec)
        run.record(step, ref, "reused", time.perf_counter() - t0, label)
        return ref
    uri = cat.storage.uri(step.kind, key)
    step_run_id = str(uuid.uuid4())
    lineage = {
        "key": key, "kind": step.kind, "step": step.name, "version": step.version,
        "params": canonical(params), "inputs": [r.key for r in inputs],
        "input_fingerprints": {r.key: r.fingerprint for r in inputs},
        "run_id": step_run_id, "flow_run_id": run.flow_run_id, "study": run.study,
        "preset": run.preset, "overrides": list(run.overrides),
        "code": {**run.code, "source_hash": source_hash(step.fn), "function": function_name(step.fn),
                 "version": step.version},
        "created": now_iso(), "packages": run.packages,
    }
    spec = {"root": cat.root, "storage_options": cat.storage.storage_options, "fn": step.fn,
            "inputs": [r.uri for r in inputs], "input_fingerprints": [r.fingerprint for r in inputs],
            "params": dict(params), "lineage": lineage,
            "uri": uri, "step": step.name, "map_over": step.map_over, "chunk": chunk,
            "coord_param": step.coord_param, "per_task": per_task}
    run.emit("START", step, step_run_id, inputs, uri, lineage)
    try:
        with run.status(f"{step.name} {label or ''}"):
            rec = _compute(run, step, spec, inputs, params)
    except BaseException as exc:
        cat.release(key, run.owner)
        run.emit("FAIL", step, step_run_id, inputs, uri, lineage, error=str(exc))
        if isinstance(exc, StrataError):
            raise
        if isinstance(exc, Exception):
            raise RunError(f"step {step.name} ({label or key}) failed: {exc}") from exc
        raise
    run.emit("COMPLETE", step, step_run_id, inputs, uri, lineage)
    ref = Ref.of(rec)
    run.record(step, ref, "computed", time.perf_counter() - t0, label)
    return ref


def _compute(run: StudyRun, step: Step, spec: dict, inputs: Sequence[Ref], params: Mapping[str, Any]):
    """The step as one Prefect task run in this (the flow's) process, whose work runs on the
    run's executor (:func:`_dispatch`); index the finished dataset."""
    from prefect import task
    from prefect.cache_policies import NO_CACHE

    cat = run.catalog
    opts = {"cache_policy": NO_CACHE, "persist_result": False}
    if step.map_over is None:

        def whole() -> None:
            failures = _dispatch(compute_whole, [(spec,)], step.name, step.retries, lambda i: None)
            if failures:
                raise failures[0][1]

        task(whole, name=step.name, **opts)()
        return cat.register(spec["uri"], cat.storage.attrs(spec["uri"])[LINEAGE_ATTR])
    spec["coord"] = coord = _full_coord(step, inputs, params, cat.storage)
    writer = cat.create(spec["lineage"]["key"], step.kind, None, step.map_over, coord, spec["chunk"], spec["lineage"])
    task(lambda: _run_pieces(run, step, spec, writer), name=step.name, **opts)()
    return writer.finish()


def _dask_client() -> Any:
    """The Dask client of the current flow run's task runner, or None (no cluster: run here)."""
    from prefect.context import FlowRunContext

    runner = getattr(FlowRunContext.get(), "task_runner", None)
    if runner is None or type(runner).__name__ != "DaskTaskRunner":
        return None
    return runner.client


def _dispatch(fn: Callable[..., Any], calls: Sequence[tuple], name: str, retries: int,
              done: Callable[[int], None], first_alone: bool = False) -> list[tuple[int, BaseException]]:
    """Run ``fn(*args)`` for each ``args`` in ``calls`` on the run's Dask cluster as plain Dask
    tasks (a Prefect task per piece costs 0.12-0.18 s of wall time, ~0.3 s of CPU summed over the
    flow, the worker and the server; a Dask task a few ms), or, without a cluster, here one after
    the other.
    ``first_alone``: the others start after the first has finished (they receive its result as a
    last argument) and fail with it.
    ``done(i)`` after each success; a failure does not stop the others; returns the failures
    [(i, exception)]. Leaving early (an interrupt) cancels what has not run yet."""
    client = _dask_client()
    failures: list[tuple[int, BaseException]] = []
    if not calls:
        return failures
    if client is None:
        for i, args in enumerate(calls):
            if first_alone and i > 0 and failures and failures[0][0] == 0:
                failures.append((i, failures[0][1]))  # nothing to write into
                continue
            for attempt in range(retries + 1):
                try:
                    fn(*args)
                except Exception as exc:
                    if attempt == retries:
                        failures.append((i, exc))
                    continue
                done(i)
                break
        return failures
    from distributed import as_completed

    token = uuid.uuid4().hex[:8]
    futures: dict[Any, int] = {}
    first = client.submit(fn, *calls[0], key=f"{name}-0-{token}", pure=False, retries=retries)
    futures[first] = 0
    if len(calls) > 1:  # the others in one message (a submit each costs ~1 ms)
        columns = [list(c) for c in zip(*calls[1:], strict=True)]
        if first_alone:
            columns.append([first] * (len(calls) - 1))
        rest = client.map(fn, *columns, key=[f"{name}-{k}-{token}" for k in range(1, len(calls))],
                          pure=False, retries=retries)
        futures.update({fut: k for k, fut in enumerate(rest, start=1)})
    try:
        for fut in as_completed(list(futures), loop=client.loop):
            # the value (what the task returns) is never fetched: a gather per piece would be a
            # round trip to the worker while it computes the next one
            if fut.status == "finished":
                done(futures[fut])
                continue
            try:
                fut.result()  # re-raises the task's own exception
            except Exception as exc:
                failures.append((futures[fut], exc))
                continue
            done(futures[fut])
    finally:
        pending = [f for f in futures if not f.done()]
        if pending:
            client.cancel(pending)
    return failures


def _full_coord(step: Step, inputs: Sequence[Ref], params: Mapping[str, Any], storage: Storage) -> np.ndarray:
    if step.coord_param:
        if step.coord_param not in params:
            raise InputError(f"step {step.name}: missing parameter {step.coord_param!r}")
        return np.asarray(params[step.coord_param])
    for r in inputs:
        values = storage.values(r.uri, step.map_over)  # the dim's coordinate, read alone
        if values is not None:
            return values
    for r in inputs:  # a dim without a coordinate variable: xarray numbers it
        with storage.open(r.uri, dask=False) as ds:
            if step.map_over in ds.dims:
                return np.asarray(ds[step.map_over].values)
    raise InputError(f"step {step.name}: no input has dim {step.map_over!r} to map over")


def _run_pieces(run: StudyRun, step: Step, spec: dict, writer: Any) -> None:
    """Compute the missing chunks, ``per_task`` to a task: the first alone when it lays out the
    dataset, then the others at once; one failed task does not stop the others."""
    todo = writer.missing()
    total = writer.n_pieces
    k = spec["per_task"]
    batches = [todo[i : i + k] for i in range(0, len(todo), k)]

    first_alone = bool(batches) and not run.catalog.storage.template_ready(writer.uri)
    calls = [(spec, b, first_alone and n == 0) for n, b in enumerate(batches)]
    if len(todo) < total:  # resumed: those written before can be hashed now
        writer.regions_written(sorted(set(range(total)) - set(todo)))

    def done(i: int) -> None:
        advance(len(batches[i]))
        writer.regions_written(batches[i])

    try:
        with run.progress(step.name, total, total - len(todo)) as advance:
            bad = _dispatch(compute_pieces, calls, step.name, step.retries, done, first_alone)
    except BaseException:
        writer.stop_fingerprint()
        raise
    failures = [(batches[i], exc) for i, exc in sorted(bad, key=lambda f: f[0])]
    if failures:
        writer.stop_fingerprint()
        bad_input = [exc for _, exc in failures if getattr(exc, "exit_code", 1) == 2]
        if bad_input:
            raise bad_input[0]
        batch, exc = failures[0]
        n_failed = len(writer.missing())  # a task stops at its failed chunk: those before it are written
        where = f"piece {batch[0]}" if len(batch) == 1 else f"pieces {batch[0]}-{batch[-1]}"
        raise RunError(f"step {step.name}: {n_failed} of {total} pieces not written "
                       f"(first: {where}: {exc}); finished pieces are kept and a rerun resumes")
