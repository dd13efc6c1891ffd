"""``strata catalog list|du|rm|gc|show|lineage|verify|stale|reproduce|reindex`` and ``strata plot``: the data
catalog (no Prefect, no science run)."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

from strata_errors import InputError, RunError

from .render import Doc

__all__ = ["register", "register_plot", "catalog_of", "complete", "output_file"]


def catalog_of(args) -> Any:
    """The catalog of the data root the command names (``--root``, else ``$STRATA_HOME``, else ./strata-data)."""
    from data_catalog import Catalog

    return Catalog(args.root)


def complete(args) -> tuple[Any, Any]:
    """(catalog, record) of the complete dataset named by ``args.key`` (a key or prefix)."""
    cat = catalog_of(args)
    key = cat.resolve(args.key)
    rec = cat.get(key)
    if rec is None:
        raise InputError(f"dataset {key} is not complete")
    return cat, rec


def output_file(text: str) -> Path:
    """A file the user asked to write: not a directory, in a folder that exists and may be written."""
    out = Path(text)
    if out.is_dir():
        raise InputError(f"{text} is a directory; give a file name")
    folder = out.parent if str(out.parent) else Path(".")
    if folder.exists() and not folder.is_dir():
        raise InputError(f"cannot write {text}: {folder} is a file, not a folder")
    if not folder.is_dir():
        raise InputError(f"cannot write {text}: the folder {folder} does not exist")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise InputError(f"cannot write {text}: the folder {folder} is not writable")
    return out


def _listed(r) -> dict:
    """A dataset record as ``catalog list --json`` (and ``gc --json``) show it."""
    return {"key": r.key, "kind": r.kind, "step": r.step, "created": r.created, "uri": r.uri}


def _listed_line(r) -> str:
    """A dataset record as ``catalog list`` (and ``gc``) print it."""
    return f"{r.key}  {r.kind:<16} {r.step:<16} {r.created or ''}"


def _mib(n: float) -> str:
    return f"{n / 2**20:,.1f} MiB"


def cmd_list(args) -> Doc:
    if args.kind is not None and not re.fullmatch(r"[a-z][a-z0-9_]{0,63}", args.kind):
        raise InputError(f"kind {args.kind!r} is not a kind name (lowercase letters, digits and _)")
    recs = catalog_of(args).list(args.kind)
    return Doc([_listed(r) for r in recs], lambda _: [_listed_line(r) for r in recs])


def _du_text(doc: dict) -> list[str]:
    lines = [f"{doc['root']}: {_mib(doc['total'])} ({_mib(doc['incomplete'])} incomplete: `strata catalog gc`)"]
    for title, part in (("by kind", doc["by_kind"]), ("by study", doc["by_study"])):
        lines.append(f"  {title}:")
        lines += [f"    {name:<20} {_mib(n):>14}" for name, n in sorted(part.items(), key=lambda kv: -kv[1])]
    return lines


def cmd_du(args) -> Doc:
    from data_catalog.housekeeping import usage

    return Doc(usage(catalog_of(args)), _du_text)


def cmd_rm(args) -> Doc:
    from data_catalog.housekeeping import remove

    recs = remove(catalog_of(args), args.key, with_dependents=args.with_dependents, dry_run=args.dry_run)
    verb = "would remove" if args.dry_run else "removed"
    return Doc({"dry_run": args.dry_run, "removed": [{"key": r.key, "kind": r.kind, "step": r.step} for r in recs]},
               lambda _: [f"{verb} {r.key}  {r.kind:<16} {r.step}" for r in recs])


def cmd_gc(args) -> Doc:
    from data_catalog.housekeeping import collect, collect_unreferenced, parse_duration

    age = None if args.older_than is None else parse_duration(args.older_than)  # bad input: before any change
    cat = catalog_of(args)
    old = [] if age is None else collect_unreferenced(cat, age, dry_run=args.dry_run)  # may refuse: first
    uris = collect(cat, dry_run=args.dry_run)

    def text(_: Any) -> list[str]:
        verb = "would remove" if args.dry_run else "removed"
        lines = [f"{verb} {uri}" for uri in uris] + [f"{verb} {_listed_line(r)}  (unreferenced)" for r in old]
        parts = [f"{len(uris)} incomplete leftover(s)"] if uris else []
        parts += [f"{len(old)} unreferenced dataset(s)"] if old else []
        lines.append(f"{' and '.join(parts)} {'would be removed' if args.dry_run else 'removed'}" if parts
                     else "nothing to collect")
        return lines

    return Doc({"dry_run": args.dry_run, "removed": uris, "unreferenced": [_listed(r) for r in old]}, text)


def _show_text(doc: dict) -> list[str]:
    lines = []
    for k, v in doc.items():
        if k == "claims":
            continue
        if k == "parameters":
            lines.append(f"{k:>12}: {v['count']:,} in {len(v['shapes'])} tensors")
        elif k != "variables":
            lines.append(f"{k:>12}: {json.dumps(v) if isinstance(v, dict | list) else v}")
    for name, v in doc["variables"].items():
        lines.append(f"{'':>12}  {name:<14} {v['dtype']:<8} {tuple(v['shape'])} dims={tuple(v['dims'])} "
                     f"chunks={tuple(v['chunks'])} units={v['units']}")
    for r in doc.get("claims", []):
        lines.append(f"  {r['verdict']:<10} {r['id']}: {r['value']} ({r['comparison']}"
                     + (f"; paper {r['paper']}" if r["paper"] else "") + ")"
                     + (f" — {r['note']}" if r["verdict"] == "unmeasured" else ""))
        lines.append(f"{'':13}{r['statement']}")
    return lines


def cmd_show(args) -> Doc:
    cat = catalog_of(args)
    rec = cat.record(args.key)
    doc = rec.to_json()
    if rec.kind == "checkpoint" and rec.complete:  # a trained network: its parameters (metadata only)
        from tasks.nn.layout import parameter_summary

        with cat.storage.open(rec.uri, dask=False) as ds:
            doc["parameters"] = parameter_summary(ds)
    if rec.kind == "claims" and rec.complete:  # a study's claims: the table itself
        from tasks.claims import rows, summary_line

        with cat.storage.open(rec.uri, dask=False) as ds:
            ds = ds.load()
            doc["claims"], doc["summary"] = rows(ds), summary_line(ds)
    return Doc(doc, _show_text)


def _lineage_dot(doc: dict) -> list[str]:
    lines = ["digraph lineage {\n  rankdir=LR; node [shape=box, fontname=monospace];"]
    lines += [f'  "{n["key"]}" [label="{n["step"]}\\n{n["kind"]}\\n{n["key"][:10]}"];' for n in doc["nodes"]]
    lines += [f'  "{e["from"]}" -> "{e["to"]}";' for e in doc["edges"]]
    return [*lines, "}"]


def _lineage_text(doc: dict) -> list[str]:
    return [f"{n['key']}  {n['kind'] or '?':<16} {n['step'] or '?':<16} {json.dumps(n['params'])[:80]}"
            for n in doc["nodes"]]


def cmd_lineage(args) -> Doc:
    cat = catalog_of(args)
    key = cat.resolve(args.key)
    if args.depth is not None and args.depth < 1:
        raise InputError(f"--depth must be ≥ 1, got {args.depth}")
    doc = cat.lineage(key, "down" if args.downstream else "up", args.depth)
    return Doc(doc, _lineage_dot if args.dot else _lineage_text)


def cmd_verify(args) -> Doc:
    cat = catalog_of(args)
    results = cat.verify(cat.resolve(args.key) if args.key else None, fix=args.fix)
    bad = [r for r in results if not r[1]]
    error = RunError(f"{len(bad)} dataset(s) failed verification: " + ", ".join(k for k, _, _ in bad)) if bad else None
    return Doc(None, lambda _: [f"CORRUPT {msg}" for _, ok, msg in results if not ok],
               notes=[f"verified {len(results)} dataset(s): {len(results) - len(bad)} ok, {len(bad)} failed"],
               error=error)


def cmd_stale(args) -> Doc:
    from flows.code import module_source_hash

    cat = catalog_of(args)
    key = cat.resolve(args.key) if args.key else None
    found = cat.stale(key, lambda function: module_source_hash(function.split(":")[0]))
    stale = {k: v for k, v in found.items() if v}

    def text(_: Any) -> list[str]:
        lines = []
        for k, reasons in stale.items():
            lines += [f"{k} is stale:", *(f"  - {r}" for r in reasons)]
        return lines or [f"{len(found)} dataset(s) up to date"]

    return Doc(stale, text, code=1 if stale else 0)


def _reproduce_text(doc: dict) -> list[str]:
    if "source" in doc:  # made by `segy import`, not by a study run
        source = doc["source"]
        return [f"step:     segy_import (version {doc['version']}, {doc['code'].get('function')})",
                f"source:   {source.get('path')} ({source.get('bytes')} bytes, sha256 {source.get('sha256')})",
                f"command:  strata segy import {source.get('path')}"]
    code = doc["code"]
    sets = " ".join(f"--set {o}" for o in doc["overrides"])
    return [f"study:    {doc['study']}  preset {doc['preset']}",
            f"step:     {doc['step']} (version {doc['version']}, {code.get('function')})",
            f"code:     git {code.get('git_sha')} ({'dirty' if code.get('dirty') else 'clean'}), "
            f"source {code.get('source_hash')}",
            f"params:   {json.dumps(doc['params'])}",
            f"inputs:   {', '.join(doc['inputs']) or 'none'}",
            f"command:  git checkout {code.get('git_sha')} && strata run {doc['study']} "
            f"--preset {doc['preset']} {sets}".rstrip()]


def cmd_reproduce(args) -> Doc:
    cat = catalog_of(args)
    doc = cat.reproduce(args.key)
    if doc["study"] is None and doc["step"] == "segy_import":  # made by `segy import`: its file
        from data_catalog import LINEAGE_ATTR

        doc = {**doc, "source": cat.storage.attrs(cat.record(doc["key"]).uri).get(LINEAGE_ATTR, {}).get("source", {})}
    return Doc(doc, _reproduce_text)


def cmd_reindex(args) -> Doc:
    counts = catalog_of(args).reindex()
    return Doc(counts, lambda c: [f"reindexed {c['datasets']} dataset(s), {c['runs']} run(s); "
                                  f"{c['incomplete_skipped']} incomplete group(s) ignored"
                                  + (f"; consolidated the metadata of {c['consolidated']} dataset(s) written "
                                     "without it" if c.get("consolidated") else "")])


def cmd_plot(args) -> Doc:
    from ..report import save_plot

    cat, rec = complete(args)
    out = output_file(args.output or f"{rec.key}.png")
    save_plot(cat, rec.key, out)
    return Doc(str(out), lambda path: [path])


def register(sub: Any, common: Any) -> None:
    """``catalog …``."""
    group = sub.add_parser("catalog", help="query the data catalog")
    c = group.add_subparsers(dest="sub", required=True, parser_class=type(group))
    s = c.add_parser("list", parents=[common])
    s.add_argument("--kind")
    s.add_argument("--json", action="store_true")
    s.set_defaults(fn=cmd_list)
    s = c.add_parser("show", parents=[common])
    s.add_argument("key")
    s.add_argument("--json", action="store_true")
    s.set_defaults(fn=cmd_show)
    s = c.add_parser("lineage", parents=[common])
    s.add_argument("key")
    s.add_argument("--downstream", action="store_true")
    s.add_argument("--depth", type=int)
    g = s.add_mutually_exclusive_group()
    g.add_argument("--json", action="store_true")
    g.add_argument("--dot", action="store_true")
    s.set_defaults(fn=cmd_lineage)
    s = c.add_parser("verify", parents=[common])
    s.add_argument("key", nargs="?")
    s.add_argument("--fix", action="store_true",
                   help="remove what is corrupt and mark it incomplete: the next run recomputes exactly those")
    s.set_defaults(fn=cmd_verify)
    s = c.add_parser("stale", parents=[common])
    s.add_argument("key", nargs="?")
    s.set_defaults(fn=cmd_stale)
    s = c.add_parser("reproduce", parents=[common])
    s.add_argument("key")
    s.set_defaults(fn=cmd_reproduce)
    s = c.add_parser("du", parents=[common], help="bytes per kind and per study")
    s.add_argument("--json", action="store_true")
    s.set_defaults(fn=cmd_du)
    s = c.add_parser("rm", parents=[common], help="remove a dataset (refused while others depend on it)")
    s.add_argument("key")
    s.add_argument("--with-dependents", action="store_true", help="remove what depends on it too")
    s.add_argument("--dry-run", action="store_true", help="say what would be removed")
    s.add_argument("--json", action="store_true")
    s.set_defaults(fn=cmd_rm)
    s = c.add_parser("gc", parents=[common], help="remove what dead runs left incomplete")
    s.add_argument("--older-than", metavar="DURATION",
                   help="also remove complete datasets nothing has referenced for DURATION (7d, 12h, 30m)")
    s.add_argument("--dry-run", action="store_true")
    s.add_argument("--json", action="store_true")
    s.set_defaults(fn=cmd_gc)
    s = c.add_parser("reindex", parents=[common])
    s.set_defaults(fn=cmd_reindex)


def register_plot(sub: Any, common: Any) -> None:
    s = sub.add_parser("plot", parents=[common], help="plot a dataset by its kind")
    s.add_argument("key")
    s.add_argument("-o", "--output")
    s.set_defaults(fn=cmd_plot)
