"""Datasets that come from outside a study (a file), stored and recorded the way a step's are.

``strata segy import`` goes through here: the key is the file's content (its sha256 and size, never its path), the
dataset is claimed, written and indexed by :func:`flows.step.materialize`, its ``strata_lineage`` record built by
:func:`flows.step.lineage_record` (plus the file's ``source``: path, uri, bytes, sha256), and its START/COMPLETE
(or FAIL) OpenLineage events go to an event log of its own run (job ``<job>``, the file as input). No Prefect.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from data_catalog import Catalog, EventLog, make_key, owner_id

from .kinds import require
from .step import lineage_record, materialize

__all__ = ["file_source", "import_file"]


def file_source(path: Path) -> dict[str, Any]:
    """``{path, uri, bytes, sha256}`` of a file (read once, in blocks); ``OSError`` when it cannot be read."""
    h = hashlib.sha256()
    size = 0
    with open(path, "rb") as f:
        while block := f.read(1 << 22):
            h.update(block)
            size += len(block)
    return {"path": str(path), "uri": path.as_uri(), "bytes": size, "sha256": h.hexdigest()}


def import_file(catalog: Catalog, source: dict[str, Any], read: Callable[[Path], Any], *, step: str, version: str,
                kind: str, job: str) -> tuple[str, bool]:
    """The dataset ``read(path)`` of the file ``source`` (:func:`file_source`) as a catalog dataset of ``kind``:
    reused when a complete one of the same content exists, else read (everything that can fail on the file fails
    before the catalog is touched), written and recorded. Returns (key, whether it was written now)."""
    params = {"sha256": source["sha256"], "bytes": source["bytes"]}
    key = make_key(step, version, params, [])
    if catalog.get(key) is not None:
        return key, False
    path = Path(source["path"])
    ds = read(path)
    require(ds, kind, step)  # what a step's result must hold, an imported file's too
    run_id = str(uuid.uuid4())
    lineage = lineage_record(key, kind, step, version, read, params, run_id=run_id, flow_run_id=None, source=source)
    log = EventLog(catalog.lineage_dir, run_id, catalog.root)
    doc = {"level": "step", "flow_run_id": None, "key": key, "params": params, "code": lineage["code"],
           "source": source}

    def emit(state: str, uri: str, error: str | None = None) -> None:
        log.emit(state, job=job, run_id=run_id, inputs=[source["uri"]], outputs=[uri], strata=doc, error=error)

    _, computed = materialize(catalog, key, kind, lineage, owner_id(run_id),
                              lambda uri: catalog.write(key, kind, ds, lineage), emit)
    return key, computed
