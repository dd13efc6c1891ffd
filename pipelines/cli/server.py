"""``strata server start|stop|status``: the data root's Prefect server (``flows.server``; no Prefect import)."""

from __future__ import annotations

from typing import Any

from strata_errors import InputError

from .catalog import catalog_of
from .render import Doc

__all__ = ["register"]


def _home(args) -> Any:
    from flows.runtime import prefect_home

    return prefect_home(catalog_of(args))


def cmd_server_start(args) -> Doc:
    from flows import server

    home = _home(args)
    if args.port is not None and not 0 < args.port < 65536:
        raise InputError(f"--port must be 1-65535, got {args.port}")
    info, started = server.ensure(home, args.host, args.port)
    server.wait_ready(home, info)
    state = "started" if started else "already running"
    return Doc(None, lambda _: [f"Prefect server {state}: {info.url} (UI {info.ui}, pid {info.pid}, log {info.log})"])


def cmd_server_stop(args) -> Doc:
    from flows import server

    info = server.stop(_home(args))
    return Doc(None, lambda _: [f"stopped the Prefect server at {info.url} (pid {info.pid})" if info
                                else "no Prefect server was running"])


def _status_text(doc: dict) -> list[str]:
    if not doc["running"]:
        return ["no Prefect server running for this data root"]
    return [f"{'running' if doc['healthy'] else 'starting'}: {doc['url']} (UI {doc['ui']}, pid {doc['pid']}, "
            f"log {doc['log']})"]


def cmd_server_status(args) -> Doc:
    from flows import server

    info = server.find(_home(args))
    healthy = info is not None and server.healthy(info.url)
    return Doc({"running": info is not None, "healthy": healthy, "url": info.url if info else None,
                "ui": info.ui if info else None, "pid": info.pid if info else None,
                "log": info.log if info else None}, _status_text)


def register(sub: Any, common: Any) -> None:
    """``server start|stop|status``."""
    group = sub.add_parser("server", help="the data root's Prefect server (UI included)")
    c = group.add_subparsers(dest="sub", required=True, parser_class=type(group))
    s = c.add_parser("start", parents=[common], help="start it (or say where it runs)")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int)
    s.set_defaults(fn=cmd_server_start)
    s = c.add_parser("stop", parents=[common], help="stop it")
    s.set_defaults(fn=cmd_server_stop)
    s = c.add_parser("status", parents=[common], help="is it running, where")
    s.add_argument("--json", action="store_true")
    s.set_defaults(fn=cmd_server_status)
