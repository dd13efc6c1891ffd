"""``strata studies STUDY``: a study's fields — type and bounds (from its config model's JSON schema), the study
file's default, the unit or note written beside it in the study file — and what each preset changes."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

__all__ = ["describe_study", "field_comments"]

_LINE = re.compile(r"^(?P<indent> *)(?P<key>[A-Za-z_][\w-]*):(?P<rest>.*)$")


def field_comments(text: str, section: str = "config") -> dict[str, str]:
    """{dotted field: the comment written on its line} of the ``section`` block of a study YAML file
    (nesting by indentation, as the study files are written; flow mappings count as one field)."""
    out: dict[str, str] = {}
    stack: list[tuple[int, str]] = []  # (indent, key) of the open mappings
    inside = False
    for line in text.splitlines():
        m = _LINE.match(line)
        if not m:
            continue
        indent, key, rest = len(m["indent"]), m["key"], m["rest"]
        if indent == 0:
            inside, stack = key == section, []
            continue
        if not inside:
            continue
        while stack and stack[-1][0] >= indent:
            stack.pop()
        path = ".".join([k for _, k in stack] + [key])
        value, _, comment = rest.partition(" #")
        if comment.strip():
            out[path] = comment.strip()
        if not value.strip():  # a block mapping opens here
            stack.append((indent, key))
    return out


def _flatten(doc: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(doc, Mapping) and doc:
        for k, v in doc.items():
            yield from _flatten(v, f"{prefix}.{k}" if prefix else str(k))
    else:
        yield prefix, doc


def _kind(schema: Mapping[str, Any], defs: Mapping[str, Any]) -> str:
    """A short type of a leaf schema: ``integer in [1, 16]``, ``number > 0 or null``, ``one of a, b``."""
    if "$ref" in schema:
        return str(schema["$ref"]).rsplit("/", 1)[-1]
    if "anyOf" in schema:
        return " or ".join(dict.fromkeys(_kind(s, defs) for s in schema["anyOf"]))
    if "enum" in schema:
        return "one of " + ", ".join(map(str, schema["enum"]))
    if "const" in schema:
        return repr(schema["const"])
    kind = str(schema.get("type", "any"))
    if kind == "array":
        items = schema.get("items") or (schema.get("prefixItems") or [{}])[0]
        n = schema.get("minItems") if schema.get("minItems") == schema.get("maxItems") else None
        kind = f"list of {n or ''}{' ' if n else ''}{_kind(items, defs)}"
    lo = (">= ", schema["minimum"]) if "minimum" in schema else (("> ", schema["exclusiveMinimum"])
                                                                   if "exclusiveMinimum" in schema else None)
    hi = ("<= ", schema["maximum"]) if "maximum" in schema else (("< ", schema["exclusiveMaximum"])
                                                                   if "exclusiveMaximum" in schema else None)
    bounds = ", ".join(f"{b[0]}{b[1]:g}" for b in (lo, hi) if b)
    return f"{kind} ({bounds})" if bounds else kind


def _leaves(schema: Mapping[str, Any], defs: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, str]]:
    """(dotted field, type) of every leaf of a model's schema; sub-models (also optional ones) are entered."""
    for name, sub in (schema.get("properties") or {}).items():
        path = f"{prefix}.{name}" if prefix else name
        options = sub.get("anyOf", [sub])
        refs = [o["$ref"].rsplit("/", 1)[-1] for o in options if "$ref" in o]
        if refs and defs[refs[0]].get("properties"):
            nullable = any(o.get("type") == "null" for o in options)
            if nullable:
                yield path, f"{refs[0]} or null"
            yield from _leaves(defs[refs[0]], defs, path)
        else:
            yield path, _kind(sub, defs)


def describe_study(name: str, studies_dir: Path, model: type, load: Any) -> dict[str, Any]:
    """``{"study", "description", "fields": [{field, type, default, note}], "presets": {preset: {field: value}}}``;
    ``load(preset)`` gives the study's resolved config (a pydantic model) with that preset (None: none)."""
    import yaml

    text = (studies_dir / f"{name}.yaml").read_text()
    doc = yaml.safe_load(text)
    schema = model.model_json_schema()
    defs = schema.get("$defs", {})
    base = load(None)
    defaults = dict(_flatten(base.model_dump(mode="json")))
    notes = field_comments(text)
    fields = []
    for path, kind in _leaves(schema, defs):
        if path not in defaults:  # a section that is set (its fields are listed) or a field of an unset one
            continue
        fields.append({"field": path, "type": kind, "default": defaults.get(path), "note": notes.get(path, "")})
    presets = {}
    for preset in doc.get("presets") or {}:
        values = dict(_flatten(load(preset).model_dump(mode="json")))
        presets[preset] = {k: v for k, v in values.items() if defaults.get(k, object()) != v}
    return {"study": name, "description": " ".join(str(doc.get("description", "")).split()), "fields": fields,
            "presets": presets}
