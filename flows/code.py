"""Code identity of what produced a dataset: function name, source hash, git state, package versions.

One module for the step runtime and the CLI (``catalog stale``, ``segy import``) alike.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import subprocess
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

__all__ = ["function_name", "module_source_hash", "source_hash", "git_info", "package_versions", "code_identity"]

_PACKAGES = ("numpy", "xarray", "zarr", "dask", "distributed", "prefect", "devito", "torch", "segyio", "strata")


def function_name(fn: Callable[..., Any]) -> str:
    """``module:qualname`` of a function (what lineage records and ``catalog stale`` looks up)."""
    return f"{fn.__module__}:{fn.__qualname__}"


def module_source_hash(module: str) -> str | None:
    """sha256 (16 hex) of a module's source file, or None when it can no longer be found."""
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.origin:
        return None
    with open(spec.origin, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()[:16]


def source_hash(fn: Callable[..., Any]) -> str | None:
    """The source hash recorded for a function: its module's file (``catalog stale`` compares)."""
    return module_source_hash(fn.__module__)


@functools.lru_cache(maxsize=1)
def git_info() -> dict[str, Any]:
    """git sha and dirty flag of the checkout this code runs from (None outside git)."""
    repo = Path(__file__).resolve().parents[1]
    try:
        sha = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True,
                             timeout=10, check=True).stdout.strip()
        dirty = bool(subprocess.run(["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=no"],
                                    capture_output=True, text=True, timeout=10, check=True).stdout.strip())
    except (OSError, subprocess.SubprocessError):
        return {"git_sha": None, "dirty": None}
    return {"git_sha": sha, "dirty": dirty}


@functools.lru_cache(maxsize=1)
def package_versions() -> dict[str, str]:
    """Versions of the packages whose behaviour a result depends on (those installed)."""
    out = {}
    for name in _PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return out


def code_identity(fn: Callable[..., Any], version: str) -> dict[str, Any]:
    """The ``code`` block of a dataset's lineage: git state, function, source hash, declared version."""
    return {**git_info(), "function": function_name(fn), "source_hash": source_hash(fn), "version": version}
