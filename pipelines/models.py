"""Frozen pydantic models of each study's parameters."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from .config import StudyConfig

__all__ = ["MadGaussianConfig"]

Loop = Literal["fully_synthetic", "synthetic_augmentation", "fresh_data"]


class MadGaussianConfig(StudyConfig):
    """The self-consuming Gaussian loop (see pipelines/studies/mad_gaussian.yaml)."""

    dim: int = Field(2, ge=1, le=64)
    mu0: float = 0.0
    sigma0: float = Field(1.0, gt=0)
    rho: float = Field(0.5, gt=-1, lt=1)
    n: int = Field(20, ge=2)
    n_synth: int = Field(20, ge=0)
    n_fresh: int = Field(10, ge=0)
    lam: float = Field(1.0, gt=0, le=10)
    estimator: Literal["unbiased", "mle"] = "unbiased"
    loops: tuple[Loop, ...] = ("fully_synthetic", "synthetic_augmentation", "fresh_data")
    generations: int = Field(20, ge=1, le=10000)
    chains: int = Field(400, ge=1)
    chains_per_piece: int = Field(400, ge=1)
    seed: int = Field(0, ge=0)

    @model_validator(mode="after")
    def _check(self) -> MadGaussianConfig:
        if not self.loops:
            raise ValueError("loops must name at least one loop type")
        if len(set(self.loops)) != len(self.loops):
            raise ValueError("loops has duplicates")
        if "fresh_data" in self.loops and self.n_fresh + self.n_synth < 2:
            raise ValueError("fresh_data needs n_fresh + n_synth >= 2")
        if self.dim > 1 and not (-1.0 / (self.dim - 1) < self.rho < 1.0):
            raise ValueError(f"rho must lie in (-1/(dim-1), 1) = ({-1.0 / (self.dim - 1):.3g}, 1) for a valid covariance")
        return self
