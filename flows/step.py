"""The step contract: a pure ``tasks/`` function becomes a cached, lineage-recording Prefect task.

``Step(...)(*input_refs, **params)`` inside a study flow computes the dataset's key; a complete
dataset with that key is reused, otherwise the step runs as one Prefect task in the flow's process
whose work (:mod:`flows.pieces`) runs on the run's executor (:mod:`flows.executors`), whole or
region by region for a mapped step; the result is indexed with its lineage. SQLite is written here,
in the flow process, never by the pieces.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from functools import partial
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from data_catalog import LINEAGE_ATTR, Catalog, Record, RegionWriter, canonical, make_key, now_iso
from strata_errors import InputError, RunError, StrataError

from .code import code_identity
from .context import current_run
from .isolated import compute_isolated
from .pieces import PieceSpec, compute_pieces, compute_whole

if TYPE_CHECKING:
    from .study import StudyRun

__all__ = ["Ref", "Step", "Pieces", "materialize"]


@dataclass(frozen=True)
class Ref:
    """What passes between steps: a small reference, never the arrays."""

    key: str
    uri: str
    kind: str
    step: str
    fingerprint: str | None = None

    @classmethod
    def of(cls, rec: Record) -> Ref:
        """The reference to a catalog record."""
        return cls(rec.key, rec.uri, rec.kind, rec.step, rec.fingerprint)


class Pieces(Protocol):
    """How a mapped step is cut (a study config section, e.g. ``simulation.pieces``):
    ``per_piece`` entries of the mapped dim per zarr chunk and resume marker (enters the key);
    ``per_task`` chunks per executor task, or ``"auto"`` (a runtime choice, never in the key)."""

    @property
    def per_piece(self) -> int: ...

    @property
    def per_task(self) -> int | str: ...


@dataclass(frozen=True)
class Step:
    """A named, versioned producer of one kind of dataset.

    ``map_over``: the output dim filled region by region; inputs having that dim are sliced to the
    piece; the full coordinate is the param ``coord_param`` if given (the piece's slice of it is
    passed in its place), else the first input's. ``version`` is bumped when results change.
    ``isolated``: a whole step computed in a fresh Python process (:mod:`flows.isolated`), e.g.
    multi-threaded training that must leave the worker's state as it found it.
    """

    name: str
    fn: Callable[..., Any]
    version: str
    kind: str
    map_over: str | None = None
    coord_param: str | None = None
    retries: int = 0
    isolated: bool = False

    def __post_init__(self) -> None:
        if self.isolated and self.map_over:
            raise TypeError(f"step {self.name}: only a whole (unmapped) step can be isolated")

    def __call__(self, *inputs: Ref, pieces: Pieces | None = None, label: str | None = None,
                 **params: Any) -> Ref:
        """What the current run context does with a step (mapped steps need ``pieces``): a study run reuses
        or computes the dataset (:func:`execute`), a plan (:mod:`flows.plan`, ``--dry-run``) only computes
        its key, an in-memory run (:mod:`flows.direct`) computes it with no orchestration."""
        _check_call(self, inputs, pieces)
        return current_run().call_step(self, inputs, params, pieces, label)

    def key(self, inputs: Sequence[Ref], params: Mapping[str, Any], per_piece: int | None) -> str:
        doc = dict(canonical(params))
        if self.map_over:
            doc["_region"] = {"dim": self.map_over, "chunk": per_piece}
        return make_key(self.name, self.version, doc, [r.key for r in inputs])


def materialize(catalog: Catalog, key: str, kind: str, lineage: Mapping[str, Any], owner: str,
                compute: Callable[[str], Record], emit: Callable[..., None]) -> tuple[Record, bool]:
    """Reuse the complete dataset ``key``, or claim it, ``compute(uri)`` it and index it, with
    START/COMPLETE (or FAIL) lineage events through ``emit(state, uri, error=None)``; a failure
    releases the claim. Returns (record, computed). Steps and ``segy import`` both go through here."""
    rec = catalog.claim(key, owner, kind, lineage["step"], lineage["version"])
    if rec is not None:
        return rec, False
    uri = catalog.storage.uri(kind, key)
    emit("START", uri)
    try:
        rec = compute(uri)
    except BaseException as exc:
        catalog.release(key, owner)
        emit("FAIL", uri, error=str(exc) or type(exc).__name__)
        raise
    emit("COMPLETE", uri)
    return rec, True


def _check_call(step: Step, inputs: Sequence[Ref], pieces: Pieces | None) -> None:
    if step.map_over and pieces is None:
        raise InputError(f"step {step.name} is mapped over {step.map_over!r}: give pieces=")
    if pieces is not None and not step.map_over:
        raise TypeError(f"step {step.name} is not mapped: it takes no pieces=")
    for r in inputs:
        if not isinstance(r, Ref):
            raise TypeError(f"step {step.name}: inputs must be Refs, got {type(r).__name__}")


def execute(run: StudyRun, step: Step, inputs: Sequence[Ref], params: Mapping[str, Any],
            pieces: Pieces | None, label: str | None) -> Ref:
    """Reuse or compute one step of ``run``."""
    t0 = time.perf_counter()
    key = step.key(inputs, params, pieces.per_piece if step.map_over else None)
    step_run_id = str(uuid.uuid4())
    lineage = {
        "key": key, "kind": step.kind, "step": step.name, "version": step.version,
        "params": canonical(params), "inputs": [r.key for r in inputs],
        "input_fingerprints": {r.key: r.fingerprint for r in inputs},
        "run_id": step_run_id, "flow_run_id": run.flow_run_id, "study": run.study,
        "preset": run.preset, "overrides": list(run.overrides),
        "code": code_identity(step.fn, step.version), "created": now_iso(), "packages": run.packages,
    }
    if run.deployment_id:  # a scheduled run (strata serve)
        lineage["deployment_id"] = run.deployment_id

    def emit(state: str, uri: str, error: str | None = None) -> None:
        run.emit(state, step.name, step_run_id, inputs, uri, lineage, error)

    def compute(uri: str) -> Record:
        from prefect import task
        from prefect.cache_policies import NO_CACHE

        spec = PieceSpec(step.name, step.fn, dict(params), tuple((r.uri, r.fingerprint) for r in inputs),
                         run.catalog.storage, uri, lineage, coord_param=step.coord_param)
        body = _whole if step.map_over is None else _mapped
        with run.status(f"{step.name} {label or ''}"):
            return task(body, name=step.name, cache_policy=NO_CACHE, persist_result=False)(
                run, step, spec, inputs, pieces)

    try:
        rec, computed = materialize(run.catalog, key, step.kind, lineage, run.owner, compute, emit)
    except StrataError as exc:  # the step's name in front, once; the type (its exit code) kept
        if str(exc).startswith((f"step {step.name}:", f"step {step.name} ")):
            raise
        raise type(exc)(f"step {step.name} ({label or key}): {exc}") from exc
    except Exception as exc:
        raise RunError(f"step {step.name} ({label or key}) failed: {exc}") from exc
    ref = Ref.of(rec)
    run.record(step.name, ref, "computed" if computed else "reused", time.perf_counter() - t0, label)
    return ref


def _whole(run: StudyRun, step: Step, spec: PieceSpec, inputs: Sequence[Ref], pieces: Pieces | None) -> Record:
    """The whole dataset, computed and written by one executor call; then indexed here."""
    work = compute_isolated if step.isolated else compute_whole
    run.show_warnings(run.executor.call(partial(work, spec), name=step.name, retries=_retries(run, step)))
    return run.catalog.register(spec.uri, run.catalog.storage.attrs(spec.uri)[LINEAGE_ATTR])


def _mapped(run: StudyRun, step: Step, spec: PieceSpec, inputs: Sequence[Ref], pieces: Pieces) -> Record:
    """The missing regions: when the dataset is not laid out yet, a first wave of one piece per worker
    thread (whichever finishes first lays the dataset out; the wave's time sizes the tasks of
    ``per_task: auto``), then the others; a failed task stops no other. Then the dataset is completed
    and indexed."""
    cat, ex = run.catalog, run.executor
    coord = _full_coord(step, inputs, spec)
    writer = cat.create(spec.lineage["key"], step.kind, step.map_over, coord, pieces.per_piece)
    writer.reset()  # a layout a dead run left unfinished
    spec = replace(spec, writer=writer)
    todo, total = writer.missing(), writer.n_pieces
    failures = []
    with run.progress(step.name, total, total - len(todo)) as advance:
        def done(batch: list[int], warned: Any) -> None:
            advance(len(batch))
            run.show_warnings(warned)

        piece_seconds = None
        if todo and not writer.laid_out():
            wave = todo[:max(1, ex.slots)]
            t0 = time.perf_counter()
            failures = ex.map(partial(compute_pieces, spec), wave, name=step.name, retries=_retries(run, step),
                              per_task=1, on_done=done)
            piece_seconds, todo = time.perf_counter() - t0, todo[len(wave):]
        if not failures:
            failures = ex.map(partial(compute_pieces, spec), todo, name=step.name, retries=_retries(run, step),
                              per_task=pieces.per_task, piece_seconds=piece_seconds, on_done=done)
    if failures:
        _raise_failures(step, writer, failures)
    return cat.finish(writer, spec.lineage)


def _retries(run: StudyRun, step: Step) -> int:
    """Attempts after a failure: the step's own, or the run's (``strata run --retries N``) if more."""
    return max(step.retries, run.retries)


def _raise_failures(step: Step, writer: RegionWriter, failures: Sequence[tuple[list[int], BaseException]]) -> None:
    bad_input = [exc for _, exc in failures if getattr(exc, "exit_code", 1) == 2]
    if bad_input:
        raise bad_input[0]
    batch, exc = failures[0]
    missing = writer.missing()  # a task stops at its failed region: those before it are written
    failed = next((i for i in batch if i in missing), batch[0])
    labels = [v.item() if hasattr(v, "item") else v for v in writer.labels(failed)]
    what = f"{writer.dim} {labels[0]}" if len(labels) == 1 else f"{writer.dim}s {labels[0]}–{labels[-1]}"
    raise RunError(f"step {step.name}: {len(missing)} of {writer.n_pieces} pieces not written "
                   f"(first: {what}, piece {failed}: {exc}); finished pieces are kept and a rerun resumes")


def _full_coord(step: Step, inputs: Sequence[Ref], spec: PieceSpec) -> np.ndarray:
    """The mapped dim's full coordinate: the ``coord_param`` value, or the first input's."""
    if step.coord_param:
        if step.coord_param not in spec.params:
            raise InputError(f"step {step.name}: missing parameter {step.coord_param!r}")
        return np.asarray(spec.params[step.coord_param])
    for r in inputs:
        values = spec.storage.values(r.uri, step.map_over)
        if values is not None:
            return values
    raise InputError(f"step {step.name}: no input has dim {step.map_over!r} to map over")
