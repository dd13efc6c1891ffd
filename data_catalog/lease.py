"""The write lease of an object-store root: one run at a time writes it, whichever host it runs on.

Each host keeps its own SQLite index of a remote root (in its cache dir), so claims in that index
coordinate the runs of one host only. The lease is the object ``<root>/.strata/lease``, a small
JSON document {host, pid, run, expires}: the run that holds it renews it from a background thread
(every ``ttl / 3`` seconds, ``ttl`` ahead), a run that finds it held by another live run waits and
then fails with one line, and a lease past its expiry (a host that died) or of a dead process on
this host is taken over. Every change is a conditional write where the store has them (S3:
``If-None-Match`` to create, ``If-Match`` on the ETag read to renew or take over), so two runs
never both believe they hold it. Expiry compares wall clocks: hosts need synchronized clocks
(NTP), with a skew well under ``ttl``.
"""

from __future__ import annotations

import atexit
import json
import os
import socket
import threading
import time
import warnings
from datetime import UTC, datetime
from typing import Any

import fsspec

from strata_errors import InputError, RunError

from .owners import owner_alive

__all__ = ["Lease", "LEASE_PATH", "lease_of", "default_wait"]

LEASE_PATH = ".strata/lease"
_LEASES: dict[tuple[str, str], Lease] = {}
_REGISTRY = threading.Lock()


def lease_of(fs: fsspec.AbstractFileSystem, path: str, root: str, host: str | None = None,
             ttl: float = 60.0) -> Lease:
    """The one :class:`Lease` object of ``root`` in this process (per host name), so several catalogs of one
    root in one process share its holds instead of taking it from each other."""
    host = host or socket.gethostname()
    with _REGISTRY:
        if (root, host) not in _LEASES:
            _LEASES[root, host] = Lease(fs, path, root, host=host, ttl=ttl)
        return _LEASES[root, host]


def default_wait() -> float:
    """How long a run waits for another run's lease: ``$STRATA_LEASE_WAIT`` seconds, else 300."""
    text = os.environ.get("STRATA_LEASE_WAIT") or "300"
    try:
        value = float(text)
    except ValueError:
        raise InputError(f"STRATA_LEASE_WAIT={text!r} is not a number of seconds") from None
    if value < 0:
        raise InputError(f"STRATA_LEASE_WAIT={text!r} must be ≥ 0 seconds")
    return value


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="seconds")


def _expiry(ttl: float) -> dict[str, Any]:
    """``expires`` (epoch seconds, what is compared) and ``expires_at`` (the same, for people)."""
    t = time.time() + ttl
    return {"expires": t, "expires_at": _iso(t)}


class Lease:
    """The lease of one root, for one process (``host`` may be injected, as if this were another machine).

    ``acquire(run)`` returns once this process holds it (again: it is re-entrant and counted), ``release()``
    gives one hold back and, at the last, deletes the object; ``check()`` raises when the lease was lost.
    """

    def __init__(self, fs: fsspec.AbstractFileSystem, path: str, root: str, *, host: str | None = None,
                 ttl: float = 60.0):
        self.fs, self.path, self.root = fs, path, root
        self.host = host or socket.gethostname()
        self.pid = os.getpid()
        self.ttl = float(ttl)
        self._conditional = "s3" in (fs.protocol if isinstance(fs.protocol, tuple) else (fs.protocol,))
        self._holds = 0
        self._etag: str | None = None
        self._doc: dict[str, Any] = {}
        self._lost: str | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __repr__(self) -> str:
        return f"Lease({self.root!r}, host={self.host!r}, held={self._holds > 0})"

    # -- the object ------------------------------------------------------------------------------
    def read(self) -> tuple[dict[str, Any] | None, str | None]:
        """(document, ETag) of the lease object, or (None, None) when there is none."""
        try:
            tag = self.fs.info(self.path).get("ETag") if self._conditional else None
            doc = json.loads(self.fs.cat_file(self.path))
        except FileNotFoundError:
            return None, None
        except ValueError:  # a torn or foreign object: treat it as expired
            return {"host": "?", "pid": 0, "run": None, "expires": 0.0}, tag
        return doc, tag

    def _put(self, doc: dict[str, Any], etag: str | None, create: bool = False) -> str | None:
        """Write ``doc`` if the lease is still as read: absent (``create``), or the object of that ETag. Returns
        the new ETag (None where the store gives none); FileExistsError when another run changed it meanwhile."""
        data = json.dumps(doc, sort_keys=True).encode()
        if create:
            out = self.fs.pipe_file(self.path, data, mode="create")
        elif self._conditional and etag:
            try:
                out = self.fs.pipe_file(self.path, data, IfMatch=etag)
            except OSError:  # s3fs reports a failed If-Match as EINVAL: was it one?
                if self.read()[1] != etag:
                    raise FileExistsError(f"{self.path} changed meanwhile") from None
                raise
        else:  # a store without conditional overwrites: two hosts taking over one expired lease may race
            out = self.fs.pipe_file(self.path, data)
        return out.get("ETag") if isinstance(out, dict) else None

    def _mine(self, doc: dict[str, Any] | None) -> bool:
        return bool(doc) and doc.get("host") == self.host and doc.get("pid") == self.pid

    def _takeable(self, doc: dict[str, Any]) -> bool:
        """Expired, or held by a dead process of this host."""
        if float(doc.get("expires", 0.0)) < time.time():
            return True
        return doc.get("host") == self.host and not owner_alive(f"{self.host}:{doc.get('pid')}:")

    # -- holding ---------------------------------------------------------------------------------
    def acquire(self, run: str | None = None, wait: float = 300.0, poll: float = 1.0) -> None:
        """Hold the lease (waiting up to ``wait`` seconds while another run holds it), then keep it renewed."""
        with self._lock:
            if self._holds:
                self._holds += 1
                return
            self.pid = os.getpid()  # a forked child is not its parent
            self._take(run, wait, poll)
            self._holds = 1
            self._lost = None
            self._stop.clear()
            self._thread = threading.Thread(target=self._renew, name="strata-lease", daemon=True)
            self._thread.start()
        atexit.register(self._release_all)

    def _take(self, run: str | None, wait: float, poll: float) -> None:
        deadline = time.monotonic() + wait
        warned = False
        while True:
            doc, tag = self.read()
            if doc is None or self._mine(doc) or self._takeable(doc):
                new = {"host": self.host, "pid": self.pid, "run": run, **_expiry(self.ttl)}
                try:
                    self._etag = self._put(new, tag, create=doc is None)
                    self._doc = new
                    return
                except FileExistsError:  # another run got there first: look again
                    continue
            holder = f"run {doc.get('run') or '?'} on {doc.get('host')} (pid {doc.get('pid')})"
            until = _iso(float(doc.get("expires", 0.0)))
            if time.monotonic() >= deadline:
                raise RunError(f"data root {self.root} is in use by {holder}, lease {self.root}/{LEASE_PATH} "
                               f"renewed until {until}; waited {wait:.0f} s (STRATA_LEASE_WAIT)")
            if not warned:
                warnings.warn(f"data root {self.root} is in use by {holder}, lease renewed until {until}: "
                              f"waiting up to {wait:.0f} s", stacklevel=4)
                warned = True
            time.sleep(min(poll, max(0.0, deadline - time.monotonic())))

    def _renew(self) -> None:
        while not self._stop.wait(self.ttl / 3):
            with self._lock:
                if not self._holds:
                    return
                doc = {**self._doc, **_expiry(self.ttl)}
                try:
                    self._etag = self._put(doc, self._etag)
                    self._doc = doc
                except FileExistsError:
                    self._lost = "another run took it over"
                    return
                except Exception as exc:  # the store is unreachable for a moment: retry until the lease expires
                    if time.time() > float(self._doc["expires"]):
                        self._lost = f"it could not be renewed ({type(exc).__name__}: {exc})"
                        return

    def check(self) -> None:
        """Raise RunError when the lease this process holds was lost (not renewed in time, taken over)."""
        if self._lost:
            raise RunError(f"lost the lease of data root {self.root}: {self._lost}; stopping before writing more")

    @property
    def held(self) -> bool:
        return self._holds > 0 and not self._lost

    def release(self) -> None:
        """Give one hold back; the last one stops renewing and deletes the lease if it is still ours."""
        with self._lock:
            if not self._holds:
                return
            self._holds -= 1
            if self._holds:
                return
            self._stop.set()
        if self._thread is not None:
            self._thread.join(5.0)
        try:
            doc, tag = self.read()
            if self._mine(doc) and (not self._conditional or tag == self._etag):
                self.fs.rm_file(self.path)
        except Exception:  # the store is unreachable: the lease expires by itself
            pass
        atexit.unregister(self._release_all)

    def _release_all(self) -> None:
        while self._holds:
            self.release()
