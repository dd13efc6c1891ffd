"""``strata cluster script STUDY``: the batch job script a run would submit (SLURM, PBS; nothing is submitted)."""

from __future__ import annotations

import os
from typing import Any

from strata_errors import InputError

from .catalog import catalog_of
from .render import Doc

__all__ = ["register"]


def cmd_cluster_script(args) -> Doc:
    """``cluster script``: the batch job script a run of STUDY would submit (nothing is submitted)."""
    from ..cluster import load_cluster, worker_env
    from ..config import load_study
    from ..jobqueue import jobqueue_cluster
    from ..registry import models

    loaded = load_study(args.study, args.preset, args.set or [], models())
    cfg = load_cluster(args.cluster, loaded.path)
    if cfg is None or cfg.kind not in ("slurm", "pbs"):
        where = args.cluster or loaded.path
        raise InputError(f"{where}: no slurm or pbs cluster section (kind: {cfg.kind if cfg else 'none'}): "
                         f"nothing would be submitted")
    cat = catalog_of(args)
    api = os.environ.get("PREFECT_API_URL")
    if not api:
        from flows import server
        from flows.runtime import prefect_home

        info = server.find(prefect_home(cat))
        api = info.url if info else None
    cluster = jobqueue_cluster(cfg, worker_env(cfg, str(cat.root), api))  # workers need no Prefect API
    try:
        script = cluster.job_script()
    finally:
        cluster.close()
    return Doc(script, lambda text: [text])


def register(sub: Any, common: Any) -> None:
    """``cluster script``."""
    group = sub.add_parser("cluster", help="batch clusters (SLURM, PBS through dask-jobqueue)")
    c = group.add_subparsers(dest="sub", required=True, parser_class=type(group))
    s = c.add_parser("script", parents=[common], help="print the job script a run would submit (submits nothing)")
    s.add_argument("study")
    s.add_argument("--preset")
    s.add_argument("--set", action="append", metavar="KEY=VALUE")
    s.add_argument("--cluster", metavar="FILE", help="a YAML file with a cluster: section")
    s.set_defaults(fn=cmd_cluster_script)
