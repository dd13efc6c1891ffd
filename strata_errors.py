"""The one exception root for expected failures; the CLI maps them to exit codes.

A leaf module: every package (tasks, data_catalog, flows, pipelines) may import it.
"""

from __future__ import annotations

__all__ = ["StrataError", "InputError", "RunError"]


class StrataError(Exception):
    """An expected failure: the CLI prints ``error: <message>`` and exits with ``exit_code``."""

    exit_code = 1


class InputError(StrataError, ValueError):
    """Bad input (configuration, arguments, data): exit 2, nothing written."""

    exit_code = 2


class RunError(StrataError):
    """A run or check that failed: exit 1."""

    exit_code = 1
