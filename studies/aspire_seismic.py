"""Study ``aspire_seismic``: ASPIRE on seismic imaging — a structural prior of small velocity models
(dipping layers of varying depth and velocity, an elliptic anomaly, a weak texture), their noisy surveys,
FWI-gradient summaries at the current estimates, a conditional Glow per iteration."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, model_validator

from flows.config import StudyConfig
from flows.declare import study
from flows.step import Ref, Step
from tasks.claims import Claim
from tasks.inference import claims as measures
from tasks.seismic.pairs import repeat_model
from tasks.seismic.prior import structural_models

from .shared.aspire import ASPIRE_PAPER, REFINE_PAPER, Problem, aspire_loop, coverage_claims, sample_labels
from .shared.learning import AspireSection, ImageCNFSection, TrainingSection
from .shared.sections import GeometrySection, Pieces, SeismicSurveyConfig, SimulationSection, VelocityModelSection
from .shared.steps import background, gradients, model_and_geometry, pair_data

__all__ = ["aspire_seismic", "AspireSeismicConfig", "CLAIMS"]


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

    top_velocity: tuple[Speed, Speed] = (1600.0, 2000.0)  # m/s: the first layer's velocity, uniform
    # m/s: the velocity step at each interface (down), uniform
    contrast: tuple[VelocityChange, VelocityChange] = (100.0, 600.0)
    # m: each interface's depth at the centre x, uniform
    depths: tuple[tuple[Depth, Depth], ...] = Field(((100.0, 250.0), (250.0, 400.0)), min_length=1, max_length=16)
    # degrees: each interface's dip ~ U(-max_dip, max_dip)
    max_dip: float = Field(15.0, ge=0, le=60, allow_inf_nan=False)
    # m: an interface stays this far below the one above
    min_thickness: float = Field(30.0, ge=0, le=1e6, allow_inf_nan=False)

    @model_validator(mode="after")
    def _check(self) -> LayersSection:
        _ordered("prior.layers", top_velocity=self.top_velocity, contrast=self.contrast,
                 **{f"depths[{j}]": d for j, d in enumerate(self.depths)})
        return self


class AnomalySection(StudyConfig):
    """One elliptic anomaly: centre uniform in the model shrunk by ``margin`` m on every side, each semi-axis
    ~ U(``radius``) m, orientation uniform, ``contrast`` ~ U(lo, hi) m/s added inside (negative: slower)."""

    radius: tuple[Radius, Radius] = (30.0, 90.0)  # m: each semi-axis of the ellipse, uniform
    contrast: tuple[VelocityChange, VelocityChange] = (-350.0, 500.0)  # m/s: added inside, uniform
    margin: float = Field(60.0, ge=0, le=1e6, allow_inf_nan=False)  # m: the centre stays this far inside the model

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
    texture: TextureSection | None = TextureSection()  # m/s (clipped to ±3 std), m
    # m: x̂⁰ = the model section's layered model smoothed (in slowness)
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
    """ASPIRE on seismic imaging."""

    model: VelocityModelSection = VelocityModelSection(shape=(32, 32), spacing=15.0,
                                                       velocities=(1800.0, 2150.0, 2500.0), depths=(175.0, 325.0))
    geometry: GeometrySection = GeometrySection(layout="ring", ring_inset=30.0, n_receivers=64, f0=8.0, dt=0.002)
    simulation: SimulationSection = SimulationSection(nbl=20, noise_snr_db=20.0, seed=2026)
    prior: SeismicPriorSection = SeismicPriorSection()
    aspire: AspireSection = AspireSection(train_pairs=1000, test_cases=50, posterior_draws=128, estimate_draws=64,
                                          cross_fit=2, pieces=Pieces(per_piece=25), seed=5)
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


CLAIMS = (
    Claim("refines", "the last iteration's posterior-mean rmse is below the first's by more than 2 paired SE",
          REFINE_PAPER, measures.change, ("metrics",), "at_most", 0.0, 2.0, args={"name": "rmse"},
          paper_note="figures: posterior means and errors over iterations (a 512² model; no rmse table)"),
    Claim("beats_prior_mean", "the last iteration's posterior-mean rmse is at most 0.8 × predicting the prior mean",
          ASPIRE_PAPER, measures.ratio, ("metrics",), "at_most", 0.8,
          args={"name": "rmse", "other": "rmse_prior_mean"}, paper_note="no baseline in the paper"),
    Claim("beats_linear", "the last iteration's posterior-mean rmse is at most the ridge regression's on the same "
          "condition (the SE is of the paired difference over cases)", ASPIRE_PAPER, measures.difference,
          ("metrics",), "at_most", 0.0,
          args={"name": "rmse", "other": "rmse_linear"}, paper_note="no baseline in the paper"),
    *coverage_claims(0.80, 0.97),
)

prior_models = Step("prior_models", structural_models, version="1", kind="model_samples", map_over="sample",
                    coord_param="samples")
initial = Step("initial_estimates", repeat_model, version="1", kind="model_samples", map_over="sample")


@study(config=AspireSeismicConfig, claims=CLAIMS,
       summary="ASPIRE on seismic imaging: 64x64 GRF velocity prior, FWI-gradient summaries, conditional Glow")
def aspire_seismic(cfg: AspireSeismicConfig) -> dict[str, Ref]:
    a, p, s = cfg.aspire, cfg.prior, cfg.simulation
    fd = {"space_order": s.space_order, "nbl": s.nbl}
    _, vel, geo = model_and_geometry(cfg)
    bg = background(vel, label=f"sigma {p.estimate_smoothing:g} m", sigma=p.estimate_smoothing)
    grid = {"shape": list(cfg.model.shape), "spacing": cfg.model.spacing}
    labels = sample_labels(a)
    models, data, x0 = {}, {}, {}
    for w, v in labels.items():
        models[w] = prior_models(pieces=a.pieces, label=f"{len(v)} {w}", samples=v, **grid, **p.sampler(),
                                 seed=a.seed)
        data[w] = pair_data(models[w], geo, pieces=a.pieces, label=w, noise_snr_db=s.noise_snr_db, seed=s.seed, **fd)
        x0[w] = initial(bg, models[w], pieces=a.pieces, label=w)

    def summarize(xhat: Ref, split: str, k: int) -> Ref:
        return gradients(xhat, data[split], geo, pieces=a.pieces, label=f"k={k} {split}",
                         factor=p.snapshot_factor, **fd)

    loop = Problem(truth=models, initial=x0, summarize=summarize, var="vp", clip=(p.vp_min, p.vp_max))
    out = {"velocity_model": vel, "geometry": geo, "background": bg, **aspire_loop(cfg, loop)}
    return out
