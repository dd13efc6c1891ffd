"""What is wrong with a stored dataset, if anything, naming the variables at fault."""

from __future__ import annotations

from .index import Record
from .storage import LINEAGE_ATTR, Storage

__all__ = ["diagnose"]


def diagnose(storage: Storage, rec: Record) -> str | None:
    """None when ``rec``'s stored values give its recorded fingerprint; else one line: unreadable metadata, a
    variable that cannot be decoded, the variables whose fingerprints differ from those recorded, or the arrays
    whose consolidated metadata (what one read opens) is not their own. The values are read through each array's
    own metadata."""
    where = f"{rec.kind} {rec.key} at {rec.uri}"
    try:
        fp, parts = storage.fingerprints(rec.uri, consolidated=False)
    except Exception as exc:  # metadata or a chunk that cannot be read: which variable?
        return f"{where}: {_unreadable(storage, rec.uri) or f'cannot be read ({type(exc).__name__}: {exc})'}"
    if fp == rec.fingerprint:
        try:
            differs = storage.consolidated_differs(rec.uri)
        except Exception as exc:
            return f"{where}: its metadata cannot be read ({type(exc).__name__}: {str(exc)[:200]})"
        if differs:
            return f"{where}: the consolidated metadata of {', '.join(differs)} is not the array's own"
        return None
    try:
        recorded = storage.attrs(rec.uri).get(LINEAGE_ATTR, {}).get("variable_fingerprints") or {}
    except Exception:
        recorded = {}
    changed = sorted(n for n in set(parts) | set(recorded) if parts.get(n) != recorded.get(n)) if recorded else []
    names = f"variable(s) {', '.join(changed)} changed" if changed else "its values changed"
    return f"{where}: {names} (fingerprint {fp[:12]} != recorded {str(rec.fingerprint)[:12]})"


def _unreadable(storage: Storage, uri: str) -> str | None:
    try:
        ds = storage.open(uri, dask=False, consolidated=False)
    except Exception as exc:
        return f"its metadata cannot be read ({type(exc).__name__}: {str(exc)[:200]})"
    with ds:
        for name in sorted(map(str, ds.variables)):
            try:
                ds[name].values  # noqa: B018 - decoding is the check
            except Exception as exc:
                return f"variable {name} cannot be decoded ({type(exc).__name__}: {str(exc)[:200]})"
    return None
