"""What a command hands back, and the one place it is shown: as text, or as JSON with ``--json``.

A handler returns a :class:`Doc` (or the bare data, shown as JSON): ``data`` is what ``--json`` prints (one JSON
document on stdout), ``text`` how to show it otherwise. Handlers do not print their result themselves; long
commands (``run``, ``serve``) may report progress on stderr while they work.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from strata_errors import StrataError

__all__ = ["Doc", "render", "console"]


@dataclass
class Doc:
    """A command's result. ``text(data)``: the lines to print on stdout (or ``None`` when it prints itself, e.g.
    a rich table); without it the text form is the JSON form; ``data`` ``None`` prints nothing. ``notes``: lines
    for stderr in both forms. ``code``: the exit code; ``error``: raised once the document is shown (its
    ``error: …`` line and exit code come from ``main``)."""

    data: Any = None
    text: Callable[[Any], Iterable[str] | None] | None = None
    notes: Sequence[str] = ()
    code: int = 0
    error: StrataError | None = None


def _json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


def render(result: Doc | Any, as_json: bool = False) -> int:
    """Show ``result`` once (JSON with ``as_json``, else its text); return its exit code."""
    doc = result if isinstance(result, Doc) else Doc(result)
    if doc.data is not None or doc.text is not None:
        if as_json or doc.text is None:
            _json(doc.data)
        else:
            for line in doc.text(doc.data) or ():
                print(line)
    for note in doc.notes:
        print(note, file=sys.stderr)
    if doc.error is not None:
        raise doc.error
    return doc.code


def console(stderr: bool = True, **options: Any) -> Any:
    """A rich console (stderr by default: progress and tables of long commands), no highlighting."""
    from rich.console import Console

    return Console(stderr=stderr, highlight=False, **options)
