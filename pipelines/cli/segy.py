"""``strata segy import FILE`` and ``strata segy export KEY OUT.sgy``: SEG-Y files in and out of the catalog."""

from __future__ import annotations

import os
from typing import Any

from strata_errors import InputError

from .catalog import catalog_of, complete, output_file
from .render import Doc

__all__ = ["register", "SEGY_IMPORT_VERSION"]

SEGY_IMPORT_VERSION = "1"
_SEGY_EXPORTABLE = ("shot_records", "segy")


def cmd_segy_import(args) -> Doc:
    """Register a SEG-Y file's dataset (kind ``segy``); the key is the file's content, not its path."""
    from pathlib import Path

    from flows.imports import file_source, import_file
    from tasks.seismic.segy import probe_segy, read_segy

    path = Path(args.file).expanduser().resolve()
    if not path.exists():
        raise InputError(f"SEG-Y file {args.file} does not exist")
    if not path.is_file():
        raise InputError(f"{args.file} is {'a directory' if path.is_dir() else 'not a regular file'}, "
                         "not a SEG-Y file")
    info = probe_segy(path)  # cheap: headers and size; a bad file stops here
    try:
        source = file_source(path)
    except OSError as exc:
        raise InputError(f"cannot read {args.file}: {exc.strerror}") from None
    key, computed = import_file(catalog_of(args), source, read_segy, step="segy_import", version=SEGY_IMPORT_VERSION,
                                kind="segy", job="segy.segy_import")
    doc = {"key": key, "traces": info["traces"], "samples": info["samples"], "format": info["format"],
           "endian": info["endian"]}
    return Doc(doc, lambda d: [f"{key}  segy  {d['traces']} traces x {d['samples']} samples, {d['format']} "
                               f"{d['endian']}-endian ({'imported' if computed else 'already in the catalog'})"])


def cmd_segy_export(args) -> Doc:
    """Write a ``shot_records`` (or imported ``segy``) dataset to a SEG-Y file."""
    from tasks.seismic.segy import write_segy

    cat, rec = complete(args)
    key = rec.key
    if rec.kind not in _SEGY_EXPORTABLE:
        raise InputError(f"dataset {key} is a {rec.kind}; segy export writes {' or '.join(_SEGY_EXPORTABLE)} datasets")
    out = output_file(args.output)
    with cat.open(key, dask=False) as ds:  # any dask compute imports `distributed`
        ds = ds.load()
    tmp = out.with_name(f".{out.name}.part")
    try:
        write_segy(ds, tmp)
        os.replace(tmp, out)
    except OSError as exc:
        raise InputError(f"cannot write {args.output}: {exc.strerror or exc}") from None
    finally:
        if tmp.exists():
            tmp.unlink()
    n = ds.sizes.get("trace") or ds.sizes.get("shot", 0) * ds.sizes.get("receiver", 0)
    return Doc(str(out), lambda path: [path], notes=[f"{out}  ({n} traces x {ds.sizes['time']} samples)"])


def register(sub: Any, common: Any) -> None:
    """``segy import|export``."""
    group = sub.add_parser("segy", help="SEG-Y files in and out of the catalog")
    c = group.add_subparsers(dest="sub", required=True, parser_class=type(group))
    s = c.add_parser("import", parents=[common], help="register a SEG-Y file's dataset (kind segy)")
    s.add_argument("file")
    s.add_argument("--json", action="store_true")
    s.set_defaults(fn=cmd_segy_import)
    s = c.add_parser("export", parents=[common], help="write a shot_records or segy dataset to SEG-Y")
    s.add_argument("key")
    s.add_argument("output", metavar="OUT.sgy")
    s.set_defaults(fn=cmd_segy_export)
