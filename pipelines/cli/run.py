"""``strata studies``, ``run``, ``serve`` and ``schedules``: studies, their runs and their scheduled runs.

``strata run`` and each scheduled run of ``strata serve`` go through :func:`pipelines.runs.run_loaded`. Prefect is
set up by ``flows.runtime.use_prefect`` and imported only inside ``flows``.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from typing import Any

from strata_errors import InputError

from . import render
from .catalog import catalog_of
from .render import Doc

__all__ = ["register", "FAST_EXIT"]

FAST_EXIT = False  # set by a finished `run` whose Prefect server outlives it (see pipelines.cli.entry)


def cmd_studies(args) -> Doc:
    from studies import study_file

    from ..config import read_study_file
    from ..registry import STUDIES

    if args.study:
        return _describe(args)
    rows = []
    for name, entry in STUDIES.items():
        doc = read_study_file(study_file(name))
        rows.append({"study": name, "presets": list((doc.get("presets") or {}).keys()), "summary": entry.summary})
    return Doc(rows, lambda rs: [f"{r['study']:<16} presets: {', '.join(r['presets']):<14} {r['summary']}" for r in rs])


def _describe_text(doc: dict) -> list[str]:
    lines = [f"{doc['study']}: {doc['description']}\n"]
    width = max(len(f["field"]) for f in doc["fields"])
    kinds = max(len(f["type"]) for f in doc["fields"])
    for f in doc["fields"]:
        note = f"  # {f['note']}" if f["note"] else ""
        lines.append(f"  {f['field']:<{width}}  {f['type']:<{kinds}}  {json.dumps(f['default'])}{note}")
    for preset, changes in doc["presets"].items():
        shown = ", ".join(f"{k}={json.dumps(v)}" for k, v in changes.items()) or "(the defaults)"
        lines.append(f"\npreset {preset}: {shown}")
    return lines


def _describe(args) -> Doc:
    """``studies STUDY``: fields with type, bounds, default and unit; what each preset changes."""
    from studies import study_file

    from ..config import load_study, read_study_file
    from ..describe import describe_study
    from ..registry import STUDIES, models

    if args.study not in STUDIES:
        raise InputError(f"unknown study {args.study!r} (known: {', '.join(STUDIES)})")
    known = models()
    doc = describe_study(args.study, read_study_file(study_file(args.study)), known[args.study],
                         lambda preset: load_study(args.study, preset, [], known).config)
    return Doc(doc, _describe_text)


def _terminate(signum: int, frame: Any) -> None:  # SIGTERM unwinds like Ctrl-C
    raise KeyboardInterrupt(f"signal {signum}")


def cmd_run(args) -> Doc:
    t0 = time.perf_counter()
    if args.workers is not None and args.workers < 1:
        raise InputError(f"--workers must be ≥ 1, got {args.workers}")
    if args.retries < 0:
        raise InputError(f"--retries must be ≥ 0, got {args.retries}")
    from ..config import load_study
    from ..registry import load_flow, models
    from ..runs import run_loaded

    loaded = load_study(args.study, args.preset, args.set or [], models())
    if args.dry_run:
        return _dry_run(args, loaded, load_flow(loaded.name))
    from ..cluster import load_cluster

    if args.cluster and (args.workers or args.dask_address):
        raise InputError("give --cluster or --workers/--dask-address, not both")
    cluster = None if args.workers or args.dask_address else load_cluster(args.cluster, loaded.path)  # flags win
    # SIGTERM unwinds like Ctrl-C, so the Prefect server and Dask cluster we started are stopped
    signal.signal(signal.SIGTERM, _terminate)
    cat = catalog_of(args)
    from flows.runtime import prefect_home, use_prefect

    os.environ.setdefault("DEVITO_LOGGING", "WARNING")  # no per-shot "Operator ran in" lines; a user's value wins
    console = render.console()
    ephemeral = args.ephemeral or os.environ.get("STRATA_EPHEMERAL") == "1"
    # the root's server boots while the study's modules and Prefect are imported
    info, started = use_prefect(prefect_home(cat), ephemeral, wait=False)
    if started:
        console.print(f"started the Prefect server of this data root (UI {info.ui}, log {info.log}); it keeps "
                      f"running for later runs: `strata server stop --root {cat.root}` stops it")
    console.print(f"[bold]{loaded.name}[/] preset {loaded.preset or '-'} → {cat.root}"
                  + (f" ({args.workers} workers)" if args.workers else ""))
    workers, address, batch, threads = _executor(args, cluster, cat)
    result, report = run_loaded(loaded, cat, t0, workers=workers, address=address, ephemeral=ephemeral,
                                console=console, batch=batch, threads=threads, retries=args.retries)
    seconds = round(time.perf_counter() - t0, 3)
    _summary(console, result, seconds)
    computed, reused = result.computed, result.reused
    claims = _claims_line(cat, result.outputs)
    cat.close()
    global FAST_EXIT
    FAST_EXIT = not ephemeral
    doc = {"study": loaded.name, "preset": loaded.preset, "flow_run_id": result.flow_run_id, "seconds": seconds,
           "outputs": result.output_keys, "computed": computed, "reused": reused,
           "report": str(report), **({"claims": claims} if claims else {})}
    return Doc(doc, lambda _: [f"data:    {cat.root}/datasets  ({len(computed)} computed, {len(reused)} reused)",
                               f"plots:   {report.parent}/*.png", f"report:  {report}", *([claims] if claims else [])])


def _executor(args, cfg, cat) -> tuple[int | None, str | None, Any, int | None]:
    """(workers, address, batch cluster, threads per worker) from the flags or the cluster config."""
    if cfg is None:
        return args.workers, args.dask_address, None, None
    if cfg.kind == "local":
        return cfg.workers, None, None, cfg.threads_per_worker
    if cfg.kind == "address":
        return None, cfg.address, None, None

    from ..batch import BatchCluster

    return None, None, BatchCluster(cfg, str(cat.root)), cfg.threads  # started when a piece must be computed


def _dry_run(args, loaded, flow_obj) -> Doc:
    """``run --dry-run``: the resolved configuration and the plan of every step (no Prefect, Dask or science)."""
    from flows.plan import plan_study

    cat = catalog_of(args)
    try:
        steps, outputs = plan_study(flow_obj, loaded.config, cat)
    finally:
        cat.close()
    config = loaded.config.model_dump(mode="json")
    n_compute = sum(s.status == "compute" for s in steps)

    def text(_: Any) -> None:
        from rich.table import Table

        out = render.console(stderr=False, width=None if sys.stdout.isatty() else 120)
        out.print(f"[bold]{loaded.name}[/] preset {loaded.preset or '-'} → {cat.root} (dry run: nothing is computed)",
                  soft_wrap=True)
        out.print_json(data=config)
        table = Table(title=f"{n_compute} of {len(steps)} steps to compute", title_justify="left")
        for col in ("step", "label", "key", "status", "pieces to compute"):
            table.add_column(col)
        for s in steps:
            pieces = ""
            if s.mapped and s.status == "compute":
                pieces = "? (after its inputs)" if s.pieces is None else f"{s.missing} of {s.pieces}"
            table.add_row(s.step, s.label or "", s.key[:12],
                          "[green]compute[/]" if s.status == "compute" else "[dim]reuse[/]", pieces)
        out.print(table)

    return Doc({"study": loaded.name, "preset": loaded.preset, "overrides": list(loaded.overrides),
                "root": str(cat.root), "config": config, "steps": [s.to_json() for s in steps],
                "outputs": {k: r.key for k, r in outputs.items()}, "compute": n_compute,
                "reuse": len(steps) - n_compute}, text)


def _claims_line(cat, outputs) -> str | None:
    """``claims: 4 of 5 hold (…)`` of a run whose study checks its paper's claims (output ``claims``)."""
    if "claims" not in outputs:
        return None
    from tasks.claims import summary_line

    with cat.open(outputs["claims"].key, dask=False) as ds:
        return summary_line(ds.load())


def _summary(console, result, seconds: float) -> None:
    from rich.table import Table

    t = result.timings
    table = Table(title=f"{result.study}: {seconds:.1f} s (Prefect start-up {t['prefect_startup_s']:.1f} s, "
                        f"steps {t['steps_s']:.1f} s)", title_justify="left")
    for col in ("step", "label", "key", "status", "seconds"):
        table.add_column(col, justify="right" if col == "seconds" else "left")
    for s in result.steps:
        table.add_row(s.step, s.label or "", s.key[:12], s.status, f"{s.seconds:.2f}")
    console.print(table)


def _attach_prefect(cat, console) -> None:  # Prefect for this root, saying so when its server starts now
    from flows.runtime import prefect_home, use_prefect

    info, started = use_prefect(prefect_home(cat))
    if started:
        console.print(f"started the Prefect server of this data root (UI {info.ui}); "
                      f"`strata server stop --root {cat.root}` stops it")


def cmd_serve(args) -> Doc:
    """``serve``: register the study's scheduled deployment and serve it until stopped (Ctrl-C)."""
    from ..config import load_study
    from ..registry import models
    from ..runs import scheduled_run

    if (args.interval is None) == (args.cron is None):
        raise InputError("give one of --interval SECONDS or --cron EXPR")
    if args.interval is not None and args.interval < 1:
        raise InputError(f"--interval must be >= 1 second, got {args.interval}")
    if args.workers is not None and args.workers < 1:
        raise InputError(f"--workers must be ≥ 1, got {args.workers}")
    loaded = load_study(args.study, args.preset, args.set or [], models())  # bad input fails before serving
    cat = catalog_of(args)
    console = render.console()
    _attach_prefect(cat, console)
    from flows.schedule import deployment_name, serve

    name = deployment_name(loaded.name, loaded.preset, loaded.overrides, str(cat.root))
    params = {"study": loaded.name, "root": str(cat.root), "preset": loaded.preset, "overrides": list(loaded.overrides),
              "workers": args.workers, "job": f"{scheduled_run.__module__}:{scheduled_run.__name__}"}
    when = f"every {args.interval:g} s" if args.interval is not None else f"cron {args.cron!r}"
    console.print(f"serving [bold]{loaded.name}[/] preset {loaded.preset or '-'} {when} as deployment {name} "
                  f"({os.environ['PREFECT_API_URL']}); runs write to {cat.root}; Ctrl-C stops")
    signal.signal(signal.SIGTERM, _terminate)
    try:
        serve(name, params, args.interval, args.cron)
    except KeyboardInterrupt:
        pass
    return Doc()


def _schedules_text(rows: list[dict]) -> list[str]:
    if not rows:
        return ["no scheduled studies (strata serve STUDY --interval S | --cron EXPR)"]
    lines = []
    for r in rows:
        p = r["parameters"]
        state = "served" if r["served"] else "not served"
        lines.append(f"{r['name']:<34} {', '.join(r['schedules']) or '-':<18} {state:<11} {p.get('study')} "
                     f"preset {p.get('preset') or '-'} {' '.join('--set ' + o for o in p.get('overrides') or [])} "
                     f"→ {p.get('root')}")
    return lines


def cmd_schedules(args) -> Doc:  # the scheduled studies on the Prefect API in use, and whether they are served
    _attach_prefect(catalog_of(args), render.console())
    from flows.schedule import list_schedules

    return Doc(list_schedules(), _schedules_text)


def register(sub: Any, common: Any) -> None:
    """``studies``, ``run``, ``serve``, ``schedules``."""
    s = sub.add_parser("studies", parents=[common], help="list studies and presets, or describe one study")
    s.add_argument("study", nargs="?", help="a study: its fields (type, bounds, default, unit) and presets")
    s.add_argument("--json", action="store_true")
    s.set_defaults(fn=cmd_studies)

    s = sub.add_parser("run", parents=[common], help="run a study (one flow run)")
    s.add_argument("study", help="study name or path to a study YAML file")
    s.add_argument("--preset")
    s.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a config field")
    g = s.add_mutually_exclusive_group()
    g.add_argument("--workers", type=int, help="LocalCluster of N processes (+ a Prefect server)")
    g.add_argument("--dask-address", help="an existing Dask scheduler")
    s.add_argument("--ephemeral", action="store_true",
                   help="Prefect's ephemeral mode instead of the data root's server (also STRATA_EPHEMERAL=1)")
    s.add_argument("--json", action="store_true")
    s.add_argument("--retries", type=int, default=0, metavar="N",
                   help="run a failed task (a piece, a whole step) up to N more times before the run fails")
    s.add_argument("--cluster", metavar="FILE",
                   help="a YAML file with a cluster: section (kind local | address | slurm | pbs); default: the "
                        "study file's cluster: section, if any")
    s.add_argument("--dry-run", action="store_true",
                   help="print the resolved config and each step's key and whether it would be computed or "
                        "reused; start nothing, compute nothing")
    s.set_defaults(fn=cmd_run)

    s = sub.add_parser("serve", parents=[common], help="run a study on a schedule (a Prefect deployment)")
    s.add_argument("study")
    when = s.add_mutually_exclusive_group()
    when.add_argument("--interval", type=float, metavar="SECONDS")
    when.add_argument("--cron", metavar="EXPR")
    s.add_argument("--preset")
    s.add_argument("--set", action="append", metavar="KEY=VALUE")
    s.add_argument("--workers", type=int, help="each run on a LocalCluster of N processes")
    s.set_defaults(fn=cmd_serve)

    s = sub.add_parser("schedules", parents=[common], help="the scheduled studies, and whether they are served")
    s.add_argument("--json", action="store_true")
    s.set_defaults(fn=cmd_schedules)
