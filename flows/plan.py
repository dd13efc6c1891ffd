"""Plan a study run without running it: the study's flow body runs in a planning context in which each
step computes its key, looks it up in the catalog and returns a reference without computing (as
``dvc status`` / ``dvc repro --dry`` do for DVC). No Prefect run, no Dask, no science: keys depend on
the inputs' keys and the parameters only, so a whole run is planned from the catalog alone.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from data_catalog import COMPLETE_ATTR, LINEAGE_ATTR, Catalog, RegionWriter

from .context import active
from .step import Pieces, Ref, Step

__all__ = ["PlannedStep", "PlanRun", "plan_study"]


@dataclass(frozen=True)
class PlannedStep:
    """One step of a planned run: ``status`` is ``reuse`` (complete in the catalog) or ``compute``;
    for a mapped step to compute, ``pieces`` is how many it has and ``missing`` how many are not
    written yet (None when unknown: its coordinate comes from an input not computed yet)."""

    step: str
    label: str | None
    key: str
    kind: str
    status: str
    mapped: bool = False
    pieces: int | None = None
    missing: int | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class PlanRun:
    """The run context (:class:`~flows.context.RunContext`) of a plan: steps called in it are planned
    (:meth:`call_step`), not executed."""

    def __init__(self, catalog: Catalog):
        self.catalog = catalog
        self.steps: list[PlannedStep] = []
        self._seen: set[str] = set()

    def call_step(self, step: Step, inputs: Sequence[Ref], params: Mapping[str, Any], pieces: Pieces | None,
                  label: str | None) -> Ref:
        """The step's reference, and its line of the plan (a key planned twice is listed once)."""
        key = step.key(inputs, params, pieces.per_piece if step.map_over else None)
        uri = self.catalog.storage.uri(step.kind, key)
        rec = self.catalog.get(key)
        attrs = {} if rec is not None else self.catalog.storage.attrs(uri)
        done = rec is not None or (attrs.get(COMPLETE_ATTR) is True and attrs.get(LINEAGE_ATTR, {}).get("key") == key)
        total = missing = None
        if not done and step.map_over:
            coord = self._coord(step, inputs, params)
            if coord is not None:
                writer = RegionWriter(self.catalog.storage, uri, step.map_over, coord, pieces.per_piece)
                total, missing = writer.n_pieces, len(writer.missing())
        if key not in self._seen:
            self._seen.add(key)
            self.steps.append(PlannedStep(step.name, label, key, step.kind, "reuse" if done else "compute",
                                          bool(step.map_over), total, missing))
        return Ref(key, uri, step.kind, step.name, rec.fingerprint if rec is not None else None)

    def _coord(self, step: Step, inputs: Sequence[Ref], params: Mapping[str, Any]) -> np.ndarray | None:
        if step.coord_param:
            return np.asarray(params[step.coord_param]) if step.coord_param in params else None
        for r in inputs:
            if self.catalog.get(r.key) is None:
                return None  # the input is to be computed: its coordinate is not known yet
            values = self.catalog.storage.values(r.uri, step.map_over)
            if values is not None:
                return values
        return None


def plan_study(study_flow_obj: Any, config: Any, catalog: Catalog) -> tuple[list[PlannedStep], dict[str, Ref]]:
    """Every step of a run of ``study_flow_obj`` with ``config``, in the order the run would take them,
    and the run's outputs; nothing is computed or written."""
    run = PlanRun(catalog)
    with active(run):
        outputs = dict(study_flow_obj.body(config))
    return run.steps, outputs
