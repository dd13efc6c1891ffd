"""Scheduled study runs: the Prefect deployment ``strata serve STUDY --interval S | --cron EXPR`` registers (one
per study, preset, overrides and data root) on the data root's Prefect server (or ``PREFECT_API_URL``) and serves
until stopped. Each scheduled flow run runs the study into the same catalog through the same function as
``strata run`` (:func:`flows.study.run_study`, its body inside the scheduled flow run), its lineage carrying the
flow-run and deployment ids; the catalog is the cache, so a scheduled run whose inputs and code are unchanged
computes nothing. ``strata schedules`` lists the deployments and whether they are served.

The study is resolved (its YAML, presets, overrides, registry entry) and its report written by the layer above:
the deployment's parameter ``job`` names that layer's function (``module:function``), called in the flow run with
the study's parameters and the flow run's and deployment's ids. Import this module after
:func:`flows.runtime.use_prefect`: it imports Prefect.
"""

from __future__ import annotations

import hashlib
import importlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

from prefect import flow

from strata_errors import InputError

__all__ = ["scheduled_study", "deployment_name", "list_schedules", "serve", "FLOW_NAME"]

FLOW_NAME = "strata-scheduled"


@flow(name=FLOW_NAME, persist_result=False, log_prints=False, validate_parameters=False)
def scheduled_study(study: str, root: str, preset: str | None = None, overrides: Sequence[str] = (),
                    workers: int | None = None, job: str = "") -> dict[str, str]:
    """One scheduled run of ``study`` into the data root ``root`` by ``job`` (``module:function``); returns its
    output keys."""
    from prefect.runtime import deployment, flow_run

    module, _, name = job.partition(":")
    if not module or not name:
        raise InputError(f"scheduled run of {study}: no job to run (deployment parameter job={job!r})")
    run = getattr(importlib.import_module(module), name)
    return run(study=study, root=root, preset=preset, overrides=list(overrides), workers=workers,
               flow_run_id=str(flow_run.id), deployment_id=str(deployment.id) if deployment.id else None)


def deployment_name(study: str, preset: str | None, overrides: Sequence[str], root: str) -> str:
    """``<study>-<preset>-<hash>``: one deployment per study, preset, overrides and data root."""
    doc = json.dumps([study, preset, list(overrides), root])
    return f"{study}-{preset or 'default'}-{hashlib.sha256(doc.encode()).hexdigest()[:8]}"


def serve(name: str, parameters: Mapping[str, Any], interval: float | None = None, cron: str | None = None) -> None:
    """Register the deployment ``name`` of :func:`scheduled_study` with ``parameters`` and serve it until stopped
    (``KeyboardInterrupt``). Runs of one deployment never overlap: a late run waits for the one before."""
    from prefect.deployments.runner import EntrypointType

    scheduled_study.serve(name=name, interval=interval, cron=cron, parameters=dict(parameters),
                          print_starting_message=False, entrypoint_type=EntrypointType.MODULE_PATH, limit=1)


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
        params = {k: v for k, v in (d.parameters or {}).items() if k != "job"}  # the study's, as given
        rows.append({"name": d.name, "id": str(d.id), "schedules": schedules, "parameters": params,
                     "served": str(status).upper() == "READY", "paused": bool(d.paused)})
    return rows
