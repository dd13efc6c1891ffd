"""Dataset keys: sha256 of canonical JSON of (step, version, params, input keys)."""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

from strata_errors import InputError

__all__ = ["canonical", "canonical_json", "make_key", "check_key", "check_name", "KEY_LEN"]

KEY_LEN = 20
_KEY_RE = re.compile(r"^[0-9a-f]{6,20}$")
_NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")


class _Float:
    """Marks a float so the JSON encoder writes ``repr(value)`` (shortest round-trip form)."""

    __slots__ = ("value",)

    def __init__(self, value: float) -> None:
        self.value = value


def canonical(value: Any) -> Any:
    """Return ``value`` as plain JSON types: numpy scalars/arrays → Python, tuples → lists.

    Keys of mappings are sorted by the JSON encoder; floats keep their ``repr``.
    """
    import numpy as np

    if isinstance(value, bool | type(None) | str):
        return value
    if isinstance(value, np.generic):
        return canonical(value.item())
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            return repr(value)
        return float(value)
    if isinstance(value, Mapping):
        return {str(k): canonical(v) for k, v in value.items()}
    if isinstance(value, np.ndarray):
        return canonical(value.tolist())
    if isinstance(value, Sequence):
        return [canonical(v) for v in value]
    if hasattr(value, "model_dump"):  # pydantic models
        return canonical(value.model_dump(mode="python"))
    raise TypeError(f"parameter of type {type(value).__name__} cannot enter a dataset key: {value!r}")


def canonical_json(value: Any) -> str:
    """Canonical JSON text: sorted keys, no whitespace, floats by ``repr``."""
    return json.dumps(canonical(value), sort_keys=True, separators=(",", ":"), allow_nan=False)


def make_key(step: str, version: str, params: Mapping[str, Any], inputs: Sequence[str]) -> str:
    """The dataset key: first 20 hex characters of sha256 over the canonical request."""
    doc = {"step": step, "version": str(version), "params": dict(params), "inputs": list(inputs)}
    return hashlib.sha256(canonical_json(doc).encode()).hexdigest()[:KEY_LEN]


def check_key(text: str) -> str:
    """Validate a full key or a prefix (6–20 lowercase hex characters); raise InputError."""
    if not isinstance(text, str) or not _KEY_RE.match(text):
        raise InputError(f"malformed key {text!r}: expected 6 to 20 lowercase hex characters")
    return text


def check_name(text: str, what: str = "name") -> str:
    """A kind or key that becomes one path component under the data root: letters, digits, ``_ . -``, not starting
    with a dot (no ``/``, no ``..``, nothing absolute: it cannot escape the root); raise InputError."""
    if not isinstance(text, str) or not _NAME_RE.fullmatch(text):
        raise InputError(f"{what} {text!r} cannot name a dataset folder: use letters, digits, _ . - "
                         "(not first: a dot), at most 128")
    return text
