"""``strata studies STUDY``: a study's fields — type and bounds (from its config model's JSON schema), the config
model's default, the unit or note written beside it in the model's source — and what each preset changes."""

from __future__ import annotations

import inspect
import io
import re
import tokenize
import typing
from collections.abc import Iterator, Mapping
from typing import Any

from pydantic import BaseModel

__all__ = ["describe_study", "field_notes"]

_FIELD = re.compile(r"^    (?P<name>[A-Za-z_]\w*)\s*:")


def _section(annotation: Any) -> type[BaseModel] | None:
    """The config section class of a field's annotation (``Section`` or ``Section | None``), or None."""
    for a in (annotation, *typing.get_args(annotation)):
        if isinstance(a, type) and issubclass(a, BaseModel):
            return a
    return None


def _comment(line: str) -> str | None:
    """The comment at the end of a source line (a ``#`` inside a string is not one), or None."""
    found = None
    try:
        for t in tokenize.generate_tokens(io.StringIO(line).readline):
            if t.type == tokenize.COMMENT:
                found = t.string.lstrip("# ").rstrip()
    except tokenize.TokenError:  # a line that opens a bracket closed on the next ones
        pass
    return found


def _class_notes(cls: type) -> dict[str, str]:
    """{field: note} of the fields a class itself declares: the comment at the end of the field's line, else the
    comment lines right above it."""
    try:
        lines, _ = inspect.getsourcelines(cls)
    except (OSError, TypeError):
        return {}
    notes: dict[str, str] = {}
    above: list[str] = []
    for line in lines:
        text = line.strip()
        if text.startswith("#"):
            above.append(text.lstrip("# ").rstrip())
            continue
        m = _FIELD.match(line)
        if m and m["name"] in getattr(cls, "__annotations__", {}):
            comment = _comment(line)
            note = comment if comment is not None else " ".join(above)
            if note:
                notes[m["name"]] = note
        above = []
    return notes


def field_notes(model: type[BaseModel], prefix: str = "") -> dict[str, str]:
    """{dotted field: note} of a config model and its sections, read from their source: the one place a default
    and its unit are written."""
    out: dict[str, str] = {}
    for cls in reversed(model.__mro__):  # a subclass's note overrides its base's
        out.update({f"{prefix}{k}": v for k, v in _class_notes(cls).items() if k in model.model_fields})
    for name, info in model.model_fields.items():
        section = _section(info.annotation)
        if section is not None:
            out.update(field_notes(section, f"{prefix}{name}."))
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


def describe_study(name: str, doc: dict[str, Any], model: type, load: Any) -> dict[str, Any]:
    """``{"study", "description", "fields": [{field, type, default, note}], "presets": {preset: {field: value}}}``
    of the study whose study file reads as ``doc``; ``load(preset)`` gives the study's resolved config (a pydantic
    model) with that preset (None: none)."""
    schema = model.model_json_schema()
    defs = schema.get("$defs", {})
    base = load(None)
    defaults = dict(_flatten(base.model_dump(mode="json")))
    notes = field_notes(model)
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
