"""A study run's step: reuse the complete dataset with the step's key, or compute it, write it and index it.

The step's work is wrapped by the run's ``as_task`` (one Prefect task run of the flow run, or called inline) and
runs on the run's executor (:mod:`flows.executors`): whole (:mod:`flows.pieces`, or :mod:`flows.isolated`), or
region by region for a mapped step; the result is indexed with its lineage. SQLite is written here, in the flow
process, never by the pieces.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import replace
from functools import partial
from typing import Any, Protocol

import numpy as np

from data_catalog import LINEAGE_ATTR, Catalog, Record, RegionWriter
from strata_errors import InputError, RunError, StrataError

from .executors import Executor
from .interrupts import raise_kept_interrupt
from .isolated import compute_isolated
from .kinds import KindError
from .pieces import PieceSpec, compute_pieces, compute_whole
from .prefect_task import TaskWrapper
from .step import Pieces, Ref, Step, lineage_record, materialize

__all__ = ["ExecutingRun", "execute"]


class ExecutingRun(Protocol):
    """What :func:`execute` uses of its run: a :class:`flows.study.StudyRun` (which imports this module)."""

    catalog: Catalog
    executor: Executor
    flow_run_id: str
    owner: str
    study: str
    preset: str | None
    overrides: list[str]
    packages: dict[str, str]
    deployment_id: str | None
    retries: int
    as_task: TaskWrapper

    def emit(self, state: str, step: str, run_id: str, inputs: Sequence[Ref], uri: str,
             lineage: Mapping[str, Any], error: str | None = None) -> None: ...

    def record(self, step: str, ref: Ref, status: str, seconds: float, label: str | None) -> None: ...

    def show_warnings(self, warned: Iterable[tuple[type[Warning], str]] | None) -> None: ...

    def status(self, text: str) -> AbstractContextManager[None]: ...

    def progress(self, description: str, total: int, done: int) -> AbstractContextManager[Callable[..., None]]: ...


def execute(run: ExecutingRun, step: Step, inputs: Sequence[Ref], params: Mapping[str, Any],
            pieces: Pieces | None, label: str | None) -> Ref:
    """Reuse or compute one step of ``run``."""
    raise_kept_interrupt()
    t0 = time.perf_counter()
    key = step.key(inputs, params, pieces.per_piece if step.map_over else None)
    step_run_id = str(uuid.uuid4())
    deployment = {"deployment_id": run.deployment_id} if run.deployment_id else {}  # a scheduled run (strata serve)
    lineage = lineage_record(key, step.kind, step.name, step.version, step.fn, params, inputs, run_id=step_run_id,
                             flow_run_id=run.flow_run_id, study=run.study, preset=run.preset,
                             overrides=list(run.overrides), packages=run.packages, **deployment)

    def emit(state: str, uri: str, error: str | None = None) -> None:
        run.emit(state, step.name, step_run_id, inputs, uri, lineage, error)

    def compute(uri: str) -> Record:
        spec = PieceSpec(step.name, step.fn, dict(params), tuple((r.uri, r.fingerprint) for r in inputs),
                         run.catalog.storage, uri, lineage, coord_param=step.coord_param)
        body = _whole if step.map_over is None else _mapped
        with run.status(f"{step.name} {label or ''}"):
            return run.as_task(body, step.name)(run, step, spec, inputs, pieces)  # a Prefect task run, or inline

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


def _whole(run: ExecutingRun, step: Step, spec: PieceSpec, inputs: Sequence[Ref], pieces: Pieces | None) -> Record:
    """The whole dataset, computed and written by one executor call; then indexed here."""
    work = compute_isolated if step.isolated else compute_whole
    run.show_warnings(run.executor.call(partial(work, spec), name=step.name, retries=_retries(run, step)))
    return run.catalog.register(spec.uri, run.catalog.storage.attrs(spec.uri)[LINEAGE_ATTR])


def _mapped(run: ExecutingRun, step: Step, spec: PieceSpec, inputs: Sequence[Ref], pieces: Pieces) -> Record:
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


def _retries(run: ExecutingRun, step: Step) -> int:
    """Attempts after a failure: the step's own, or the run's (``strata run --retries N``) if more."""
    return max(step.retries, run.retries)


def _raise_failures(step: Step, writer: RegionWriter, failures: Sequence[tuple[list[int], BaseException]]) -> None:
    as_is = [exc for _, exc in failures if getattr(exc, "exit_code", 1) == 2 or isinstance(exc, KindError)]
    if as_is:  # bad input, or a result of the wrong kind: a rerun would fail the same way, nothing to resume
        raise as_is[0]
    missing = writer.missing()  # a task stops at its failed region: those before it are written
    # a task can fail after its pieces were written (a job that dies before their result is read): name one that
    # is really missing
    lost = set(missing)
    failed, exc = next(((i, e) for b, e in failures for i in b if i in lost), (failures[0][0][0], failures[0][1]))
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
