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

    def __call__(self, *inputs: Ref, chunk: int | None = None, per_task: int | str = "auto",
                 label: str | None = None, **params: Any) -> Ref:
        """Reuse or compute the dataset. Mapped steps: ``chunk`` entries of ``map_over`` per zarr
        chunk (enters the key), ``per_task`` chunks per task (a runtime choice: coarser tasks
        spread the cluster's per-task cost; resumption stays per chunk; ``"auto"``:
        :func:`tasks_of`)."""
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


def _input(storage: Storage, uri: str, fingerprint: str | None, dim: str | None) -> tuple[Any, bool]:
    """(the input at ``uri``, shared): this process's in-memory copy (arrays read-only; shared, so
    the caller copies it before handing it out), loaded on first use; or, when it is too big to
    keep, opened lazily. An input having the mapped ``dim`` is kept whole only when small (each
    piece reads its slice otherwise)."""
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
                var.data.flags.writeable = False  # shared by later pieces: a task must not edit it
        _cache[key] = ds
        while len(_cache) > 1 and sum(d.nbytes for d in _cache.values()) > _CACHE_BYTES:
            _cache.popitem(last=False)
        return ds, True


def _select(ds: Any, dim: str, part: np.ndarray) -> Any:
    """``ds.sel({dim: part})`` (a new Dataset, attrs copied), by position when every label is found."""
    index = ds.indexes.get(dim)
    if index is not None:
        pos = index.get_indexer(part)
        if len(pos) == len(part) and (pos >= 0).all():
            out = ds.isel({dim: pos})  # the same result, without sel's label lookup machinery
        else:
            out = ds.sel({dim: part})  # raises for a missing label
    else:
        out = ds.sel({dim: part})
    out.attrs = dict(out.attrs)  # isel and sel share the dict with ``ds``
    return out


def _load_inputs(storage: Storage, spec: Mapping[str, Any], part: np.ndarray | None = None) -> list:
    """Every input loaded in memory; with ``part``, inputs having the mapped dim are sliced to it."""
    dim = spec["map_over"] if part is not None else None
    fps = spec.get("input_fingerprints") or [None] * len(spec["inputs"])
    out = []
    for uri, fp in zip(spec["inputs"], fps, strict=True):
        ds, shared = _input(storage, uri, fp, dim)
        if dim is not None and dim in ds.dims:
            ds = _select(ds, dim, part)
        elif shared:
            ds = ds.copy(deep=False)  # a task may set its own attrs
        out.append(ds if shared else ds.load())
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
                   after_layout: bool = False) -> list[int]:
    """One task: the chunks ``indices`` of a mapped step, one after the other, each computed by
    one call of the function and written (region, then its marker) before the next starts. A
    chunk whose marker exists is skipped (a retried task redoes only what it did not finish).
    ``after_layout``: queued behind the task that lays out the dataset, sent before it ended; the
    layout is checked first (that task may have failed)."""
    storage = Storage(spec["root"], spec["storage_options"])
    if after_layout and not storage.template_ready(spec["uri"]):
        raise RunError(f"step {spec['step']}: the dataset was not laid out (the piece that lays it out "
                       f"did not finish); pieces {list(indices)[:5]} not run")
    for n, index in enumerate(indices):
        if n or not make_template:
            if storage.region_done(spec["uri"], index):
                continue
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
            chunk: int | None, label: str | None, per_task: int | str = "auto") -> Ref:
    """Reuse or compute one step (called by ``StudyRun.run_step``)."""
    if step.map_over and not chunk:
        raise InputError(f"step {step.name} is mapped over {step.map_over!r}: give chunk=")
    if per_task != "auto" and not (isinstance(per_task, int) and not isinstance(per_task, bool) and per_task >= 1):
        raise InputError(f"step {step.name}: per_task must be an integer ≥ 1 or 'auto', got {per_task!r}")
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
              done: Callable[[int], Sequence[tuple] | None]) -> list[tuple[int, BaseException]]:
    """Run ``fn(*args)`` for each ``args`` in ``calls`` on the run's Dask cluster as plain Dask
    tasks (a Prefect task per piece costs 0.12-0.18 s of wall time, ~0.3 s of CPU summed over the
    flow, the worker and the server; a Dask task a few ms), or, without a cluster, here one after
    the other.
    ``done(i)`` after each success; it may return more calls, run as well (numbered after those
    before them). A failure does not stop the others; returns the failures [(i, exception)].
    Leaving early (an interrupt) cancels what has not run yet."""
    client = _dask_client()
    failures: list[tuple[int, BaseException]] = []
    calls = list(calls)
    if not calls:
        return failures
    if client is None:
        i = 0
        while i < len(calls):
            for attempt in range(retries + 1):
                try:
                    fn(*calls[i])
                except Exception as exc:
                    if attempt == retries:
                        failures.append((i, exc))
                    continue
                calls.extend(done(i) or ())
                break
            i += 1
        return failures
    from distributed import as_completed

    token = uuid.uuid4().hex[:8]
    futures: dict[Any, int] = {}

    def submit(new: Sequence[tuple]) -> list[Any]:
        n = len(futures)
        columns = [list(c) for c in zip(*new, strict=True)]  # all in one message (a submit each costs ~1 ms)
        sent = client.map(fn, *columns, key=[f"{name}-{n + k}-{token}" for k in range(len(new))],
                          pure=False, retries=retries)
        futures.update(zip(sent, range(n, n + len(new)), strict=True))
        return sent

    running = as_completed(submit(calls), loop=client.loop)
    try:
        for fut in running:
            # the value (what the task returns) is never fetched: a gather per piece would be a
            # round trip to the worker while it computes the next one
            if fut.status != "finished":
                try:
                    fut.result()  # re-raises the task's own exception
                except Exception as exc:
                    failures.append((futures[fut], exc))
                    continue
            more = done(futures[fut])
            if more:
                running.update(submit(more))
    finally:
        pending = [f for f in futures if not f.done()]
        if pending:
            client.cancel(pending)
    return failures


# Tasks of about this many seconds when ``per_task`` is "auto": the cluster's own cost per task
# (~5-10 ms of CPU over the scheduler, the worker's event loop and this process, on the cores
# the pieces compute on) then stays under 1 % of the work.
TASK_SECONDS = 1.0


def tasks_of(todo: Sequence[int], per_task: int | str, slots: int, piece_seconds: float | None) -> list[list[int]]:
    """``todo`` (chunk indices) cut into tasks of ``per_task`` chunks; ``"auto"``: as many as take
    about :data:`TASK_SECONDS` (``piece_seconds``: one piece's measured time, if known), but at
    most what leaves two tasks per worker thread (``slots``), so that every worker stays busy to
    the end; one per task without a cluster (``slots`` 0: there the size changes nothing but
    the progress shown)."""
    if per_task == "auto":
        k = 1
        if slots > 0 and todo:
            k = -(-len(todo) // (2 * slots))
            if piece_seconds is not None:
                k = min(k, max(1, round(TASK_SECONDS / max(piece_seconds, 1e-3))))
    else:
        k = int(per_task)
    return [list(todo[i : i + k]) for i in range(0, len(todo), k)]


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
    """Compute the missing chunks: when the dataset is not laid out yet, the first chunk alone
    (it lays it out, and its time sizes the tasks of ``"auto"``), then the others, in tasks of
    :func:`tasks_of`; one failed task does not stop the others."""
    todo = writer.missing()
    total = writer.n_pieces
    if len(todo) < total:  # resumed: those written before can be hashed now
        writer.regions_written(sorted(set(range(total)) - set(todo)))
    client = _dask_client()
    slots = sum(client.nthreads().values()) if client is not None else 0
    failures: list[tuple[list[int], BaseException]] = []
    batches: list[list[int]] = []  # the chunks of each task, in the order sent
    t_first: float | None = None  # when the chunk that lays out the dataset was sent

    def calls(new: list[list[int]], make_template: bool, after_layout: bool = False) -> list[tuple]:
        batches.extend(new)
        return [(spec, b, make_template, after_layout) for b in new]

    try:
        with run.progress(step.name, total, total - len(todo)) as advance:
            def done(i: int) -> list[tuple] | None:
                nonlocal t_first
                advance(len(batches[i]))
                writer.regions_written(batches[i])
                if i == 0 and t_first is not None:  # the layout exists: the rest, sized by the first's time
                    piece_seconds, t_first = time.perf_counter() - t_first, None
                    rest = todo[len(batches):]  # what was sent so far: one chunk a task, from the front
                    return calls(tasks_of(rest, spec["per_task"], slots, piece_seconds), False)
                return None

            if todo and not run.catalog.storage.template_ready(writer.uri):
                t_first = time.perf_counter()
                first = calls([todo[:1]], True)
                if slots == 1 and len(todo) > 1:
                    # One worker thread runs its tasks in the order sent: the next chunk, queued
                    # behind the one that lays out the dataset, keeps it busy while the rest are
                    # sized and sent (a round trip of ~10 ms). With more threads it could start
                    # before the layout exists.
                    first += calls([todo[1:2]], False, after_layout=True)
            else:
                first = calls(tasks_of(todo, spec["per_task"], slots, None), False)
            bad = _dispatch(compute_pieces, first, step.name, step.retries, done)
            failures.extend((batches[i], exc) for i, exc in sorted(bad, key=lambda f: f[0]))
    except BaseException:
        writer.stop_fingerprint()
        raise
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
