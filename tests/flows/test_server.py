"""The data root's Prefect server: started on first use and left running, found again by later runs
(attached, not restarted), one per root however many runs start at once; `strata server` commands."""

from __future__ import annotations

import json
import os
import threading
import time

import pytest

from flows import server

from ..conftest import Strata

MAD = ["--set", "generations=1", "--set", "chains=8", "--set", "pieces.per_piece=4", "--set", "loops=[fresh_data]"]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.fixture
def root_strata(tmp_path):
    """The CLI with no PREFECT_API_URL: runs use the root's own server; stopped at the end."""
    s = Strata(tmp_path / "root", None)
    s.env.pop("PREFECT_API_URL", None)
    s.env.pop("STRATA_EPHEMERAL", None)
    yield s
    s("server", "stop", "--root", str(s.root), check=False)


@pytest.mark.prefect
def test_a_run_starts_the_root_server_and_the_next_run_attaches(root_strata):
    s = root_strata
    assert "no Prefect server running" in s("server", "status", "--root", str(s.root)).stdout
    first = s("run", "mad_gaussian", *MAD, "--json")
    assert "started the Prefect server of this data root (UI http://127.0.0.1:" in first.stderr
    assert "strata server stop --root" in first.stderr
    status = json.loads(s("server", "status", "--root", str(s.root), "--json").stdout)
    assert status["running"] and status["healthy"] and status["ui"].startswith("http://127.0.0.1:")
    recorded = json.loads((s.root / "prefect" / "server.json").read_text())
    assert recorded["pid"] == status["pid"] and _alive(status["pid"])  # outlived the run that started it
    second = s("run", "mad_gaussian", *MAD, "--json")
    assert "started the Prefect server" not in second.stderr
    assert json.loads(second.stdout)["computed"] == []
    assert json.loads(s("server", "status", "--root", str(s.root), "--json").stdout)["pid"] == status["pid"]
    out = s("server", "stop", "--root", str(s.root)).stdout
    assert f"pid {status['pid']}" in out
    deadline = time.monotonic() + 10
    while _alive(status["pid"]) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(status["pid"]) and not (s.root / "prefect" / "server.json").exists()
    assert "no Prefect server was running" in s("server", "stop", "--root", str(s.root)).stdout


def test_runs_starting_at_once_share_one_server(tmp_path):
    home = tmp_path / "prefect"
    got: list[server.ServerInfo] = []
    threads = [threading.Thread(target=lambda: got.append(server.ensure(home)[0])) for _ in range(3)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len({i.pid for i in got}) == 1 and len({i.url for i in got}) == 1
        assert server.find(home).pid == got[0].pid
    finally:
        server.stop(home)
    assert server.find(home) is None


def test_a_stale_record_is_not_attached(tmp_path):
    """A server.json whose pid is gone (a reboot, a kill) is ignored, not waited for."""
    home = tmp_path / "prefect"
    home.mkdir()
    (home / "server.json").write_text(json.dumps({"url": "http://127.0.0.1:9/api", "pid": 2**22 + 12345,
                                                  "host": "127.0.0.1", "port": 9, "log": "x", "started": 0.0,
                                                  "prefect": "3"}))
    assert server.find(home) is None
    (home / "server.json").write_text(json.dumps({"url": "http://127.0.0.1:9/api", "pid": os.getpid(),
                                                  "host": "127.0.0.1", "port": 9, "log": "x", "started": 0.0,
                                                  "prefect": "3"}))
    assert server.find(home) is None  # alive, but not a Prefect server: a recycled pid


def test_the_watch_restarts_a_dead_server_a_few_times_then_gives_up(tmp_path, monkeypatch, capsys):
    """A server that dies again right after each start (its port taken, say) is started `restarts` times, then the
    watch warns once and stops; nothing is spawned for real here (``ensure`` is replaced)."""
    dead = 2 ** 22 + 12345  # no such process
    info = server.ServerInfo("http://127.0.0.1:1/api", dead, "127.0.0.1", 1, str(tmp_path / "server.log"), 0.0, "x")
    starts = []

    def ensure(home, host, port):
        starts.append((host, port))
        return info, True  # "started", and dead again at once

    monkeypatch.setattr(server, "ensure", ensure)
    stop = server.watch(tmp_path, info, every=0.01, restarts=3)
    deadline = time.monotonic() + 10
    while "not starting it again" not in capsys.readouterr().err and time.monotonic() < deadline:
        time.sleep(0.05)
    stop()
    assert starts == [("127.0.0.1", 1)] * 3
