"""The Prefect server of a data root: started on first use, left running, found again by later runs.

Its URL and pid live in ``<prefect home>/server.json``, written under a file lock so that two runs
starting at once share one server. The server runs in its own session with its log in a file (a
server whose stderr pipe closes dies on its first log line), so it outlives the run that started
it — by design the one child that does; ``strata server stop`` ends it. Nothing here imports Prefect.
"""

from __future__ import annotations

import fcntl
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path

from strata_errors import InputError, RunError

__all__ = ["ServerInfo", "ensure", "wait_ready", "find", "healthy", "stop", "server_env", "free_port", "command",
           "watch", "DEFAULT_HOST", "UI_API_URL"]

STARTUP_SECONDS = 120.0
DEFAULT_HOST = "127.0.0.1"  # loopback only: other machines reach a root's server only when asked (--host ADDR)
WILDCARD_HOSTS = ("0.0.0.0", "::", "")  # bind addresses meaning "every interface": no browser's address


@dataclass(frozen=True)
class ServerInfo:
    url: str
    pid: int
    host: str
    port: int
    log: str
    started: float
    prefect: str

    @property
    def ui(self) -> str:
        """The UI's address: the server's, but the loopback for a server bound to every interface (a browser
        elsewhere uses this machine's name or address instead, and the UI follows it: see ``UI_API_URL``)."""
        if self.host in WILDCARD_HOSTS:
            return f"http://127.0.0.1:{self.port}"
        return self.url.removesuffix("/api")


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _prefect_version() -> str:
    try:
        return metadata.version("prefect")
    except metadata.PackageNotFoundError:  # pragma: no cover
        return "?"


UI_API_URL = "/api"
"""Where the root's UI asks for its API: the same origin the browser loaded the UI from.

Prefect's UI asks ``GET /ui-settings`` for its API address, and Prefect derives that from the
*settings* ``PREFECT_SERVER_API_HOST``/``PORT`` (127.0.0.1:4200 by default), not from the
``--host``/``--port`` a server was started with (nor, worse, from ``PREFECT_API_URL`` when the user's
shell has one: another server). A root's server runs on a free port, so its UI would ask 4200 — some
other server or none ("Can't connect to Server API"). A path resolves against the page's own origin,
so it is right for every address the browser used: the loopback; the ``--host ADDR`` given; any of the
machine's names or addresses when bound to 0.0.0.0 or :: (no browser can use a wildcard address, and
the loopback would be wrong for a browser on another machine); an SSH tunnel to another local port.
Both of Prefect's UIs (V1 and V2) prefix their API requests with it, a path as well as a URL
(tests/flows/test_server_ui.py checks them in a headless browser)."""


def server_env(home: Path) -> dict[str, str]:
    """The server's environment: its home, analytics off, UI on and asking this server's API (see
    ``UI_API_URL``), start-up work that does nothing for a local run off — block auto-registration
    (strata uses no blocks), the triggers service, and the database migration once this Prefect version
    has migrated this home's database."""
    env = {**os.environ, "PREFECT_HOME": str(home), "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
           "PREFECT_SERVER_UI_ENABLED": "true", "PREFECT_SERVER_UI_API_URL": UI_API_URL,
           "PREFECT_SERVER_REGISTER_BLOCKS_ON_START": "false",
           "PREFECT_SERVER_MEMOIZE_BLOCK_AUTO_REGISTRATION": "false",
           "PREFECT_SERVER_SERVICES_TRIGGERS_ENABLED": "false", "PREFECT_LOGGING_LEVEL": "INFO"}
    # another server's address; the UI's API address by an older name; an API path other than the /api that
    # ServerInfo.url and UI_API_URL name
    for name in ("PREFECT_API_URL", "PREFECT_UI_API_URL", "PREFECT_SERVER_API_BASE_PATH"):
        env.pop(name, None)
    if _migrated_marker(home).exists():
        env["PREFECT_SERVER_DATABASE_MIGRATE_ON_START"] = "false"
    return env


def command(host: str = DEFAULT_HOST, port: int = 4200) -> list[str]:
    """The command line of a root's server: it listens on ``host`` alone (loopback unless asked otherwise)."""
    return [sys.executable, "-m", "prefect", "server", "start", "--host", host, "--port", str(port)]


def _migrated_marker(home: Path) -> Path:
    return home / f".migrated-{_prefect_version()}"


@contextmanager
def _locked(home: Path) -> Iterator[None]:
    home.mkdir(parents=True, exist_ok=True)
    with open(home / "server.lock", "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _alive(pid: int) -> bool:
    """Is ``pid`` running (not gone, not a zombie awaiting its reaper)?"""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    status = Path(f"/proc/{pid}/status")
    return not status.exists() or "\nState:\tZ" not in status.read_text()


def _is_server(pid: int) -> bool:
    """Is ``pid`` alive and (where /proc tells) a Prefect server? (a recycled pid is not ours)"""
    if not _alive(pid):
        return False
    cmdline = Path(f"/proc/{pid}/cmdline")
    if not cmdline.exists():
        return True
    # empty for a moment while a process exec's (its parent's Popen has already returned: another run's ensure()
    # would take the server just started for a dead one and start a second) or exits, and for good in a kernel
    # thread: ask again, briefly
    for _ in range(50):
        try:
            raw = cmdline.read_bytes()
        except OSError:
            return False
        if raw:
            args = raw.split(b"\0")
            return b"prefect" in args and b"server" in args and b"start" in args
        if not _alive(pid):
            return False
        time.sleep(0.01)
    return False


def healthy(url: str, timeout: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=timeout) as r:
            return r.status == 200
    except OSError:
        return False


def find(home: Path) -> ServerInfo | None:
    """The recorded server of this home when its process is alive (it may still be booting)."""
    path = home / "server.json"
    try:
        info = ServerInfo(**json.loads(path.read_text()))
    except (OSError, ValueError, TypeError):
        return None
    return info if _is_server(info.pid) else None


def ensure(home: Path, host: str = DEFAULT_HOST, port: int | None = None) -> tuple[ServerInfo, bool]:
    """(the home's server, whether it was started now): the recorded one while its process lives,
    else a new one, spawned without waiting for it (it boots while the caller imports)."""
    with _locked(home):
        info = find(home)
        if info is not None:
            if port is not None and (info.port != port or info.host != host):
                raise InputError(f"a Prefect server for this root already runs at {info.url}; "
                                 "stop it first (strata server stop)")
            return info, False
        port = port or free_port(host)
        log = home / "server.log"
        if not os.environ.get("PREFECT_API_DATABASE_CONNECTION_URL"):  # its SQLite file, with the user's umask
            os.close(os.open(home / "prefect.db", os.O_CREAT | os.O_WRONLY, 0o666))  # (SQLite: 0644 whatever it is)
        with open(log, "ab") as out:
            proc = subprocess.Popen(command(host, port), stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    env=server_env(home), start_new_session=True)
        info = ServerInfo(f"http://{host}:{port}/api", proc.pid, host, port, str(log), time.time(),
                          _prefect_version())
        (home / "server.json").write_text(json.dumps(asdict(info), indent=2))
        return info, True


def wait_ready(home: Path, info: ServerInfo, timeout: float = STARTUP_SECONDS) -> None:
    """Block until the server answers ``/health`` (RunError, naming its log, if it dies or hangs)."""
    t0 = time.monotonic()
    deadline = t0 + timeout
    while not healthy(info.url):
        # a process started a moment ago may not have exec'd `prefect server` yet (its cmdline is still ours)
        if not _alive(info.pid) or (time.monotonic() - t0 > 5 and not _is_server(info.pid)):
            raise RunError(f"the Prefect server of {home} exited during start-up; see {info.log}")
        if time.monotonic() > deadline:
            raise RunError(f"the Prefect server at {info.url} did not answer within {timeout:.0f} s; see {info.log}")
        time.sleep(0.1)
    _migrated_marker(home).touch()


def stop(home: Path, timeout: float = 20.0) -> ServerInfo | None:
    """Stop the home's server (its whole session) and forget it; None when none was running."""
    if not home.is_dir():  # nothing was ever started here: create nothing either
        return None
    with _locked(home):
        info = find(home)
        (home / "server.json").unlink(missing_ok=True)
        if info is None:
            return None
        try:
            os.killpg(info.pid, signal.SIGTERM)
        except ProcessLookupError:
            return info
        deadline = time.monotonic() + timeout
        while _is_server(info.pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if _is_server(info.pid):
            os.killpg(info.pid, signal.SIGKILL)
        return info


def watch(home: Path, info: ServerInfo, every: float = 1.0, restarts: int = 3) -> Callable[[], None]:
    """Keep a run's server up: a thread that, when the server's process dies (killed, out of memory), starts
    another on the same host and port, so the run's Prefect client finds it again while it retries its calls
    (about a minute: flow and task runs live in the server's database, which the new server opens), at most
    ``restarts`` times (one that cannot start, its port taken, is not respawned forever). Returns the function
    that stops watching. A server of another address recorded meanwhile is left alone."""
    done = threading.Event()

    def loop() -> None:
        current, left = info, restarts
        while not done.wait(every):
            if _alive(current.pid):
                continue
            if left == 0:
                print(f"warning: the Prefect server of this data root died {restarts + 1} times during the run; "
                      f"not starting it again (its log: {current.log})", file=sys.stderr, flush=True)
                return
            try:
                new, started = ensure(home, current.host, current.port)
            except (InputError, OSError):
                return  # another server now serves this root, or none can start: the run's calls fail
            if started:
                left -= 1
                print(f"warning: the Prefect server of this data root (pid {current.pid}) died during the run; "
                      f"started another at {new.url} (pid {new.pid})", file=sys.stderr, flush=True)
            current = new

    thread = threading.Thread(target=loop, name="strata-server-watch", daemon=True)
    thread.start()

    def stop_watching() -> None:
        done.set()
        thread.join(timeout=5)

    return stop_watching
