"""Housekeeping without loss: what a data root holds (per kind, per study), removing a dataset only with what
depends on it, collecting what dead runs left incomplete and (``gc --older-than``) the outputs nothing references
any more. Flow-process (or CLI) only: it writes the index."""

from __future__ import annotations

import re
import time
from datetime import datetime
from typing import Any

from strata_errors import InputError

from .catalog import Catalog
from .index import Record
from .owners import owner_alive, owner_id
from .storage import COMPLETE_ATTR, LINEAGE_ATTR

__all__ = ["usage", "dependents", "remove", "collect", "parse_duration", "unreferenced", "collect_unreferenced"]

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


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


def parse_duration(text: str) -> float:
    """Seconds in ``text``: a number and a unit, s m h d w (``7d``, ``12h``, ``30m``); InputError otherwise."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*", str(text))
    if not m:
        raise InputError(f"--older-than {text!r}: expected a number and a unit s, m, h, d or w (e.g. 7d, 12h, 30m)")
    return float(m[1]) * _UNITS[m[2]]


def _epoch(text: str | None, default: float) -> float:
    try:
        return datetime.fromisoformat(str(text)).timestamp()
    except ValueError:
        return default


def unreferenced(cat: Catalog, older_than: float, now: float | None = None) -> list[Record]:
    """The complete datasets nothing references any more, dependents first (what ``gc --older-than`` removes).

    With the cutoff ``now - older_than``, a dataset is *referenced* — kept — when it was made after the cutoff;
    or a run started after the cutoff, or a run still going, made or reused it (the index notes each use); or
    the newest completed run of a configuration (study, preset, overrides) made or reused it, whatever its
    age; or it was imported (no run made it: it cannot be recomputed), or made by a run this index does not know
    (an older root); or it is an input, directly or not, of
    a kept dataset — so nothing kept loses an input, and the lineage of all that stays is whole. The rest is
    removed: what superseded runs of a configuration and failed runs made, once no run has used it for
    ``older_than``. A run's reuses are known to the index that ran it (``reindex`` keeps the runs that made
    datasets, not the ones that reused them)."""
    if not cat.storage.is_local:
        raise InputError("gc --older-than needs a local data root: on an object store each host's index knows only "
                         "its own runs, so what other hosts' runs use would look unreferenced")
    now = time.time() if now is None else now
    cutoff = now - older_than
    recs = {r.key: r for r in cat.index.list()}
    runs = cat.index.rows("SELECT flow_run_id, study, preset, overrides, started, status FROM runs")
    status = {r[0]: r[5] for r in runs}
    used: dict[str, set[str]] = {}  # run -> the datasets it made or reused
    keep: set[str] = set()
    for key, run, owner, _at in cat.index.rows("SELECT key, flow_run_id, owner, at FROM uses"):
        used.setdefault(run, set()).add(key)
        if status.get(run, "RUNNING") == "RUNNING" and owner_alive(owner):  # a run going on
            keep.add(key)
    for rec in recs.values():
        if rec.flow_run_id:
            used.setdefault(rec.flow_run_id, set()).add(rec.key)
        if not rec.flow_run_id or rec.flow_run_id not in status or _epoch(rec.created, now) >= cutoff:
            keep.add(rec.key)
    newest: dict[tuple[Any, ...], str] = {}
    for run, study, preset, overrides, started, state in sorted(runs, key=lambda r: _epoch(r[4], now)):
        if _epoch(started, now) >= cutoff:
            keep |= used.get(run, set())
        if state == "COMPLETE" and used.get(run):
            newest[study, preset, overrides] = run
    for run in newest.values():
        keep |= used[run]
    parents: dict[str, list[str]] = {}
    children: dict[str, int] = {}
    for parent, child in cat.index.rows("SELECT parent, child FROM edges"):
        parents.setdefault(child, []).append(parent)
    keep |= set(parents) - set(recs)  # an incomplete dataset (claimed, or verify --fix) will need its inputs
    frontier = list(keep)
    while frontier:  # what kept datasets are made from
        for parent in parents.get(frontier.pop(), []):
            if parent not in keep:
                keep.add(parent)
                frontier.append(parent)
    gone = {k for k in recs if k not in keep}
    for k in gone:
        for parent in parents.get(k, []):
            children[parent] = children.get(parent, 0) + 1
    ready, order = sorted((k for k in gone if not children.get(k)), reverse=True), []
    while ready:  # dependents first: a removal cut short never leaves a dataset without its inputs
        order.append(ready.pop())
        for parent in parents.get(order[-1], []):
            children[parent] -= 1
            if parent in gone and children[parent] == 0:
                ready.append(parent)
    return [recs[k] for k in order]


def collect_unreferenced(cat: Catalog, older_than: float, *, dry_run: bool = False,
                         now: float | None = None) -> list[Record]:
    """Remove :func:`unreferenced` datasets (``dry_run``: only list them), each after taking it in the index, so a
    run that wants it meanwhile waits and then computes it again, and one that used it since the listing keeps
    it (and what it is made from). Returns what was (or would be) removed."""
    since = time.time()
    planned = unreferenced(cat, older_than, now)
    if dry_run:
        return planned
    cat.hold_lease()  # no other host's run is writing the root meanwhile
    owner, done = owner_id("gc"), []
    for rec in planned:
        if cat.index.children(rec.key) or not cat.index.take(rec.key, owner, since):
            continue  # used since the listing (or made from what was)
        cat.storage.delete(rec.uri)  # storage first: a removal cut short leaves an incomplete row, gc's next time
        cat.index.delete([rec.key])
        done.append(rec)
    return done
