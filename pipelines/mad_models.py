"""Frozen pydantic model of the ``mad`` study's parameters."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from .config import StudyConfig
from .models import Loop, Pieces

__all__ = ["MadDataSection", "MixtureSection", "FlowSection", "MadConfig"]


class MadDataSection(StudyConfig):
    """Real data: ``ring`` (``modes`` Gaussians of std ``std`` on a circle of ``radius``, 2D) or ``digits``
    (8x8, 64 features); a ``pool`` of real points, a ``held_out`` reference set, a PCA feature space of
    ``components`` axes."""

    kind: Literal["ring", "digits"] = "ring"
    pool: int = Field(20000, ge=10, le=10_000_000)
    held_out: int = Field(1000, ge=10, le=1_000_000)
    components: int = Field(16, ge=1, le=64)
    modes: int = Field(6, ge=1, le=64)
    radius: float = Field(4.0, gt=0, allow_inf_nan=False)
    std: float = Field(0.4, gt=0, allow_inf_nan=False)


class MixtureSection(StudyConfig):
    """The Gaussian-mixture family (scikit-learn EM)."""

    components: int = Field(6, ge=1, le=256)
    reg_covar: float = Field(1e-6, gt=0, le=1)


class FlowSection(StudyConfig):
    """The neural spline flow family (zuko NSF), trained by maximum likelihood."""

    transforms: int = Field(3, ge=1, le=16)
    hidden_features: tuple[Annotated[int, Field(ge=1, le=4096)], ...] = (32, 32)
    bins: int = Field(8, ge=2, le=64)
    epochs: int = Field(40, ge=1, le=10_000)
    batch_size: int = Field(128, ge=1)
    lr: float = Field(1e-3, gt=0, le=1)
    dequantize: float = Field(0.0, ge=0, le=1e6, allow_inf_nan=False)  # width of the uniform noise added to
    # the training points (discrete data such as the digits' 17 grey levels: 1/16 on the [0, 1] scale)


class MadConfig(StudyConfig):
    """Self-consuming loops of any model family (see pipelines/studies/mad.yaml)."""

    data: MadDataSection = MadDataSection()
    family: Literal["gaussian", "mixture", "flow"] = "mixture"
    mixture: MixtureSection = MixtureSection()
    flow: FlowSection = FlowSection()
    loops: tuple[Loop, ...] = ("fully_synthetic", "synthetic_augmentation", "fresh_data")
    biases: tuple[Annotated[float, Field(gt=0, le=10, allow_inf_nan=False)], ...] = (1.0, 0.5)
    n: int = Field(200, ge=2)
    n_synth: int = Field(200, ge=0)
    n_fresh: int = Field(200, ge=0)
    n_eval: int = Field(400, ge=4)
    k: int = Field(3, ge=1, le=100)
    generations: int = Field(5, ge=1, le=1000)
    chains: int = Field(10, ge=2, le=100_000)
    pieces: Pieces = Pieces(per_piece=2)  # chains per zarr chunk
    seed: int = Field(0, ge=0)

    @model_validator(mode="after")
    def _check(self) -> MadConfig:
        if not self.loops or len(set(self.loops)) != len(self.loops):
            raise ValueError(f"loops must name distinct loop types, got {list(self.loops)}")
        if not self.biases or len(set(self.biases)) != len(self.biases):
            raise ValueError(f"biases must be distinct, got {list(self.biases)}")
        if self.n > self.data.pool:
            raise ValueError(f"n = {self.n} real points per chain exceed the pool ({self.data.pool})")
        if "fresh_data" in self.loops and self.n_fresh == 0:
            raise ValueError("the fresh_data loop needs n_fresh > 0 real samples per generation")
        if "fresh_data" in self.loops and self.n_fresh > self.data.pool:
            raise ValueError(f"n_fresh = {self.n_fresh} exceeds the pool ({self.data.pool})")
        if self.k >= min(self.n_eval, self.data.held_out):
            raise ValueError(f"k = {self.k} needs n_eval and data.held_out above it")
        return self

    @property
    def options(self) -> dict:
        """The chosen family's fitting options."""
        return {"gaussian": {}, "mixture": self.mixture.model_dump(mode="json"),
                "flow": self.flow.model_dump(mode="json")}[self.family]
