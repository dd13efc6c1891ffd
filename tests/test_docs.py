"""The docs check: every ``strata …`` command written in the README and in ``docs/`` is one the real parser takes,
and the troubleshooting page has a row, with its line, for every case of the bad-input battery.

A command is read from fenced code blocks (lines that start with ``strata``, after any ``VAR=value``) and from
inline code spans. Its command words must name a real command, and every option it shows must be one that command
has (read from its ``--help``); a concrete command — no ``[…]``, ``|`` or ``...`` — must also parse, with
placeholders such as ``N`` or ``EXPR`` given sample values.
"""

from __future__ import annotations

import contextlib
import io
import re
import shlex
from functools import cache
from pathlib import Path

import pytest

from pipelines.cli import build_parser
from strata_errors import InputError
from tests.pipelines.test_bad_input import CASES

REPO = Path(__file__).resolve().parents[1]
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
SAMPLES = {"N": "2", "S": "60", "P": "4200", "D": "7d", "DURATION": "7d", "EXPR": "0 2 * * *",
           "ADDR": "tcp://10.0.0.1:8786", "H": "0.0.0.0", "K": "velocity_model"}


def _commands(text: str) -> list[str]:
    """The ``strata …`` commands of a markdown text: lines of fenced blocks, and inline code spans (a span that only
    names a command, as in "`strata run` prints…", is kept as that name)."""
    text = re.sub(r"\n## Bad input\n.*?\n## ", "\n## ", text, flags=re.S)  # bad on purpose: the battery runs them
    found, fenced = [], False
    for line in text.splitlines():
        if line.startswith("```"):
            fenced = not fenced
            continue
        if fenced:
            line = re.sub(r"^(\w+=\S+ )+", "", line.strip())  # VAR=value strata …
            if line.startswith("strata "):
                found.append(line.split("  ")[0])  # a synopsis' description follows two spaces
    prose = re.sub(r"```.*?```", "", text, flags=re.S)
    found += [" ".join(m.split()) for m in re.findall(r"`(strata [^`]+)`", prose)]
    return found


ALL = sorted({(doc.name, cmd) for doc in DOCS for cmd in _commands(doc.read_text())})


@cache
def _help(path: tuple[str, ...]) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit):
        build_parser().parse_args([*path, "--help"])
    return out.getvalue()


def _subcommands(path: tuple[str, ...]) -> set[str]:
    usage = _help(path).split("\n\n")[0]
    choices = re.search(r"\{([\w,-]+)\}", usage)
    return set(choices[1].split(",")) if choices else set()


def test_the_docs_show_commands():
    assert len(ALL) > 40 and {"README.md", "user-guide.md", "troubleshooting.md"} <= {doc for doc, _ in ALL}


@pytest.mark.parametrize("doc, command", ALL, ids=[f"{d}:{c[:60]}" for d, c in ALL])
def test_every_command_in_the_docs_is_one_strata_takes(doc, command):
    words = shlex.split(command, comments=True)[1:]
    path: tuple[str, ...] = ()
    for word in words:
        if word not in _subcommands(path):
            break
        path += (word,)
    if not path and all(w.startswith("-") for w in words):  # strata --help
        return
    rest = words[len(path):]
    if rest in ([], ["…"]) and path:  # the name of a command or group in prose: "`strata catalog …` starts fast"
        return
    assert path and not _subcommands(path), f"{doc}: {command!r} names no command"
    known = set(re.findall(r"(?<![\w-])(--?[a-zA-Z][\w-]*)", _help(path)))
    shown = {m for w in words for m in re.findall(r"(?:^|[\[(|])(--?[a-zA-Z][\w-]*)", w)}
    assert shown <= known, f"{doc}: {command!r}: strata {' '.join(path)} has no {sorted(shown - known)}"
    if not re.search(r"[\[\]|]|\.\.\.|…", command.replace("s3://…", "s3://bucket")):
        argv = [SAMPLES.get(w, w) for w in words]
        try:
            build_parser().parse_args(argv)
        except InputError as exc:
            pytest.fail(f"{doc}: {command!r} does not parse: {exc}")


def _troubleshooting_rows() -> dict[str, list[str]]:
    rows = {}
    for line in (REPO / "docs" / "troubleshooting.md").read_text().splitlines():
        if line.startswith("| ") and not line.startswith("|---"):
            cells = [c.strip() for c in line.strip("|").split(" | ")]
            rows[cells[0]] = cells
    return rows


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_every_bad_input_case_has_its_row_in_troubleshooting(case):
    """The row of the case (its "case" column), with its exit code, quoting the line the battery checks."""
    rows = _troubleshooting_rows()
    assert case.what in rows, f"docs/troubleshooting.md has no row {case.what!r}"
    cells = rows[case.what]
    assert cells[2] == str(case.code), cells
    assert case.says in cells[3].replace("\\|", "|"), (case.says, cells[3])
