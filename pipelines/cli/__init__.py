"""The ``strata`` command line (contract in docs/architecture.md: names and --json shapes are stable).

One module per command group (:mod:`.run`: studies, run, serve, schedules; :mod:`.catalog`: catalog and plot;
:mod:`.segy`; :mod:`.server`; :mod:`.cluster`), each adding its commands to the parser assembled here. A handler
returns a document (:class:`~.render.Doc`), shown once as text or as JSON (``--json``) by :func:`~.render.render`.
"""

from __future__ import annotations

import argparse
import os
import sys

from strata_errors import InputError, StrataError

from . import catalog, cluster, render, run, segy, server

__all__ = ["main", "entry", "build_parser"]


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2
        raise InputError(f"{self.prog}: {message}")


def build_parser() -> argparse.ArgumentParser:
    common = _Parser(add_help=False)
    common.add_argument("--root", help="data root (default $STRATA_HOME or ./strata-data)")
    p = _Parser(prog="strata", description="Resumable, lineage-tracked imaging studies.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for register in (run.register, cluster.register, server.register, catalog.register, segy.register,
                     catalog.register_plot):
        register(sub, common)
    return p


def _show_warnings_once() -> None:
    """Warnings reach the terminal as one ``warning: …`` line on stderr each, however often raised."""
    import warnings

    shown: set[str] = set()

    def show(message, category, filename, lineno, file=None, line=None) -> None:
        text = str(message).strip()
        if text not in shown:
            shown.add(text)
            print(f"warning: {text}", file=sys.stderr)

    warnings.showwarning = show


def main(argv: list[str] | None = None) -> int:
    _show_warnings_once()
    try:
        args = build_parser().parse_args(argv)
        if getattr(args, "key", None):
            from data_catalog import check_key

            check_key(args.key)
        return render.render(args.fn(args), getattr(args, "json", False))
    except StrataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except OSError as exc:  # the system said no outside a step (a full disk, a vanished folder): one line
        if isinstance(exc, BrokenPipeError):
            raise
        where = f" ({exc.filename})" if exc.filename else ""
        print(f"error: {exc.strerror or exc}{where}", file=sys.stderr)
        return 1


def entry() -> None:
    """The console script: ``main``, then, after a run against the root's (or the user's) server, a
    fast exit — the catalog, lineage log and report are written and closed by then, and the
    interpreter's teardown of Prefect, Dask and xarray would only add seconds. An ephemeral run
    exits normally: Prefect stops its ephemeral server at exit."""
    try:
        rc = main()
        sys.stdout.flush()
    except BrokenPipeError:  # the reader (e.g. `| head`) stopped reading: not an error of ours
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        rc = 0
    sys.stderr.flush()
    if run.FAST_EXIT:
        os._exit(rc)
    sys.exit(rc)
