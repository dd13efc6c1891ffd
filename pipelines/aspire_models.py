"""Frozen pydantic models of the ASPIRE studies' parameters."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from .config import StudyConfig
from .models import Pieces, SeismicSurveyConfig

__all__ = ["LocationProblemSection", "GridSection", "AspireLocationConfig",
           "AspireSection", "TrainingSection", "VectorCNFSection", "ImageCNFSection", "LinearProblemSection",
           "AspireStylizedConfig", "SeismicPriorSection", "AspireSeismicConfig"]


class AspireSection(StudyConfig):
    """The loop: K ``iterations``; ``train_pairs`` training samples and ``test_cases`` held-out ones;
    ``estimate_draws`` posterior draws per sample for each next estimate (its posterior mean);
    ``posterior_draws`` per held-out case for the metrics; ``pieces.per_piece`` samples per chunk;
    ``cross_fit``: F folds — a training sample's next estimate comes from a CNF trained without its fold
    (1: from the CNF trained on all pairs, which saw it)."""

    iterations: int = Field(2, ge=1, le=100)
    cross_fit: int = Field(1, ge=1, le=20)
    train_pairs: int = Field(1000, ge=8, le=10_000_000)
    test_cases: int = Field(20, ge=2, le=100_000)
    estimate_draws: int = Field(32, ge=2, le=100_000)
    posterior_draws: int = Field(4000, ge=2, le=1_000_000)
    seed: int = Field(0, ge=0)
    pieces: Pieces = Pieces(per_piece=1000)

    @model_validator(mode="after")
    def _check(self) -> AspireSection:
        if self.test_cases > self.train_pairs:
            raise ValueError(f"test_cases ({self.test_cases}) must not exceed train_pairs ({self.train_pairs})")
        return self


class TrainingSection(StudyConfig):
    """Maximum-likelihood training of each CNF: Adam, a ``held_out`` share for early stopping on its NLL
    (``patience`` epochs; null: run all ``epochs``). ``threads``: torch threads of the training process —
    results may depend on them, so they are part of the checkpoint's key."""

    epochs: int = Field(100, ge=1, le=100_000)
    batch_size: int = Field(256, ge=1)
    lr: float = Field(1e-3, gt=0, le=1, allow_inf_nan=False)
    held_out: float = Field(0.2, gt=0, lt=1)
    patience: int | None = Field(20, ge=1)
    threads: int = Field(2, ge=1, le=512)


class VectorCNFSection(StudyConfig):
    """The vector CNF (zuko): ``family`` nsf (splines) or maf (affine), autoregressive ``transforms``."""

    family: Literal["nsf", "maf"] = "maf"
    transforms: int = Field(3, ge=1, le=64)
    hidden_features: tuple[int, ...] = Field((64, 64), min_length=1)
    activation: Literal["relu", "elu", "silu", "tanh"] = "relu"


class ImageCNFSection(StudyConfig):
    """The conditional Glow: ``levels`` of squeeze, ``steps`` flow steps, split; ``hidden`` conv channels."""

    levels: int = Field(3, ge=1, le=8)
    steps: int = Field(4, ge=1, le=64)
    hidden: int = Field(32, ge=4, le=1024)
    context_features: int = Field(8, ge=1, le=1024)  # channels of the encoded condition per level
    pixelwise: bool = True  # z-score x and the condition per pixel (gradients vary strongly across the image)


class LinearProblemSection(StudyConfig):
    """x ∈ R^d ~ N(mu0, G0), y = A x + ε ∈ R^m, ε ~ N(0, Gn) with Gn[i, j] = noise_scale² ·
    noise_correlation^|i−j| (0: white); a seeded random A, mu0 and G0 (eigenvalues in prior_scale² ·
    [1/spread, 1])."""

    d: int = Field(4, ge=1, le=256)
    m: int = Field(6, ge=1, le=1024)
    prior_scale: float = Field(1.0, gt=0, allow_inf_nan=False)
    noise_scale: float = Field(0.3, gt=0, allow_inf_nan=False)
    noise_correlation: float = Field(0.5, ge=0, lt=1)
    spread: float = Field(4.0, ge=1, allow_inf_nan=False)
    seed: int = Field(0, ge=0)


class AspireStylizedConfig(StudyConfig):
    """ASPIRE on the linear-Gaussian problem (see pipelines/studies/aspire_stylized.yaml)."""

    problem: LinearProblemSection = LinearProblemSection()
    aspire: AspireSection = AspireSection()
    cnf: VectorCNFSection = VectorCNFSection()
    training: TrainingSection = TrainingSection()


class SeismicPriorSection(StudyConfig):
    """The prior of velocity models: the layered background of ``model`` plus a Gaussian random field
    (m/s standard deviation, correlation length in m); initial estimates: each model smoothed."""

    perturbation_std: float = Field(150.0, gt=0, le=5000, allow_inf_nan=False)
    correlation_length: float = Field(80.0, gt=0, allow_inf_nan=False)
    estimate_smoothing: float = Field(60.0, gt=0, allow_inf_nan=False)
    snapshot_factor: int | None = Field(None, ge=1)  # gradients: None = Nyquist of f_max
    vp_min: float = Field(900.0, gt=0, allow_inf_nan=False)  # m/s: the estimates are kept inside
    vp_max: float = Field(3200.0, gt=0, allow_inf_nan=False)  # [vp_min, vp_max] (the time step's range)

    @model_validator(mode="after")
    def _check(self) -> SeismicPriorSection:
        if self.vp_min >= self.vp_max:
            raise ValueError(f"vp_min ({self.vp_min}) must be below vp_max ({self.vp_max})")
        return self


class AspireSeismicConfig(SeismicSurveyConfig):
    """ASPIRE on seismic imaging (see pipelines/studies/aspire_seismic.yaml)."""

    prior: SeismicPriorSection = SeismicPriorSection()
    aspire: AspireSection = AspireSection(train_pairs=256, test_cases=8, posterior_draws=256, estimate_draws=16,
                                          pieces=Pieces(per_piece=4))
    cnf: ImageCNFSection = ImageCNFSection()
    training: TrainingSection = TrainingSection(batch_size=32)

    @model_validator(mode="after")
    def _stable(self) -> AspireSeismicConfig:
        """Estimates up to ``prior.vp_max`` must be stable with the survey's time step."""
        from tasks.seismic.stencil import critical_dt

        spacing, order = [self.model.spacing] * 2, self.simulation.space_order
        dt = self.geometry.dt or 0.9 * critical_dt(max(self.model.velocities), spacing, order)
        p = self.prior
        fastest = max(p.vp_max, max(self.model.velocities) + 5 * p.perturbation_std)  # estimates, prior models
        limit = critical_dt(fastest, spacing, order)
        if dt > limit:
            raise ValueError(f"velocities up to {fastest:g} m/s (prior.vp_max, or the fastest layer + 5 "
                             f"perturbation_std) need a time step <= {limit:.3g} s, the survey's is {dt:.3g} s: "
                             "set geometry.dt, or lower prior.vp_max or prior.perturbation_std")
        if min(self.model.velocities) - 5 * p.perturbation_std <= 0:
            raise ValueError(f"prior.perturbation_std = {p.perturbation_std:g} m/s makes velocities below 0 likely "
                             f"in the slowest layer ({min(self.model.velocities):g} m/s): at most a fifth of it")
        n = 2 ** self.cnf.levels
        if self.model.shape[0] % n or self.model.shape[1] % n:
            raise ValueError(f"model.shape {list(self.model.shape)} must be divisible by 2**cnf.levels = {n}")
        return self


class LocationProblemSection(StudyConfig):
    """Source location from travel times: ``receivers`` on a circle of ``radius`` km around the origin,
    ``velocity`` km/s, Gaussian noise of ``noise_std`` s; the source x ~ N(0, I) km; ``seed`` of the cases."""

    receivers: int = Field(8, ge=2, le=1024)
    radius: float = Field(1.0, gt=0, le=100, allow_inf_nan=False)
    velocity: float = Field(1.0, gt=0, le=100, allow_inf_nan=False)
    noise_std: float = Field(0.1, gt=0, le=100, allow_inf_nan=False)
    seed: int = Field(0, ge=0)


class GridSection(StudyConfig):
    """The quadrature grid of the exact posterior: ``points`` per axis (odd) over ±``extent`` km."""

    points: int = Field(241, ge=11, le=2001)
    extent: float = Field(4.0, gt=0, le=100, allow_inf_nan=False)

    @model_validator(mode="after")
    def _odd(self) -> GridSection:
        if self.points % 2 == 0:
            raise ValueError(f"points must be odd (0 on the grid), got {self.points}")
        return self


class AspireLocationConfig(StudyConfig):
    """ASPIRE on source location from travel times (see pipelines/studies/aspire_location.yaml)."""

    problem: LocationProblemSection = LocationProblemSection()
    grid: GridSection = GridSection()
    aspire: AspireSection = AspireSection(train_pairs=20000, test_cases=100, estimate_draws=128,
                                          posterior_draws=1000, cross_fit=2, pieces=Pieces(per_piece=5000))
    cnf: VectorCNFSection = VectorCNFSection(family="nsf")
    training: TrainingSection = TrainingSection(epochs=60, patience=10)
