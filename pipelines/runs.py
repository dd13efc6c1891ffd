"""A study run as the command line and the scheduler start it: ``strata run`` and every scheduled run of
``strata serve`` (the deployment's ``job``, called by ``flows.schedule`` inside the scheduled flow run) go through
:func:`run_loaded`: ``flows.study.run_study``, then the run's report. No Prefect import here."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

__all__ = ["run_loaded", "scheduled_run"]


def run_loaded(loaded: Any, cat: Any, t0: float, **options: Any) -> tuple[Any, Any]:
    """Run the loaded study (:func:`pipelines.config.load_study`) into ``cat`` with ``options`` (those of
    ``flows.study.run_study``) and write its report: (result, report path)."""
    from flows.study import run_study

    from .registry import load_flow
    from .report import write_report

    result = run_study(load_flow(loaded.name), loaded.config, catalog=cat, study=loaded.name, preset=loaded.preset,
                       overrides=loaded.overrides, t_start=t0, **options)
    return result, write_report(cat, result, loaded, time.perf_counter() - t0)


def scheduled_run(*, study: str, root: str, preset: str | None, overrides: Sequence[str], workers: int | None,
                  flow_run_id: str, deployment_id: str | None) -> dict[str, str]:
    """One scheduled run of ``study`` into the data root ``root``, in the flow run ``flow_run_id`` of the
    deployment ``deployment_id``: its output keys."""
    from data_catalog import Catalog

    from .config import load_study
    from .registry import models

    t0 = time.perf_counter()
    loaded = load_study(study, preset, list(overrides), models())
    cat = Catalog(root)
    try:
        result, _ = run_loaded(loaded, cat, t0, workers=workers, flow_run_id=flow_run_id, deployment_id=deployment_id)
        return result.output_keys
    finally:
        cat.close()
