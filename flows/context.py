"""The run context: the run a study's flow body runs in, which decides what a step call does.

:class:`RunContext` is the protocol the three kinds of run implement: a study run (:class:`flows.study.StudyRun`:
reuse or compute each dataset), a plan (:class:`flows.plan.PlanRun`: keys only) and a direct run
(:class:`flows.direct.DirectRun`: in memory). ``Step.__call__`` asks :func:`current_run` for the run context
:func:`active` made current. They are defined in :mod:`flows.step`, beside ``Step``, which dispatches to them
(so that neither module imports the other); this is the name the runs use.
"""

from __future__ import annotations

from .step import RunContext, active, current_run

__all__ = ["RunContext", "current_run", "active"]
