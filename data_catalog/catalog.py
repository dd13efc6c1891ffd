"""The catalog facade: storage + SQLite index + event log, and the lineage queries."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from strata_errors import InputError, RunError

from .events import read_events
from .index import Index, Record
from .keys import check_key
from .storage import COMPLETE_ATTR, LINEAGE_ATTR, Storage

__all__ = ["Catalog", "RegionWriter", "default_root", "now_iso"]


def default_root(root: str | os.PathLike | None = None) -> str:
    """``--root``, else ``$STRATA_HOME``, else ``./strata-data``."""
    return str(root or os.environ.get("STRATA_HOME") or "strata-data")


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class Catalog:
    """``Catalog(root)``: datasets under ``root`` and their lineage. Opens SQLite lazily."""

    def __init__(self, root: str | os.PathLike | None = None, storage_options: Mapping[str, Any] | None = None):
        self.storage = Storage(default_root(root), storage_options)
        self.root = self.storage.root
        self._index: Index | None = None

    @property
    def index(self) -> Index:
        if self._index is None:
            self._index = Index(self.storage.cache_dir() / "catalog.db")
        return self._index

    @property
    def lineage_dir(self) -> Path:
        return self.storage.cache_dir() / "lineage"

    def close(self) -> None:
        if self._index is not None:
            self._index.close()
            self._index = None

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

    def create(self, key: str, kind: str, piece0: xr.Dataset, region_dim: str, coord: np.ndarray,
               chunk: int, lineage: Mapping[str, Any]) -> RegionWriter:
        """A RegionWriter for a dataset filled piece by piece (resumes an incomplete one)."""
        return RegionWriter(self, key, kind, region_dim, coord, chunk, lineage, piece0)

    def register(self, uri: str, lineage: Mapping[str, Any],
                 variables: Mapping[str, Any] | None = None) -> Record:
        """Index a dataset whose zarr attrs say complete (flow process only); ``variables``: its
        :meth:`Storage.variables`, when already read."""
        doc = dict(lineage)
        extra_keys = ("study", "preset", "overrides", "input_fingerprints", "packages")
        rec = Record(
            key=doc["key"], kind=doc["kind"], step=doc.get("step", ""), version=str(doc.get("version", "")),
            uri=uri, created=doc.get("created"), params=doc.get("params", {}), inputs=list(doc.get("inputs", [])),
            run_id=doc.get("run_id"), flow_run_id=doc.get("flow_run_id"), code=doc.get("code", {}),
            fingerprint=doc.get("fingerprint"), complete=True,
            variables=dict(variables) if variables is not None else self.storage.variables(uri),
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

    def verify(self, key: str | None = None) -> list[tuple[str, bool, str]]:
        """Recompute fingerprints: [(key, ok, message)]."""
        recs = [self.record(key)] if key else self.list()
        out = []
        for rec in recs:
            if not rec.complete:
                out.append((rec.key, False, f"{rec.kind} {rec.key} is not complete"))
                continue
            try:
                fp = self.storage.fingerprint(rec.uri)
            except Exception as exc:  # a corrupt chunk may fail to decode at all
                why = f"cannot be read ({type(exc).__name__}: {exc})"
                out.append((rec.key, False, f"{rec.kind} {rec.key} at {rec.uri}: {why}"))
                continue
            ok = fp == rec.fingerprint
            why = f"fingerprint {fp[:12]} != recorded {str(rec.fingerprint)[:12]}"
            msg = "ok" if ok else f"{rec.kind} {rec.key} at {rec.uri}: {why}"
            out.append((rec.key, ok, msg))
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
        """Rebuild the SQLite index from zarr attrs (datasets, edges) and the event log (runs)."""
        self.index.clear()
        n = skipped = 0
        for uri in self.storage.iter_groups():
            attrs = self.storage.attrs(uri)
            if attrs.get(COMPLETE_ATTR) and LINEAGE_ATTR in attrs:
                self.register(uri, attrs[LINEAGE_ATTR])
                n += 1
            else:
                skipped += 1
        runs = 0
        for ev in read_events(self.lineage_dir):
            facet = ev.get("run", {}).get("facets", {}).get("strata", {}).get("doc", {})
            if facet.get("flow_run_id") and facet.get("level") == "flow":
                fields = {k: facet.get(k) for k in ("study", "preset", "overrides")}
                fields["started" if ev.get("eventType") == "START" else "finished"] = ev.get("eventTime")
                if ev.get("eventType") != "START":
                    fields["status"] = ev.get("eventType")
                self.index.put_run(facet["flow_run_id"], **fields)
                runs += ev.get("eventType") == "START"
        return {"datasets": n, "incomplete_skipped": skipped, "runs": runs}


class _Stopped(Exception):
    """The background fingerprint was given up."""


def _lowest_priority() -> None:
    """This thread runs only when a core is otherwise idle (Linux SCHED_IDLE; else nice 19)."""
    try:
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))  # 0: the calling thread
    except (AttributeError, OSError):
        try:
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)
        except (AttributeError, OSError):
            pass


class RegionWriter:
    """Fills one dataset region by region: ``write(i, ds_i)``, ``missing()``, ``finish()``."""

    def __init__(self, catalog: Catalog, key: str, kind: str, region_dim: str, coord: np.ndarray,
                 chunk: int, lineage: Mapping[str, Any], piece0: xr.Dataset | None = None):
        self.catalog, self.key, self.kind = catalog, key, kind
        self.region_dim, self.coord, self.chunk = region_dim, np.asarray(coord), int(chunk)
        self.lineage = {**dict(lineage), "key": key, "kind": kind}
        self.uri = catalog.storage.uri(kind, key)
        self.n_pieces = -(-len(self.coord) // self.chunk)
        self._fp_cond = threading.Condition()
        self._fp_done: set[int] = set()
        self._fp_thread: threading.Thread | None = None
        self._fp_stop = False
        self._fp_result: str | None = None
        self._variables: dict[str, Any] | None = None
        if piece0 is not None and not catalog.storage.template_ready(self.uri):
            catalog.storage.create_template(self.uri, piece0, region_dim, self.coord, self.chunk)

    def region(self, i: int) -> slice:
        return slice(i * self.chunk, min((i + 1) * self.chunk, len(self.coord)))

    def write(self, i: int, ds_i: xr.Dataset) -> None:
        self.catalog.storage.write_region(self.uri, i, ds_i, self.region_dim, self.chunk)

    def missing(self) -> list[int]:
        if not self.catalog.storage.template_ready(self.uri):
            return list(range(self.n_pieces))
        done = self.catalog.storage.regions_done(self.uri)
        return [i for i in range(self.n_pieces) if i not in done]

    # -- the fingerprint, taken while the regions are written ---------------------------------
    # The hashed byte stream runs through the arrays in order; the rows of a region-filled array
    # can be hashed as soon as their regions are written. A background thread of the lowest CPU
    # priority (SCHED_IDLE: it runs only on a core nothing else wants, e.g. while a worker is
    # between two pieces) does that during the step, so that ``finish`` has little left to hash.
    _POLL_SECONDS = 0.05

    def regions_written(self, indices: Sequence[int]) -> None:
        """Regions ``indices`` are written (their markers exist): the fingerprint may read them."""
        with self._fp_cond:
            self._fp_done.update(int(i) for i in indices)
            self._fp_cond.notify_all()
            if self._fp_thread is None:  # the first written region: the layout exists
                self._fp_thread = threading.Thread(target=self._fingerprint_bg, name="strata-fingerprint",
                                                   daemon=True)
                self._fp_thread.start()

    def stop_fingerprint(self) -> None:
        """Give up the background fingerprint (a region failed): ``finish`` recomputes it."""
        with self._fp_cond:
            self._fp_stop = True
            self._fp_cond.notify_all()

    def _wait_rows(self, dims: tuple[str, ...], start: int, stop: int) -> None:
        if self.region_dim not in dims:
            return  # written whole with the layout
        if dims.index(self.region_dim) == 0:
            need = set(range(start // self.chunk, -(-stop // self.chunk)))
        else:
            need = set(range(self.n_pieces))
        storage = self.catalog.storage
        poll = self._POLL_SECONDS if storage.is_local else None  # a stat is cheap here, not on a remote store
        while True:
            with self._fp_cond:
                if self._fp_stop:
                    raise _Stopped
                left = need - self._fp_done
                if not left:
                    return
                self._fp_cond.wait(poll)
                left -= self._fp_done
                if not left or poll is None:
                    continue
            # a task of several pieces reports them when it ends: their markers say it earlier
            marked = {i for i in sorted(left)[:8] if storage.region_done(self.uri, i)}
            if marked:
                with self._fp_cond:
                    self._fp_done |= marked

    def _fingerprint_bg(self) -> None:
        _lowest_priority()  # threads it starts (the read-ahead) inherit the policy
        try:
            # the arrays' metadata is final once laid out: read it now for the index, not in finish
            self._variables = self.catalog.storage.variables(self.uri)
            self._fp_result = self.catalog.storage.fingerprint(self.uri, wait=self._wait_rows)
        except Exception:  # stopped, or failed: finish recomputes it (and raises there if it must)
            self._fp_result = None

    def finish(self) -> Record:
        missing = self.missing()
        if missing:
            self.stop_fingerprint()
            raise RunError(f"{self.kind} {self.key}: regions {missing[:10]} were never written")
        fp = None
        if self._fp_thread is not None:
            self.regions_written(range(self.n_pieces))  # all are (no region is missing)
            self._fp_thread.join()
            fp = self._fp_result
        if fp is None:
            fp = self.catalog.storage.fingerprint(self.uri)
        self.catalog.storage.mark_complete(self.uri, self.lineage, fp)
        variables = self._variables if fp == self._fp_result else None  # read by the thread that hashed
        return self.catalog.register(self.uri, {**self.lineage, "fingerprint": fp}, variables)  # as just written
