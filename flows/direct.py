"""Run a study's science with no orchestration at all: the flow body runs in a context in which each step
calls its function at once, in this process, on the whole of its inputs held in memory (a mapped step in one
call over its full coordinate), and returns the dataset — no Prefect, no Dask, no catalog, no zarr. The
reference a benchmark measures the orchestration overhead of a real run against; not a way to run studies
(nothing is kept, nothing resumes).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import xarray as xr

from .context import active
from .fpenv import default_fp_env
from .pieces import as_dataset
from .step import Pieces, Ref, Step

__all__ = ["DirectRun", "run_direct"]


@dataclass(frozen=True)
class _Held(Ref):
    """A step's result, passed to the next steps as their input reference."""

    data: xr.Dataset | None = None


class DirectRun:
    """The run context (:class:`~flows.context.RunContext`) of :func:`run_direct`: steps called in it compute at
    once, in memory."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    def call_step(self, step: Step, inputs: Sequence[Any], params: Mapping[str, Any], pieces: Pieces | None,
                  label: str | None) -> _Held:
        import time

        key = step.key(inputs, params, pieces.per_piece if step.map_over else None)
        kwargs = dict(params)
        if step.map_over and step.coord_param:
            kwargs[step.coord_param] = np.asarray(params[step.coord_param])
        t0 = time.perf_counter()
        with default_fp_env():  # as a piece computes (flows.fpenv)
            out = as_dataset(step.fn(*[i.data for i in inputs], **kwargs), step.name)
        self.seconds[step.name] = self.seconds.get(step.name, 0.0) + time.perf_counter() - t0
        return _Held(key, "", step.kind, step.name, data=out)


def run_direct(study_flow_obj: Any, config: Any) -> tuple[dict[str, xr.Dataset], dict[str, float]]:
    """The study's outputs computed in memory, and the seconds each step's function took."""
    run = DirectRun()
    with active(run):
        outputs = study_flow_obj.body(config)
    return {k: v.data for k, v in outputs.items()}, run.seconds
