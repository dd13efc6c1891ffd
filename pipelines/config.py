"""Study configuration: YAML files → frozen pydantic models, named presets, ``--set`` overrides."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

import studies
from flows.config import StudyConfig
from strata_errors import InputError

__all__ = ["StudyConfig", "LoadedStudy", "load_study", "parse_override", "read_study_file"]



@dataclass(frozen=True)
class LoadedStudy:
    name: str
    preset: str
    overrides: tuple[str, ...]
    path: Path
    config: StudyConfig
    description: str
    paper: dict[str, Any] | None = None  # the paper's set-up beside the preset's (top-level key ``paper``)


def parse_override(text: str) -> tuple[list[str], Any]:
    """``a.b=value`` → (['a', 'b'], value parsed as YAML scalar/list)."""
    if "=" not in text:
        raise InputError(f"--set {text!r}: expected key=value")
    path, raw = text.split("=", 1)
    parts = path.strip().split(".")
    if not path.strip() or any(not p.isidentifier() for p in parts):
        raise InputError(f"--set {text!r}: {path!r} is not a field path like a.b")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError as exc:
        raise InputError(f"--set {text!r}: value is not valid YAML ({exc.problem})") from None
    return parts, value


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for k, v in extra.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _merge(out[k], v)
        else:
            out[k] = v
    return out


def read_study_file(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text()
    except OSError as exc:
        raise InputError(f"cannot read study file {path}: {exc.strerror}") from None
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = str(getattr(exc, "problem", exc))
        if "could not determine a constructor" in problem:  # a tag safe_load does not build, e.g. !!python/object
            raise InputError(f"{path}:{where}: YAML tag not allowed: {problem.split('tag ')[-1]} (a study file "
                             "holds plain YAML: mappings, lists, numbers, strings)") from None
        raise InputError(f"{path}:{where}: YAML syntax error: {problem}") from None
    # a registered study's own file is named by its file and holds no base values (they are its config model's)
    bundled = path.stem in studies.names() and path.resolve() == studies.study_file(path.stem).resolve()
    if not isinstance(doc, dict) or ("study" not in doc and not bundled):
        raise InputError(f"{path}: a study file is a mapping with keys study, config, presets")
    unknown = set(doc) - {"study", "description", "config", "presets", "cluster", "paper"}  # cluster: pipelines.cluster
    if unknown:
        raise InputError(f"{path}: unknown top-level key(s) {', '.join(sorted(unknown))}")
    return doc


def _field_error(path: Path, exc: ValidationError, overrides: dict[str, str]) -> InputError:
    err = exc.errors()[0]
    field = ".".join(str(p) for p in err["loc"]) or "(top)"
    given = [v for k, v in overrides.items() if k == field or k.startswith(field + ".")]  # a section's: its fields'
    source = ("--set " + ", --set ".join(given)) if given else str(path)
    msg = err["msg"]
    if err["type"] == "extra_forbidden":
        msg = "unknown field"
    shown = err["type"] != "extra_forbidden" and "input" in err and not isinstance(err["input"], dict)
    got = f" (got {err['input']!r})" if shown else ""  # a section's check names what it found
    more = f" (+{len(exc.errors()) - 1} more)" if len(exc.errors()) > 1 else ""
    if not err["loc"]:  # a check across fields: the message names them; the input is the whole config
        source = ("--set " + ", --set ".join(overrides.values())) if overrides else str(path)
        return InputError(f"{source}: {msg.removeprefix('Value error, ')}{more}")
    return InputError(f"{source}: field '{field}': {msg.removeprefix('Value error, ')}{got}{more}")


def load_study(name_or_path: str, preset: str | None, overrides: list[str] | tuple[str, ...],
               models: dict[str, type[StudyConfig]]) -> LoadedStudy:
    """Load a study by registry name or YAML path, apply a preset then ``--set`` overrides."""
    cand = Path(name_or_path)
    if name_or_path.endswith((".yaml", ".yml")) or cand.is_file():
        path = cand
        if not path.is_file():
            raise InputError(f"study file {path} does not exist")
    else:
        if name_or_path not in models:
            raise InputError(f"unknown study {name_or_path!r}; known: {', '.join(sorted(models))}")
        path = studies.study_file(name_or_path)
    doc = read_study_file(path)
    name = doc.get("study") or path.stem  # a bundled study file is named after its study
    if name not in models:
        raise InputError(f"{path}: unknown study {name!r}; known: {', '.join(sorted(models))}")
    presets = doc.get("presets") or {}
    preset = preset or ("small" if "small" in presets else None)
    if preset is not None and preset not in presets:
        raise InputError(f"{path}: unknown preset {preset!r}; presets: {', '.join(presets) or 'none'}")
    # the model's defaults, then the file's config (a bundled study file has none), its preset, the overrides: a
    # section given in part keeps the study's defaults of its other fields
    values = _merge(models[name]().model_dump(mode="json"), doc.get("config") or {})
    values = _merge(values, (presets.get(preset) or {}) if preset else {})
    sources: dict[str, str] = {}
    for text in overrides:
        parts, value = parse_override(text)
        node = values
        for p in parts[:-1]:
            if node.get(p) is None:  # an optional section the study leaves out by default (model.file)
                node[p] = {}
            node = node[p]
            if not isinstance(node, dict):
                raise InputError(f"--set {text}: {p!r} is not a section")
        node[parts[-1]] = value
        sources[".".join(parts)] = text
    try:
        config = models[name].model_validate(values)
    except ValidationError as exc:
        raise _field_error(path, exc, sources) from None
    paper = doc.get("paper")
    if paper is not None and not (isinstance(paper, dict) and isinstance(paper.get("setup"), list)):
        raise InputError(f"{path}: paper must be a mapping with source and setup (a list of rows item, paper, "
                         "preset)")
    return LoadedStudy(name, preset or "", tuple(overrides), path, config, doc.get("description", ""), paper)
