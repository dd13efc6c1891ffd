"""Housekeeping without loss: what a data root holds (per kind, per study), removing a dataset only with what
depends on it, and collecting what dead runs left incomplete. Flow-process (or CLI) only: it writes the index."""

from __future__ import annotations

from typing import Any

from strata_errors import InputError

from .catalog import Catalog
from .index import Record, owner_alive
from .storage import COMPLETE_ATTR, LINEAGE_ATTR

__all__ = ["usage", "dependents", "remove", "collect"]


def _size(cat: Catalog, uri: str) -> int:
    path = cat.storage.path(uri)
    try:
        return int(cat.storage.fs.du(path, total=True)) if cat.storage.fs.exists(path) else 0
    except FileNotFoundError:
        return 0


def usage(cat: Catalog) -> dict[str, Any]:
    """Bytes of the complete datasets by kind and by study (the study of the run that made each), and of
    incomplete ones (claimed or left by dead runs)."""
    by_kind: dict[str, int] = {}
    by_study: dict[str, int] = {}
    records = cat.index.list()
    for rec in records:
        n = _size(cat, rec.uri)
        by_kind[rec.kind] = by_kind.get(rec.kind, 0) + n
        study = str(rec.extra.get("study") or "(imported)")
        by_study[study] = by_study.get(study, 0) + n
    complete = {r.uri for r in records}
    incomplete = sum(_size(cat, uri) for uri in cat.storage.iter_groups() if uri not in complete)
    return {"root": str(cat.root), "total": sum(by_kind.values()) + incomplete, "by_kind": by_kind,
            "by_study": by_study, "incomplete": incomplete}


def dependents(cat: Catalog, key: str) -> list[str]:
    """Every dataset made from ``key``, directly or not (breadth first)."""
    seen: list[str] = []
    frontier = [key]
    while frontier:
        nxt = []
        for k in frontier:
            for child, _ in cat.index.children(k):
                if child not in seen and child != key:
                    seen.append(child)
                    nxt.append(child)
        frontier = nxt
    return seen


def remove(cat: Catalog, key: str, *, with_dependents: bool = False, dry_run: bool = False) -> list[Record]:
    """Remove dataset ``key`` (a key or unique prefix): refused while others depend on it, unless
    ``with_dependents`` (then they go too, dependents first). ``dry_run``: only say what would go."""
    key = cat.resolve(key)
    rec = cat.index.get(key)
    deps = dependents(cat, key)
    if deps and not with_dependents:
        shown = ", ".join(d[:12] for d in deps[:5]) + (" ..." if len(deps) > 5 else "")
        raise InputError(f"{key[:12]} ({rec.kind}): {len(deps)} dataset(s) depend on it ({shown}); "
                         f"--with-dependents removes them too, --dry-run lists them")
    records = [cat.index.get(k) for k in reversed(deps)] + [rec]
    records = [r for r in records if r is not None]
    if not dry_run:
        cat.hold_lease()  # waits for another host's run
        for r in records:  # storage first: a dataset half removed is incomplete, and a rerun rewrites it
            cat.storage.delete(r.uri)
        cat.index.delete([r.key for r in records])
    return records


def collect(cat: Catalog, *, dry_run: bool = False) -> list[str]:
    """Remove what dead runs left incomplete: index rows never completed whose claimant is gone, and dataset
    folders that are neither complete nor claimed by a live run. Returns their uris."""
    if not dry_run:
        cat.hold_lease()  # no other host's run is writing the root meanwhile
    live, dead_rows = set(), []
    for key, uri, owner in cat.index.claims():
        if owner and owner_alive(owner):
            live.add(uri)
        else:
            dead_rows.append((key, uri))
    gone = {uri for _, uri in dead_rows}
    for uri in cat.storage.iter_groups():
        if uri in live or uri in gone:
            continue
        try:
            attrs = cat.storage.attrs(uri)
        except Exception:  # unreadable metadata (a write cut short): not complete
            attrs = {}
        if not (attrs.get(COMPLETE_ATTR) is True and attrs.get(LINEAGE_ATTR)):
            gone.add(uri)
    if not dry_run:
        for uri in sorted(gone):
            cat.storage.delete(uri)
        cat.index.delete([key for key, _ in dead_rows])
    return sorted(gone)
