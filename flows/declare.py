"""A study declared in one place: ``@study(config=Model, summary=…, claims=…)`` on its flow body.

The study's name is its module's name (``studies/seismic_survey.py`` declares ``seismic_survey``), so it is
written once; the registry (``pipelines.registry``) is derived from the modules of the ``studies`` package. The
body is a plain function ``body(config) -> {output name: Ref}`` that calls steps; the run context decides what a
step call does (execute, plan, direct). The claims a study checks are declared with it: after the body, the
``claims`` step measures the claims whose outputs the run returned (a study with claims always gets a ``claims``
output). The Prefect flow is built only when a run asks for it (``flow()``), so declaring and listing studies
imports no Prefect.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from tasks.claims import Claim

from .claims import check_claims
from .config import StudyConfig
from .step import Ref

__all__ = ["Study", "study"]

Body = Callable[[Any], Mapping[str, Ref]]


@dataclass(frozen=True, eq=False)
class Study:
    """A registered study: its name, config model, one-line summary, declared claims and flow body."""

    name: str
    config: type[StudyConfig]
    summary: str
    steps: Body
    claims: tuple[Claim, ...] = ()
    _flow: list[Any] = field(default_factory=list, repr=False)

    def body(self, config: Any) -> dict[str, Ref]:
        """The study's outputs for ``config`` in the current run context: its steps, then its claims."""
        outputs = dict(self.steps(config))
        if self.claims:
            outputs["claims"] = check_claims(self.claims, outputs)
        return outputs

    def flow(self) -> Any:
        """The study's Prefect flow (built on first use)."""
        if not self._flow:
            from .study import study_flow

            self._flow.append(study_flow(self.name)(self.body))
        return self._flow[0]

    def with_options(self, **options: Any) -> Any:
        """The Prefect flow with ``options`` (``Flow.with_options``), as a run starts it."""
        return self.flow().with_options(**options)


def study(*, config: type[StudyConfig], summary: str, claims: Sequence[Claim] = ()) -> Callable[[Body], Study]:
    """Declare the decorated flow body as the study named after its module."""

    def deco(body: Body) -> Study:
        return Study(body.__module__.rsplit(".", 1)[-1], config, summary, body, tuple(claims))

    return deco
