"""Scheduled study runs: ``strata serve STUDY --interval S | --cron EXPR`` registers a Prefect deployment of
:func:`scheduled_study` (one per study, preset, overrides and data root) on the data root's Prefect server (or
``PREFECT_API_URL``) and serves it until stopped: each scheduled flow run runs the study into the same catalog,
its lineage carrying the flow-run and deployment ids. The catalog is the cache: a scheduled run whose inputs
and code are unchanged computes nothing. ``strata schedules`` lists the deployments and whether they are served.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Sequence
from typing import Any

from prefect import flow

__all__ = ["scheduled_study", "deployment_name", "list_schedules", "FLOW_NAME"]

FLOW_NAME = "strata-scheduled"


@flow(name=FLOW_NAME, persist_result=False, log_prints=False, validate_parameters=False)
def scheduled_study(study: str, root: str, preset: str | None = None, overrides: Sequence[str] = (),
                    workers: int | None = None) -> dict[str, str]:
    """One scheduled run of ``study`` into the data root ``root``; returns its output keys."""
    from prefect.runtime import deployment, flow_run

    from data_catalog import Catalog
    from flows.context import active
    from flows.runtime import Runtime
    from flows.study import RunResult, StudyRun, run_body

    from .config import load_study
    from .registry import load_flow, models
    from .report import write_report

    t0 = time.perf_counter()
    loaded = load_study(study, preset, list(overrides), models())
    cat = Catalog(root)
    try:
        with Runtime(cat.storage.cache_dir() / "prefect", workers) as rt:
            run = StudyRun(cat, loaded.name, loaded.preset, loaded.overrides, None, rt.executor)
            run.deployment_id = str(deployment.id) if deployment.id else None
            with active(run):
                outputs = run_body(run, load_flow(loaded.name).body, loaded.config, str(flow_run.id))
        result = RunResult(loaded.name, loaded.preset, run.flow_run_id, outputs, run.steps,
                           {"steps_s": round(time.perf_counter() - run.t_body, 3)})
        write_report(cat, result, loaded, time.perf_counter() - t0)
        return {k: r.key for k, r in outputs.items()}
    finally:
        cat.close()


def deployment_name(study: str, preset: str | None, overrides: Sequence[str], root: str) -> str:
    """``<study>-<preset>-<hash>``: one deployment per study, preset, overrides and data root."""
    doc = json.dumps([study, preset, list(overrides), root])
    return f"{study}-{preset or 'default'}-{hashlib.sha256(doc.encode()).hexdigest()[:8]}"


def list_schedules() -> list[dict[str, Any]]:
    """The deployments of scheduled studies on the Prefect API in use: name, schedules, parameters, and
    whether a ``strata serve`` process polls for their runs (status READY)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowFilter, FlowFilterName

    with get_client(sync_client=True) as client:
        deployments = client.read_deployments(flow_filter=FlowFilter(name=FlowFilterName(any_=[FLOW_NAME])))
    rows = []
    for d in deployments:
        schedules = []
        for s in d.schedules or []:
            sched = s.schedule
            schedules.append(f"every {sched.interval.total_seconds():g} s" if hasattr(sched, "interval")
                             else f"cron {sched.cron}" if hasattr(sched, "cron") else str(sched))
        status = getattr(d.status, "value", d.status)
        rows.append({"name": d.name, "id": str(d.id), "schedules": schedules, "parameters": d.parameters,
                     "served": str(status).upper() == "READY", "paused": bool(d.paused)})
    return rows
