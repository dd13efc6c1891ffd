"""The SQLite index of a data root: datasets, lineage edges, runs and which run used which dataset.

Written by the flow process only (never by Dask workers). WAL, a busy timeout, and
``BEGIN IMMEDIATE`` for every check-then-write so concurrent runs wait instead of failing.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from strata_errors import InputError

from .owners import owner_alive, owner_id

__all__ = ["Index", "Record", "owner_id", "owner_alive"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS datasets (
    key TEXT PRIMARY KEY,
    kind TEXT NOT NULL DEFAULT '',
    step TEXT NOT NULL DEFAULT '',
    version TEXT NOT NULL DEFAULT '',
    uri TEXT NOT NULL DEFAULT '',
    created TEXT,
    params TEXT NOT NULL DEFAULT '{}',
    inputs TEXT NOT NULL DEFAULT '[]',
    run_id TEXT,
    flow_run_id TEXT,
    code TEXT NOT NULL DEFAULT '{}',
    fingerprint TEXT,
    complete INTEGER NOT NULL DEFAULT 0,
    variables TEXT NOT NULL DEFAULT '{}',
    extra TEXT NOT NULL DEFAULT '{}',
    claimed_by TEXT,
    claimed_at REAL
);
CREATE INDEX IF NOT EXISTS datasets_kind ON datasets(kind);
CREATE TABLE IF NOT EXISTS edges (
    parent TEXT NOT NULL,
    child TEXT NOT NULL,
    run_id TEXT,
    PRIMARY KEY (parent, child)
);
CREATE INDEX IF NOT EXISTS edges_child ON edges(child);
CREATE TABLE IF NOT EXISTS runs (
    flow_run_id TEXT PRIMARY KEY,
    study TEXT, preset TEXT, overrides TEXT, started TEXT, finished TEXT, status TEXT, report TEXT
);
CREATE TABLE IF NOT EXISTS uses (
    key TEXT NOT NULL, flow_run_id TEXT NOT NULL, owner TEXT, at REAL, PRIMARY KEY (key, flow_run_id)
);
"""

_JSON_COLS = ("params", "inputs", "code", "variables", "extra")


@dataclass
class Record:
    """One dataset as the index knows it (the ``catalog show`` document)."""

    key: str
    kind: str
    step: str
    version: str
    uri: str
    created: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    inputs: list[str] = field(default_factory=list)
    run_id: str | None = None
    flow_run_id: str | None = None
    code: dict[str, Any] = field(default_factory=dict)
    fingerprint: str | None = None
    complete: bool = False
    variables: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The ``show --json`` shape (``extra`` is internal and left out, but for the deployment of a
        scheduled run)."""
        doc = asdict(self)
        extra = doc.pop("extra")
        if extra.get("deployment_id"):
            doc["deployment_id"] = extra["deployment_id"]
        return doc


class Index:
    """SQLite index at ``path`` (created on first use). ``before_write(run)`` is called before every write
    transaction (``run``: the run or claim owner writing, if known); the catalog of an object-store root
    holds the root's lease there."""

    def __init__(self, path: str | os.PathLike, before_write: Callable[[str | None], None] | None = None):
        self.path = Path(path)
        self.before_write = None
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # created here with the user's umask (SQLite would make it 0644 whatever the umask; -wal and -shm follow it)
        os.close(os.open(self.path, os.O_CREAT | os.O_WRONLY, 0o666))
        self._db = sqlite3.connect(self.path, timeout=60.0, isolation_level=None, check_same_thread=False)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA busy_timeout = 60000")
        for attempt in range(600):  # switching to WAL needs a moment alone: SQLite answers "locked" at once
            try:
                self._db.execute("PRAGMA journal_mode = WAL")
                break
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or attempt == 599:
                    raise
                time.sleep(0.05)
        self._db.execute("PRAGMA synchronous = NORMAL")
        with self._tx():
            for stmt in _SCHEMA.strip().split(";"):
                if stmt.strip():
                    self._db.execute(stmt)
        self.before_write = before_write  # creating the schema writes this host's cache only

    def close(self) -> None:
        self._db.close()

    @contextmanager
    def _tx(self, run: str | None = None) -> Iterator[sqlite3.Connection]:
        if self.before_write is not None:
            self.before_write(run)
        for attempt in range(200):
            try:
                self._db.execute("BEGIN IMMEDIATE")
                break
            except sqlite3.OperationalError as exc:  # busy beyond the timeout: keep waiting
                if "locked" not in str(exc) or attempt == 199:
                    raise
                time.sleep(0.05)
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        else:
            self._db.execute("COMMIT")

    # -- datasets ----------------------------------------------------------------------------
    def get(self, key: str) -> Record | None:
        row = self._db.execute("SELECT * FROM datasets WHERE key = ?", (key,)).fetchone()
        return _record(row) if row else None

    def resolve(self, prefix: str) -> str:
        """Full key for a unique prefix; InputError when unknown or ambiguous."""
        rows = self._db.execute(
            "SELECT key FROM datasets WHERE key >= ? AND key < ? LIMIT 3", (prefix, prefix + "g")
        ).fetchall()
        if not rows:
            raise InputError(f"no dataset with key {prefix!r} in {self.path.parent}")
        if len(rows) > 1:
            raise InputError(f"key prefix {prefix!r} is ambiguous: {', '.join(r[0] for r in rows)}, ...")
        return rows[0][0]

    def claim(self, key: str, owner: str, placeholder: Mapping[str, Any]) -> tuple[str, Record | None]:
        """Atomically: 'complete' (with its record), 'busy' (a live owner holds it) or 'claimed'."""
        with self._tx(owner) as db:
            row = db.execute("SELECT * FROM datasets WHERE key = ?", (key,)).fetchone()
            if row is not None and row["complete"]:
                _used(db, key, owner)
                return "complete", _record(row)
            if row is not None and row["claimed_by"] not in (None, owner) and owner_alive(row["claimed_by"]):
                return "busy", _record(row)
            values = {k: placeholder.get(k) for k in ("kind", "step", "version", "uri")}
            db.execute(
                "INSERT INTO datasets(key, kind, step, version, uri, complete, claimed_by, claimed_at) "
                "VALUES (?, ?, ?, ?, ?, 0, ?, ?) ON CONFLICT(key) DO UPDATE SET "
                "claimed_by = excluded.claimed_by, claimed_at = excluded.claimed_at",
                (key, values["kind"] or "", values["step"] or "", str(values["version"] or ""),
                 values["uri"] or "", owner, time.time()),
            )
            _used(db, key, owner)
            return "claimed", None

    def release(self, key: str, owner: str) -> None:
        """Drop an incomplete claim (after a failure), keeping complete rows."""
        with self._tx(owner) as db:
            db.execute("DELETE FROM datasets WHERE key = ? AND complete = 0 AND claimed_by = ?", (key, owner))

    def put(self, rec: Record) -> None:
        """Insert or replace a record and its input edges in one transaction."""
        cols = asdict(rec)
        for c in _JSON_COLS:
            cols[c] = json.dumps(cols[c], sort_keys=True)
        cols["complete"] = int(bool(cols["complete"]))
        names = list(cols)
        with self._tx(rec.flow_run_id or rec.run_id) as db:
            db.execute(
                f"INSERT INTO datasets({', '.join(names)}, claimed_by, claimed_at) "
                f"VALUES ({', '.join('?' for _ in names)}, NULL, NULL) "
                f"ON CONFLICT(key) DO UPDATE SET {', '.join(f'{n} = excluded.{n}' for n in names)}, "
                "claimed_by = NULL, claimed_at = NULL",
                [cols[n] for n in names],
            )
            db.executemany(
                "INSERT OR REPLACE INTO edges(parent, child, run_id) VALUES (?, ?, ?)",
                [(p, rec.key, rec.run_id) for p in rec.inputs],
            )

    def list(self, kind: str | None = None, complete_only: bool = True) -> list[Record]:
        sql, args = "SELECT * FROM datasets WHERE 1=1", []
        if kind:
            sql, args = sql + " AND kind = ?", [kind]
        if complete_only:
            sql += " AND complete = 1"
        return [_record(r) for r in self._db.execute(sql + " ORDER BY created, key", args)]

    def parents(self, key: str) -> list[tuple[str, str | None]]:
        return [(r[0], r[1]) for r in self._db.execute(
            "SELECT parent, run_id FROM edges WHERE child = ? ORDER BY parent", (key,))]

    def children(self, key: str) -> list[tuple[str, str | None]]:
        return [(r[0], r[1]) for r in self._db.execute(
            "SELECT child, run_id FROM edges WHERE parent = ? ORDER BY child", (key,))]

    def delete(self, keys: list[str]) -> None:
        """Forget datasets (rows and their edges) in one transaction."""
        with self._tx() as db:
            for key in keys:
                db.execute("DELETE FROM datasets WHERE key = ?", (key,))
                db.execute("DELETE FROM edges WHERE child = ? OR parent = ?", (key, key))
                db.execute("DELETE FROM uses WHERE key = ?", (key,))

    def mark_incomplete(self, key: str) -> None:
        """Make a dataset incomplete and unclaimed (its edges stay): the next run computes it again."""
        with self._tx() as db:
            db.execute("UPDATE datasets SET complete = 0, claimed_by = NULL, claimed_at = NULL WHERE key = ?",
                       (key,))

    def take(self, key: str, owner: str, since: float) -> bool:
        """Claim the complete dataset ``key`` for its removal (it turns incomplete, claimed by ``owner``, so a run
        that wants it waits, then computes it again), unless a run used it at ``since`` (epoch seconds) or later."""
        with self._tx(owner) as db:
            return db.execute(
                "UPDATE datasets SET complete = 0, claimed_by = ?, claimed_at = ? WHERE key = ? AND complete = 1 "
                "AND NOT EXISTS (SELECT 1 FROM uses WHERE key = ? AND at >= ?)",
                (owner, time.time(), key, key, since)).rowcount == 1

    def rows(self, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """A read-only query (housekeeping reads runs, uses and edges whole)."""
        return [tuple(r) for r in self._db.execute(sql, args)]

    def claims(self) -> list[tuple[str, str, str | None]]:
        """(key, uri, claimed_by) of every incomplete row."""
        return [(r[0], r[1], r[2]) for r in self._db.execute(
            "SELECT key, uri, claimed_by FROM datasets WHERE complete = 0 ORDER BY key")]

    def clear(self) -> None:
        with self._tx() as db:
            db.execute("DELETE FROM datasets")
            db.execute("DELETE FROM edges")

    # -- runs --------------------------------------------------------------------------------
    def put_run(self, flow_run_id: str, **fields: Any) -> None:
        """Insert a run or update the given fields of it."""
        fields = {k: (json.dumps(v) if isinstance(v, dict | list) else v) for k, v in fields.items()}
        names = ["flow_run_id", *fields]
        update = ", ".join(f"{n} = excluded.{n}" for n in fields) or "flow_run_id = flow_run_id"
        with self._tx(flow_run_id) as db:
            db.execute(
                f"INSERT INTO runs({', '.join(names)}) VALUES ({', '.join('?' for _ in names)}) "
                f"ON CONFLICT(flow_run_id) DO UPDATE SET {update}",
                [flow_run_id, *fields.values()],
            )


def _used(db: sqlite3.Connection, key: str, owner: str) -> None:
    """Note that the run of claim owner ``host:pid:run`` uses ``key`` now (made or reused: what gc keeps)."""
    run = owner.split(":", 2)[2] if owner.count(":") >= 2 else ""
    if run:
        db.execute("INSERT OR REPLACE INTO uses(key, flow_run_id, owner, at) VALUES (?, ?, ?, ?)",
                   (key, run, owner, time.time()))


def _record(row: sqlite3.Row) -> Record:
    doc = {k: row[k] for k in row.keys() if k not in ("claimed_by", "claimed_at")}
    for c in _JSON_COLS:
        doc[c] = json.loads(doc[c]) if doc[c] else ({} if c != "inputs" else [])
    doc["complete"] = bool(doc["complete"])
    return Record(**doc)
