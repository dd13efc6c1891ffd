"""The catalog facade: storage + SQLite index + event log, and the lineage queries."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from strata_errors import InputError, RunError

from . import root_format
from .events import flow_runs
from .index import Index, Record
from .keys import check_key
from .lease import LEASE_PATH, Lease, default_wait, lease_of
from .regions import RegionWriter
from .storage import COMPLETE_ATTR, LINEAGE_ATTR, Storage

__all__ = ["Catalog", "default_root", "now_iso"]


def default_root(root: str | os.PathLike | None = None) -> str:
    """``--root``, else ``$STRATA_HOME``, else ``./strata-data``."""
    return str(root or os.environ.get("STRATA_HOME") or "strata-data")


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class Catalog:
    """``Catalog(root)``: datasets under ``root`` and their lineage. Opens SQLite lazily.

    On an object-store root the first index write takes the root's lease (:mod:`.lease`), held until
    :meth:`close`: runs on other hosts wait up to ``lease_wait`` seconds (``$STRATA_LEASE_WAIT``,
    default 300), then fail. ``host`` names this machine in the lease (tests pretend to be two hosts).
    """

    def __init__(self, root: str | os.PathLike | None = None, storage_options: Mapping[str, Any] | None = None,
                 *, host: str | None = None, lease_wait: float | None = None):
        self.storage = Storage(default_root(root), storage_options)
        self.root = self.storage.root
        self._index: Index | None = None
        self._host = host
        self._lease_wait = lease_wait
        self._lease: Lease | None = None
        self._migrating = self._marked = False  # reindex running; the root's format marker written

    @property
    def index(self) -> Index:
        if self._index is None:
            if not self._migrating:
                root_format.check(self.storage)
            self._index = Index(self.storage.cache_dir() / "catalog.db", before_write=self.hold_lease)
        return self._index

    def hold_lease(self, run: str | None = None) -> None:
        """Hold an object-store root's write lease (once) and check it is still held; nothing on other roots."""
        if not self.storage.shared:
            return
        if self._lease is None:
            wait = self._lease_wait if self._lease_wait is not None else default_wait()
            lease = lease_of(self.storage.fs, self.storage.path(f"{self.root}/{LEASE_PATH}"), self.root, self._host)
            if run and run.count(":") >= 2:  # a claim owner, host:pid:run
                run = run.split(":", 2)[2] or None
            lease.acquire(run, wait=wait)
            self._lease = lease
        self._lease.check()

    @property
    def lineage_dir(self) -> Path:
        return self.storage.cache_dir() / "lineage"

    def close(self) -> None:
        if self._index is not None:
            self._index.close()
            self._index = None
        if self._lease is not None:
            self._lease.release()
            self._lease = None

    # -- identity ----------------------------------------------------------------------------
    def resolve(self, text: str) -> str:
        """A full key from a key or unique prefix (exit 2 on malformed/unknown/ambiguous)."""
        return self.index.resolve(check_key(text))

    def get(self, key: str) -> Record | None:
        """The record when the dataset is complete, else None."""
        rec = self.index.get(key)
        return rec if rec is not None and rec.complete else None

    def record(self, text: str) -> Record:
        """Record for a key or prefix, complete or not (for ``show``)."""
        rec = self.index.get(self.resolve(text))
        assert rec is not None
        return rec

    def open(self, key: str, dask: bool = True) -> xr.Dataset:
        """Open a complete dataset lazily (see :meth:`Storage.open`)."""
        rec = self.get(key)
        if rec is None:
            raise InputError(f"dataset {key} is not complete in {self.root}")
        return self.storage.open(rec.uri, dask=dask)

    # -- claims ------------------------------------------------------------------------------
    def claim(self, key: str, owner: str, kind: str, step: str, version: str,
              wait: float = 24 * 3600.0, poll: float = 0.5) -> Record | None:
        """Return the complete record, or None once ``owner`` holds the claim to compute ``key``.

        A dataset complete in storage but not in the index (a run killed between the two) is
        adopted. A key claimed by another live run is waited for.
        """
        uri = self.storage.uri(kind, key)
        if not self._marked:  # the root's format marker, with its first dataset
            root_format.mark(self.storage)
            self._marked = True
        deadline = time.monotonic() + wait
        while True:
            state, rec = self.index.claim(key, owner, {"kind": kind, "step": step, "version": version, "uri": uri})
            if state == "complete":
                return rec
            if state == "claimed":
                attrs = self.storage.attrs(uri)
                if attrs.get(COMPLETE_ATTR) and attrs.get(LINEAGE_ATTR, {}).get("key") == key:
                    return self.register(uri, attrs[LINEAGE_ATTR])
                return None
            if time.monotonic() > deadline:
                raise RunError(f"timed out waiting for another run computing {key} ({step})")
            time.sleep(poll)

    def release(self, key: str, owner: str) -> None:
        self.index.release(key, owner)

    # -- writing -----------------------------------------------------------------------------
    def write(self, key: str, kind: str, ds: xr.Dataset, lineage: Mapping[str, Any]) -> Record:
        """Write a whole dataset atomically (visible only when complete) and index it."""
        uri = self.storage.uri(kind, key)
        doc = {**dict(lineage), "key": key, "kind": kind}
        self.storage.write(uri, ds, doc)
        return self.register(uri, self.storage.attrs(uri)[LINEAGE_ATTR])

    def create(self, key: str, kind: str, region_dim: str, coord: np.ndarray, chunk: int,
               template: xr.Dataset | None = None) -> RegionWriter:
        """A :class:`RegionWriter` for a dataset filled region by region (``chunk`` entries of
        ``coord`` each); an incomplete one with that key is resumed. ``template``: a piece to lay
        the dataset out from now (else the first piece written does it)."""
        writer = RegionWriter(self.storage, self.storage.uri(kind, key), region_dim, np.asarray(coord), int(chunk))
        if template is not None and not writer.laid_out():
            writer.lay_out(template)
        return writer

    def finish(self, writer: RegionWriter, lineage: Mapping[str, Any]) -> Record:
        """Complete a region-filled dataset: every region written, fingerprint, lineage and the
        completion attribute last, then index it (flow process only)."""
        missing = writer.missing()
        if missing:
            raise RunError(f"{writer.uri}: regions {missing[:10]} were never written")
        fp, parts = self.storage.fingerprints(writer.uri)
        self.storage.mark_complete(writer.uri, lineage, fp, parts)
        self.storage.drop_layout_claim(writer.uri)  # laid out long ago: the template marker decides
        return self.register(writer.uri, {**dict(lineage), "fingerprint": fp})

    def register(self, uri: str, lineage: Mapping[str, Any]) -> Record:
        """Index a dataset whose zarr attrs say complete (flow process only)."""
        doc = dict(lineage)
        extra_keys = ("study", "preset", "overrides", "input_fingerprints", "packages", "deployment_id")
        rec = Record(
            key=doc["key"], kind=doc["kind"], step=doc.get("step", ""), version=str(doc.get("version", "")),
            uri=uri, created=doc.get("created"), params=doc.get("params", {}), inputs=list(doc.get("inputs", [])),
            run_id=doc.get("run_id"), flow_run_id=doc.get("flow_run_id"), code=doc.get("code", {}),
            fingerprint=doc.get("fingerprint"), complete=True,
            variables=self.storage.variables(uri),
            extra={k: doc.get(k) for k in extra_keys if k in doc},
        )
        self.index.put(rec)
        return rec

    # -- queries -----------------------------------------------------------------------------
    def list(self, kind: str | None = None) -> list[Record]:
        return self.index.list(kind)

    def lineage(self, key: str, direction: str = "up", depth: int | None = None) -> dict[str, Any]:
        """Breadth-first walk of inputs (``up``) or dependents (``down``) to ``depth`` levels."""
        if direction not in ("up", "down"):
            raise InputError(f"direction must be 'up' or 'down', not {direction!r}")
        step = self.index.parents if direction == "up" else self.index.children
        nodes: dict[str, dict[str, Any]] = {}
        edges: list[dict[str, Any]] = []
        frontier, level = [key], 0
        seen = {key}
        while frontier and (depth is None or level < depth):
            nxt = []
            for k in frontier:
                for other, run_id in step(k):
                    parent, child = (other, k) if direction == "up" else (k, other)
                    edges.append({"from": parent, "to": child, "run_id": run_id})
                    if other not in seen:
                        seen.add(other)
                        nxt.append(other)
            frontier, level = nxt, level + 1
        for k in [key, *[k for k in seen if k != key]]:
            rec = self.index.get(k)
            nodes[k] = {"key": k, "kind": rec.kind if rec else None, "step": rec.step if rec else None,
                        "params": rec.params if rec else None, "code": rec.code if rec else None}
        return {"key": key, "direction": direction, "nodes": list(nodes.values()), "edges": edges}

    def verify(self, key: str | None = None, fix: bool = False) -> list[tuple[str, bool, str]]:
        """Recompute fingerprints: [(key, ok, message)], a failure naming the variables at fault
        (:func:`~data_catalog.verify.diagnose`). ``fix``: a corrupt dataset is deleted and its index row
        marked incomplete, so the next run recomputes it under the same key (its dependents keep theirs)."""
        from .verify import diagnose

        recs = [self.record(key)] if key else self.list()
        out = []
        for rec in recs:
            why = f"{rec.kind} {rec.key} is not complete" if not rec.complete else diagnose(self.storage, rec)
            if why and fix and rec.complete:
                self.storage.delete(rec.uri)
                self.index.mark_incomplete(rec.key)
                why += " — removed: the next run recomputes it"
            out.append((rec.key, why is None, why or "ok"))
        return out

    def stale(
        self, key: str | None = None, code_hash: Callable[[str], str | None] | None = None
    ) -> dict[str, list[str]]:
        """{key: [reasons]} for ``key`` (or every dataset) whose inputs or code changed.

        ``code_hash(function)`` gives the current source hash of a producing function.
        A dataset is stale when an input is gone or changed, its code changed, or an input is stale.
        """
        memo: dict[str, list[str]] = {}

        def reasons(k: str) -> list[str]:
            if k in memo:
                return memo[k]
            memo[k] = []
            rec = self.index.get(k)
            if rec is None or not rec.complete:
                memo[k] = [f"{k} is missing or incomplete"]
                return memo[k]
            out: list[str] = []
            fps = rec.extra.get("input_fingerprints") or {}
            for parent in rec.inputs:
                prec = self.index.get(parent)
                if prec is None or not prec.complete:
                    out.append(f"input {parent} is missing")
                    continue
                if fps.get(parent) and fps[parent] != prec.fingerprint:
                    out.append(f"input {parent} ({prec.step}) changed since {k} was made")
                if reasons(parent):
                    out.append(f"input {parent} ({prec.step}) is stale")
            fn = rec.code.get("function")
            if code_hash and fn:
                now = code_hash(fn)
                if now is None:
                    out.append(f"code of {rec.step} ({fn}) can no longer be found")
                elif now != rec.code.get("source_hash"):
                    out.append(f"code of {rec.step} ({fn}) changed since {k} was made")
            memo[k] = out
            return out

        targets = [key] if key else [r.key for r in self.list()]
        return {k: reasons(k) for k in targets}

    def reproduce(self, key: str) -> dict[str, Any]:
        rec = self.record(key)
        return {"key": rec.key, "study": rec.extra.get("study"), "preset": rec.extra.get("preset"),
                "overrides": rec.extra.get("overrides") or [], "step": rec.step, "version": rec.version,
                "params": rec.params, "inputs": rec.inputs, "code": rec.code, "flow_run_id": rec.flow_run_id}

    def reindex(self) -> dict[str, int]:
        """Rebuild the SQLite index from zarr attrs and the event log; migrates a root of an older format: a
        complete dataset without consolidated metadata (written by an older strata) gets it (``consolidated``
        counts them), so that one read opens it."""
        self._migrating = True
        self.index.clear()  # on an object store: the root's lease first (no run of another host meanwhile)
        root_format.mark(self.storage, replace=True)
        n = skipped = consolidated = 0
        for uri in self.storage.iter_groups():
            attrs = self.storage.attrs(uri)
            if attrs.get(COMPLETE_ATTR) and LINEAGE_ATTR in attrs:
                if not self.storage.is_consolidated(uri):  # a complete dataset's metadata no longer changes
                    self.storage.consolidate(uri)
                    consolidated += 1
                self.register(uri, attrs[LINEAGE_ATTR])
                n += 1
            else:
                skipped += 1
        runs = 0
        for run_id, fields, start in flow_runs(self.lineage_dir):
            self.index.put_run(run_id, **fields)
            runs += start
        return {"datasets": n, "incomplete_skipped": skipped, "runs": runs, "consolidated": consolidated}
