"""The step contract: a pure ``tasks/`` function becomes a cached, lineage-recording step.

``Step(...)(*input_refs, **params)`` inside a study flow asks the current run context (:class:`RunContext`) what
to do: a study run reuses or computes the dataset with the step's key (:func:`flows.execute.execute`, through
:func:`materialize`), a plan only computes the key, a direct run computes the dataset in memory.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from data_catalog import Catalog, Record, canonical, make_key, now_iso
from strata_errors import InputError, RunError

from .code import code_identity

__all__ = ["Ref", "Step", "Pieces", "materialize", "lineage_record"]


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
        or computes the dataset (:func:`flows.execute.execute`), a plan (:mod:`flows.plan`, ``--dry-run``) only computes
        its key, an in-memory run (:mod:`flows.direct`) computes it with no orchestration."""
        _check_call(self, inputs, pieces)
        return current_run().call_step(self, inputs, params, pieces, label)

    def key(self, inputs: Sequence[Ref], params: Mapping[str, Any], per_piece: int | None) -> str:
        doc = dict(canonical(params))
        if self.map_over:
            doc["_region"] = {"dim": self.map_over, "chunk": per_piece}
        return make_key(self.name, self.version, doc, [r.key for r in inputs])


class RunContext(Protocol):
    """The run a study's flow body runs in, which decides what a step call does: a study run
    (:class:`flows.study.StudyRun`) reuses or computes the dataset, a plan (:class:`flows.plan.PlanRun`) only
    computes its key, a direct run (:class:`flows.direct.DirectRun`) computes it in memory."""

    def call_step(self, step: Step, inputs: Sequence[Ref], params: Mapping[str, Any], pieces: Pieces | None,
                  label: str | None) -> Ref: ...


_Run = TypeVar("_Run", bound=RunContext)
_ACTIVE: list[RunContext] = []


def current_run() -> RunContext:
    """The run context of this process (a Step called outside one is an error)."""
    if not _ACTIVE:
        raise RunError("a Step was called outside a study flow run")
    return _ACTIVE[-1]


@contextmanager
def active(run: _Run) -> Iterator[_Run]:
    """Make ``run`` the current run context inside the block."""
    _ACTIVE.append(run)
    try:
        yield run
    finally:
        _ACTIVE.remove(run)


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


def lineage_record(key: str, kind: str, step: str, version: str, fn: Callable[..., Any], params: Mapping[str, Any],
                   inputs: Sequence[Ref] = (), run_id: str | None = None, **context: Any) -> dict[str, Any]:
    """A dataset's ``strata_lineage`` record: what made it (step, version, parameters, inputs with their
    fingerprints, the code of ``fn``), when, in which run, and ``context`` (a study run's flow run, study and
    preset; an imported file's ``source``). Goes with :func:`materialize`."""
    return {"key": key, "kind": kind, "step": step, "version": version, "params": canonical(params),
            "inputs": [r.key for r in inputs], "input_fingerprints": {r.key: r.fingerprint for r in inputs},
            "code": code_identity(fn, version), "created": now_iso(), "run_id": run_id, **context}


def _check_call(step: Step, inputs: Sequence[Ref], pieces: Pieces | None) -> None:
    if step.map_over and pieces is None:
        raise InputError(f"step {step.name} is mapped over {step.map_over!r}: give pieces=")
    if pieces is not None and not step.map_over:
        raise TypeError(f"step {step.name} is not mapped: it takes no pieces=")
    for r in inputs:
        if not isinstance(r, Ref):
            raise TypeError(f"step {step.name}: inputs must be Refs, got {type(r).__name__}")
