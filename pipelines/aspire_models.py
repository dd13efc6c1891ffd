"""Frozen pydantic models of the ASPIRE studies' parameters."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from .config import StudyConfig
from .models import Pieces, SeismicSurveyConfig

__all__ = ["LocationProblemSection", "GridSection", "AspireLocationConfig",
           "AspireSection", "TrainingSection", "VectorCNFSection", "ImageCNFSection", "LinearProblemSection",
           "AspireStylizedConfig", "LayersSection", "AnomalySection", "TextureSection", "SeismicPriorSection",
           "AspireSeismicConfig"]


class AspireSection(StudyConfig):
    """The loop: K ``iterations``; ``train_pairs`` training samples and ``test_cases`` held-out ones;
    ``estimate_draws`` posterior draws per sample for each next estimate (its posterior mean);
    ``posterior_draws`` per held-out case for the metrics; ``pieces.per_piece`` samples per chunk;
    ``cross_fit``: F folds — a training sample's next estimate comes from a CNF trained without its fold
    (1: from the CNF trained on all pairs, which saw it)."""

    iterations: int = Field(2, ge=1, le=100)
    cross_fit: int = Field(1, ge=1, le=20)
    train_pairs: int = Field(1000, ge=10, le=10_000_000)  # the linear baseline: 5-fold CV, 2 pairs a fold
    test_cases: int = Field(20, ge=2, le=100_000)
    estimate_draws: int = Field(64, ge=2, le=100_000)
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
    scale_bound: float = Field(2.0, gt=0, le=10, allow_inf_nan=False)  # each affine layer scales by <= exp(±this)


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


Speed = Annotated[float, Field(gt=0, le=20000, allow_inf_nan=False)]  # m/s
VelocityChange = Annotated[float, Field(ge=-5000, le=5000, allow_inf_nan=False)]  # m/s, a velocity change
Depth = Annotated[float, Field(ge=0, le=1e6, allow_inf_nan=False)]  # m
Radius = Annotated[float, Field(gt=0, le=1e6, allow_inf_nan=False)]  # m


def _ordered(section: str, **ranges: tuple[float, float]) -> None:
    for name, (lo, hi) in ranges.items():
        if lo > hi:
            raise ValueError(f"{section}.{name} = [{lo:g}, {hi:g}]: the low end must not exceed the high end")


class LayersSection(StudyConfig):
    """Dipping layers (:mod:`tasks.seismic.prior`): the first layer's velocity ~ U(``top_velocity``) m/s; per
    interface, top to bottom, its depth at the model's centre x ~ U(``depths[j]``) m, its dip ~
    U(−``max_dip``, ``max_dip``) degrees and the velocity step below it ~ U(``contrast``) m/s; an interface
    is kept at least ``min_thickness`` m below the one above it."""

    top_velocity: tuple[Speed, Speed] = (1600.0, 2000.0)
    contrast: tuple[VelocityChange, VelocityChange] = (100.0, 600.0)
    depths: tuple[tuple[Depth, Depth], ...] = Field(((100.0, 250.0), (250.0, 400.0)), min_length=1, max_length=16)
    max_dip: float = Field(15.0, ge=0, le=60, allow_inf_nan=False)
    min_thickness: float = Field(30.0, ge=0, le=1e6, allow_inf_nan=False)

    @model_validator(mode="after")
    def _check(self) -> LayersSection:
        _ordered("prior.layers", top_velocity=self.top_velocity, contrast=self.contrast,
                 **{f"depths[{j}]": d for j, d in enumerate(self.depths)})
        return self


class AnomalySection(StudyConfig):
    """One elliptic anomaly: centre uniform in the model shrunk by ``margin`` m on every side, each semi-axis
    ~ U(``radius``) m, orientation uniform, ``contrast`` ~ U(lo, hi) m/s added inside (negative: slower)."""

    radius: tuple[Radius, Radius] = (30.0, 90.0)
    contrast: tuple[VelocityChange, VelocityChange] = (-350.0, 500.0)
    margin: float = Field(60.0, ge=0, le=1e6, allow_inf_nan=False)

    @model_validator(mode="after")
    def _check(self) -> AnomalySection:
        _ordered("prior.anomaly", radius=self.radius, contrast=self.contrast)
        return self


class TextureSection(StudyConfig):
    """A weak Gaussian random field added last: ``std`` m/s (clipped to ±3 std), ``correlation_length`` m."""

    std: float = Field(25.0, ge=0, le=1000, allow_inf_nan=False)
    correlation_length: float = Field(40.0, gt=0, le=1e6, allow_inf_nan=False)


class SeismicPriorSection(StudyConfig):
    """The structural prior of velocity models on the ``model`` section's grid (:mod:`tasks.seismic.prior`):
    ``layers`` of varying depth, dip and velocity, an optional ``anomaly`` and ``texture`` (null: none).
    Initial estimates: the ``model`` section's layered model (the prior's central layers) smoothed by
    ``estimate_smoothing`` m; later estimates are kept inside [``vp_min``, ``vp_max``] m/s."""

    layers: LayersSection = LayersSection()
    anomaly: AnomalySection | None = AnomalySection()
    texture: TextureSection | None = TextureSection()
    estimate_smoothing: float = Field(60.0, gt=0, allow_inf_nan=False)
    snapshot_factor: int | None = Field(None, ge=1)  # gradients: None = Nyquist of f_max
    vp_min: float = Field(1150.0, gt=0, allow_inf_nan=False)  # m/s: the estimates are kept inside
    vp_max: float = Field(3800.0, gt=0, allow_inf_nan=False)  # [vp_min, vp_max] (the time step's range)

    @model_validator(mode="after")
    def _check(self) -> SeismicPriorSection:
        if self.vp_min >= self.vp_max:
            raise ValueError(f"vp_min ({self.vp_min}) must be below vp_max ({self.vp_max})")
        return self

    def sampler(self) -> dict:
        """The settings of :func:`tasks.seismic.prior.structural_models` (JSON values)."""
        return self.model_dump(mode="json", include={"layers", "anomaly", "texture"})


class AspireSeismicConfig(SeismicSurveyConfig):
    """ASPIRE on seismic imaging (see pipelines/studies/aspire_seismic.yaml)."""

    prior: SeismicPriorSection = SeismicPriorSection()
    aspire: AspireSection = AspireSection(train_pairs=1000, test_cases=50, posterior_draws=128, estimate_draws=64,
                                          cross_fit=2, pieces=Pieces(per_piece=25))
    cnf: ImageCNFSection = ImageCNFSection(scale_bound=1.0)
    training: TrainingSection = TrainingSection(epochs=40, batch_size=32, patience=10)

    @model_validator(mode="after")
    def _stable(self) -> AspireSeismicConfig:
        """The prior's grid is the ``model`` section's; every velocity the prior can produce and every estimate up
        to ``prior.vp_max`` must be stable with the survey's time step."""
        from tasks.seismic.prior import velocity_range
        from tasks.seismic.stencil import critical_dt

        m, p = self.model, self.prior
        if m.file is not None:
            raise ValueError("model.file: the prior's models are drawn on the model section's grid (shape, "
                             "spacing); an imported model has none")
        if len(m.depths) != len(p.layers.depths):
            raise ValueError(f"model.depths has {len(m.depths)} interfaces, prior.layers.depths "
                             f"{len(p.layers.depths)}: the model section is the prior's central layered model "
                             "(the initial estimate)")
        extent = min(m.shape) - 1
        if p.anomaly is not None and 2 * p.anomaly.margin >= extent * m.spacing:
            raise ValueError(f"prior.anomaly.margin = {p.anomaly.margin:g} m leaves no room for the anomaly's centre "
                             f"in a model {extent * m.spacing:g} m across")
        slowest, fastest = velocity_range(**p.sampler())
        if slowest <= 0:
            raise ValueError(f"the prior can make velocities down to {slowest:g} m/s: raise prior.layers.top_velocity "
                             "or the low ends of the contrasts, or lower prior.texture.std")
        spacing, order = [m.spacing] * 2, self.simulation.space_order
        dt = self.geometry.dt or 0.9 * critical_dt(max(max(m.velocities), fastest), spacing, order)
        top = max(p.vp_max, fastest)  # estimates, prior models
        limit = critical_dt(top, spacing, order)
        if dt > limit:
            raise ValueError(f"velocities up to {top:g} m/s (prior.vp_max, or the fastest the prior can make) need a "
                             f"time step <= {limit:.3g} s, the survey's is {dt:.3g} s: set geometry.dt, or lower "
                             "prior.vp_max or the prior's velocities")
        n = 2 ** self.cnf.levels
        if len(m.shape) != 2:
            raise ValueError(f"model.shape {list(m.shape)}: ASPIRE's image CNF takes 2-D (x, z) models")
        if m.shape[0] % n or m.shape[1] % n:
            raise ValueError(f"model.shape {list(m.shape)} must be divisible by 2**cnf.levels = {n}")
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
