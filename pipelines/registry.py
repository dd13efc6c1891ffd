"""Study registry, derived from the packages of studies (``studies``, and any in ``$STRATA_STUDY_PACKAGES``):
name → summary, config model and flow. Listing reads files only; a study's module is imported when its model or
flow is asked for."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import studies
from flows.config import StudyConfig

__all__ = ["StudyEntry", "STUDIES", "models", "load_flow"]


@dataclass(frozen=True)
class StudyEntry:
    name: str

    @property
    def summary(self) -> str:
        return studies.summary(self.name)

    @property
    def model(self) -> type[StudyConfig]:
        return studies.load(self.name).config


class _Registry(Mapping[str, StudyEntry]):
    """{name: entry}, found again at each use (the environment may name more packages of studies)."""

    def __getitem__(self, name: str) -> StudyEntry:
        if name not in studies.names():
            raise KeyError(name)
        return StudyEntry(name)

    def __iter__(self) -> Iterator[str]:
        return iter(studies.names())

    def __len__(self) -> int:
        return len(studies.names())


STUDIES: Mapping[str, StudyEntry] = _Registry()


class _Models(Mapping[str, type[StudyConfig]]):
    """{name: config model}, each study's module imported on first access."""

    def __getitem__(self, name: str) -> type[StudyConfig]:
        return STUDIES[name].model

    def __contains__(self, name: object) -> bool:  # without importing the study's module
        return name in STUDIES

    def __iter__(self) -> Iterator[str]:
        return iter(STUDIES)

    def __len__(self) -> int:
        return len(STUDIES)


def models() -> Mapping[str, type[StudyConfig]]:
    return _Models()


def load_flow(name: str) -> Any:
    """The study ``name`` (a :class:`flows.declare.Study`: ``body``, ``flow()``, ``with_options``)."""
    return studies.load(name)
