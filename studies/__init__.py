"""The studies, one module each: ``studies/<name>.py`` declares the study ``<name>`` (its config model, its
steps and flow body, its claims: ``@study`` of :mod:`flows.declare`) and ``studies/<name>.yaml`` beside it holds
its presets and its paper's set-up. ``shared/`` holds what several studies use (config sections, steps, the
ASPIRE loop). The registry is derived from these files: adding a study is adding its module and its YAML.

Other packages of studies laid out the same way (a lab's own, a test's) join the registry through the environment
variable ``STRATA_STUDY_PACKAGES`` (comma-separated importable package names, e.g. ``mylab.studies``); a name
may be registered once.

Listing the studies reads the files (names, summaries) without importing them; :func:`load` imports one.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import os
from pathlib import Path
from typing import Any

from strata_errors import InputError

__all__ = ["DIR", "ENV", "names", "study_file", "summary", "load"]

DIR = Path(__file__).parent
ENV = "STRATA_STUDY_PACKAGES"


def _packages() -> dict[str, Path]:
    """{package: its folder} of every package of studies: this one, then those of ``$STRATA_STUDY_PACKAGES``."""
    out = {__name__: DIR}
    for name in filter(None, (p.strip() for p in os.environ.get(ENV, "").split(","))):
        try:
            spec = importlib.util.find_spec(name)
        except ImportError:
            spec = None
        if spec is None or not spec.submodule_search_locations:
            raise InputError(f"{ENV}: {name!r} is not an importable package (is its folder on PYTHONPATH?)")
        out[name] = Path(next(iter(spec.submodule_search_locations)))
    return out


def _where() -> dict[str, tuple[str, Path]]:
    """{study: (package, folder)}: a module with a YAML of the same name beside it."""
    found: dict[str, tuple[str, Path]] = {}
    for package, folder in _packages().items():
        for p in sorted(folder.glob("*.yaml")):
            if (folder / f"{p.stem}.py").is_file():
                if p.stem in found:
                    raise InputError(f"study {p.stem!r} is declared by both {found[p.stem][0]} and {package}")
                found[p.stem] = (package, folder)
    return found


def names() -> list[str]:
    """Every registered study."""
    return sorted(_where())


def study_file(name: str) -> Path:
    """The study's YAML (presets, paper)."""
    return _where()[name][1] / f"{name}.yaml"


def summary(name: str) -> str:
    """The ``summary=`` of the study's ``@study(…)`` declaration, read from its source (nothing imported)."""
    tree = ast.parse((_where()[name][1] / f"{name}.py").read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "study":
            for kw in node.keywords:
                if kw.arg == "summary":
                    return str(ast.literal_eval(kw.value))
    return ""


def load(name: str) -> Any:
    """The :class:`flows.declare.Study` declared in the study's module."""
    from flows.declare import Study

    package, _ = _where()[name]
    module = importlib.import_module(f"{package}.{name}")
    found = [v for v in vars(module).values() if isinstance(v, Study) and v.name == name]
    if len(found) != 1:
        raise LookupError(f"{module.__name__} declares {len(found)} studies named {name!r} (@study), not one")
    return found[0]
