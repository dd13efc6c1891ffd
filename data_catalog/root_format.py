"""The format of a data root: ``<root>/strata-root.json`` ({"format": N, "root": where}), written with its
first dataset.

A root of this format (or one from before the marker existed, format 1) opens; a newer one is refused
with one line (upgrade strata); an older one would be refused with the command that migrates it. A local
root moved or copied elsewhere is refused too until ``strata catalog reindex``: its index holds the
datasets' paths in the old place, and a copy would read, and remove, the original's datasets.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from strata_errors import InputError

from .storage import Storage

__all__ = ["FORMAT", "check", "mark"]

FORMAT = 1
_NAME = "strata-root.json"
# format -> how to bring a root of that format to FORMAT (none yet: format 1 is the first)
_MIGRATIONS: dict[int, str] = {}


def _path(storage: Storage) -> str:
    return f"{storage.path(storage.root)}/{_NAME}"


def check(storage: Storage) -> None:
    """Refuse, in one line, a root this strata cannot read."""
    path = _path(storage)
    if not storage.fs.exists(path):
        return  # new, or written before the marker: format 1
    try:
        doc = json.loads(storage.fs.cat_file(path))
        found = int(doc["format"])
    except (ValueError, KeyError, TypeError) as exc:
        raise InputError(f"{path} is not a strata root marker ({type(exc).__name__}): fix or remove it") from None
    if found > FORMAT:
        raise InputError(f"data root {storage.root} has format {found}; this strata reads format {FORMAT} and "
                         f"older: upgrade strata to open it")
    if found < FORMAT:
        how = _MIGRATIONS.get(found, "strata catalog reindex")
        raise InputError(f"data root {storage.root} has format {found} (this strata writes {FORMAT}): `{how}` "
                         f"migrates it")
    written_at = doc.get("root")
    if storage.is_local and written_at and written_at != storage.root:
        raise InputError(f"data root {storage.root} was written at {written_at} (moved or copied): "
                         f"`strata catalog reindex --root {storage.root}` makes its index point here")


def mark(storage: Storage, replace: bool = False) -> None:
    """Write the marker if the root has none (with its first dataset), or ``replace`` it (a migration)."""
    path = _path(storage)
    if not replace and storage.fs.exists(path):
        return
    data = json.dumps({"format": FORMAT, "root": storage.root}).encode() + b"\n"
    if storage.is_local:  # whole or not at all: another process may be reading it (an object PUT is atomic)
        tmp = f"{path}.{os.getpid()}.tmp"
        Path(tmp).parent.mkdir(parents=True, exist_ok=True)
        Path(tmp).write_bytes(data)
        os.replace(tmp, path)
    else:
        storage.fs.pipe_file(path, data)
