"""Who holds a claim (``host:pid:run``), and whether that process still runs."""

from __future__ import annotations

import os
import socket

__all__ = ["owner_id", "owner_alive"]


def owner_id(run_id: str | None = None) -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{run_id or ''}"


def owner_alive(owner: str | None) -> bool:
    """Is the process that claimed a key still running? (other hosts: assumed alive)."""
    if not owner:
        return False
    host, pid, _ = (owner.split(":", 2) + ["", ""])[:3]
    if host != socket.gethostname():
        return True
    try:
        pid_i = int(pid)
        os.kill(pid_i, 0)
    except (ValueError, ProcessLookupError):
        return False
    except PermissionError:
        return True
    try:  # a zombie is not alive
        with open(f"/proc/{pid_i}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True
