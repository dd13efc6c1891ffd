"""The base of every configuration section: a frozen pydantic model in which an unknown field is an error."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

__all__ = ["StudyConfig"]


class StudyConfig(BaseModel):
    """Base of every study's parameters (and of the sections they are made of): frozen, unknown fields are errors."""

    model_config = ConfigDict(frozen=True, extra="forbid")
