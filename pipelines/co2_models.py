"""Frozen pydantic models of the CO2 forecasting study's parameters."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from .aspire_models import TrainingSection
from .config import StudyConfig
from .models import ImagingSection, Pieces, SeismicSurveyConfig

__all__ = ["RockSection", "Well", "FlowSection", "SamplesSection", "FNOSection", "SurrogateTrainingSection",
           "MonitoringSection", "InversionSection", "Co2ForecastConfig"]

Positive = Annotated[float, Field(gt=0, allow_inf_nan=False)]


class ChannelSection(StudyConfig):
    """A channel of ``channel`` mD in a ``background`` of mD, centred at ``depth`` m, ``thickness`` m
    thick, its top and bottom each perturbed by a Gaussian process (std ``undulation`` m, squared-
    exponential correlation ``correlation_length`` m)."""

    background: Positive = 20.0
    channel: Positive = 120.0
    depth: Positive = 480.0
    thickness: Positive = 150.0
    undulation: float = Field(60.0, ge=0, allow_inf_nan=False)
    correlation_length: Positive = 300.0


class GRFSection(StudyConfig):
    """Log-normal permeability: geometric ``mean`` mD, std of ln k, Gaussian correlation length (m)."""

    mean: Positive = 50.0
    log_std: float = Field(0.5, ge=0, le=5, allow_inf_nan=False)
    correlation_length: Positive = 120.0


class FNO4CO2Section(StudyConfig):
    """FNO4CO2's channel (``scripts/gen_perm.jl``), in cells: ``channel`` mD between a top and a bottom drawn
    per sample as a base cell in the depth-fraction ranges ``top`` and ``bottom`` plus, per column, a rounded
    Gaussian-process offset of covariance ``variance`` exp(−Δ²/``length``²) (cells², Δ and length in cells;
    ``jitter`` · variance on the diagonal); ``background`` mD elsewhere."""

    background: Positive = 20.0
    channel: Positive = 120.0
    variance: float = Field(5.0, ge=0, allow_inf_nan=False)  # cells²
    length: Positive = 6.25  # cells
    jitter: float = Field(1e-5, ge=0, le=1)
    top: tuple[Annotated[float, Field(ge=0, le=1)], Annotated[float, Field(ge=0, le=1)]] = (0.37, 0.42)
    bottom: tuple[Annotated[float, Field(ge=0, le=1)], Annotated[float, Field(ge=0, le=1)]] = (0.55, 0.60)

    @model_validator(mode="after")
    def _ranges(self) -> FNO4CO2Section:
        for name, (lo, hi) in (("top", self.top), ("bottom", self.bottom)):
            if lo > hi:
                raise ValueError(f"fno4co2.{name} must be a range [low, high], got {[lo, hi]}")
        return self


class PorositySection(StudyConfig):
    """``constant`` (``value``) or ``from_permeability`` (φ = value · (k / k_ref)^exponent)."""

    kind: Literal["constant", "from_permeability"] = "constant"
    value: float = Field(0.25, gt=0, lt=1, allow_inf_nan=False)
    k_ref: Positive = 50.0
    exponent: float = Field(0.1, ge=0, le=2, allow_inf_nan=False)


class RockSection(StudyConfig):
    """Permeability and porosity on ``shape`` (x, z) cells of ``spacing`` m: ``channelized``, ``grf`` or
    ``fno4co2`` (FNO4CO2's own channel generator)."""

    kind: Literal["channelized", "grf", "fno4co2"] = "channelized"
    shape: tuple[Annotated[int, Field(ge=4, le=4096)], Annotated[int, Field(ge=4, le=4096)]] = (64, 64)
    spacing: Positive = 15.0
    channel: ChannelSection = ChannelSection()
    grf: GRFSection = GRFSection()
    fno4co2: FNO4CO2Section = FNO4CO2Section()
    porosity: PorositySection = PorositySection()

    def sampler_params(self) -> dict:
        """The keyword arguments of ``tasks.co2.fields.rock_samples`` but ``samples`` and ``seed`` (only the
        section of the generator used)."""
        section = {"channelized": "channel", "grf": "grf", "fno4co2": "fno4co2"}[self.kind]
        generator = {section: getattr(self, section)}
        return {"kind": self.kind, "shape": list(self.shape), "spacing": self.spacing,
                "porosity": self.porosity.model_dump(mode="json"),
                **{k: v.model_dump(mode="json") for k, v in generator.items()}}


class Well(StudyConfig):
    """A well in the cell holding (``x``, ``z``) m: a ``rate`` (m³/s of reservoir volume; > 0 injects CO2,
    < 0 produces) or, for a producer, a bottom-hole ``pressure`` (Pa)."""

    name: str = Field(min_length=1, max_length=64)
    x: float = Field(ge=0, allow_inf_nan=False)
    z: float = Field(ge=0, allow_inf_nan=False)
    rate: float | None = Field(None, allow_inf_nan=False)
    pressure: float | None = Field(None, allow_inf_nan=False)

    @model_validator(mode="after")
    def _one(self) -> Well:
        if (self.rate is None) == (self.pressure is None):
            raise ValueError(f"well {self.name!r}: give exactly one of rate and pressure")
        return self


class FlowSection(StudyConfig):
    """Incompressible two-phase flow: ``wells``, ``reports`` report times every ``report_every`` days,
    viscosities (cP), Corey exponents and residual saturations (CO2, brine), the transport CFL number,
    sub-stepping (off: ``dt`` s must satisfy the CFL bound), pressure solves per report interval, phase
    densities (kg/m³) and ``gravity`` (m/s² along the depth z; 0 turns buoyancy off)."""

    wells: tuple[Well, ...] = (Well(name="injector", x=97.5, z=480.0, rate=1e-3),
                               Well(name="producer", x=862.5, z=480.0, rate=-1e-3))
    reports: int = Field(16, ge=1, le=1000)
    report_every: Positive = 50.0  # days
    thickness: Positive = 1.0  # m, out of plane
    mu_co2: Positive = 0.1
    mu_brine: Positive = 1.0
    corey: tuple[Positive, Positive] = (2.0, 2.0)
    residual: tuple[Annotated[float, Field(ge=0, lt=1)], Annotated[float, Field(ge=0, lt=1)]] = (0.0, 0.0)
    cfl: float = Field(0.9, gt=0, le=1)
    substep: bool = True
    dt: float | None = Field(None, gt=0, allow_inf_nan=False)  # s, used when substep is off
    pressure_steps: int = Field(1, ge=1, le=10_000)
    rho_brine: float = Field(1053.0, gt=0, le=3000, allow_inf_nan=False)  # kg/m³
    rho_co2: float = Field(501.9, gt=0, le=3000, allow_inf_nan=False)  # kg/m³
    gravity: float = Field(9.8, ge=0, le=100, allow_inf_nan=False)  # m/s², 0: off

    @model_validator(mode="after")
    def _check(self) -> FlowSection:
        if not self.substep and self.dt is None:
            raise ValueError("substep: false needs a time step dt (s)")
        if sum(self.residual) >= 1:
            raise ValueError(f"residual saturations {list(self.residual)} must sum to less than 1")
        return self

    @property
    def times(self) -> list[float]:
        """Report times in days."""
        return [self.report_every * (i + 1) for i in range(self.reports)]

    def simulator_params(self) -> dict:
        """The keyword arguments of ``tasks.co2.simulator.simulate_samples``."""
        params = self.model_dump(mode="json", exclude={"reports", "report_every", "wells"})
        params.update(times=self.times, wells=[w.model_dump(mode="json", exclude_none=True) for w in self.wells])
        return params


class SamplesSection(StudyConfig):
    """``train`` simulations for the surrogate and ``test`` held-out ones (forecasts and errors);
    ``pieces.per_piece`` samples per zarr chunk."""

    train: int = Field(200, ge=4, le=1_000_000)
    test: int = Field(16, ge=1, le=100_000)
    seed: int = Field(0, ge=0)
    pieces: Pieces = Pieces(per_piece=4)


class FNOSection(StudyConfig):
    """The FNO (``tasks.co2.surrogate.FNOSurrogate``): ``kind`` 2d (over (x, z), the report times as output
    channels) or 3d (over (x, z, t), the inputs repeated at every report time, one output channel: FNO4CO2's);
    ``modes`` kept per axis — two for 2d, three (x, z, t) for 3d — as neuraloperator's ``n_modes`` counts them
    (the negative and positive frequencies together; the last axis keeps ``m // 2 + 1`` of its half spectrum);
    ``width`` hidden channels, ``layers`` Fourier layers; ``padding``: zero padding of that fraction of every
    axis at both ends before the Fourier layers (neuraloperator's ``domain_padding``; 0 = off), so that the
    periodic Fourier layers do not make the two ends of an axis neighbours."""

    kind: Literal["2d", "3d"] = "2d"
    modes: tuple[Annotated[int, Field(ge=1, le=512)], ...] = Field((12, 12), min_length=2, max_length=3)
    width: int = Field(32, ge=1, le=1024)
    layers: int = Field(4, ge=1, le=32)
    padding: float = Field(0.0, ge=0, le=1, allow_inf_nan=False)

    @model_validator(mode="after")
    def _modes(self) -> FNOSection:
        axes = 2 if self.kind == "2d" else 3
        if len(self.modes) != axes:
            raise ValueError(f"fno.kind {self.kind} needs {axes} modes, got {list(self.modes)}")
        return self


class SurrogateTrainingSection(TrainingSection):
    """Training of the FNO: Adam on the mean relative L2 error per sample, or AdamW with ``weight_decay`` > 0
    (decoupled, as ``torch.optim.AdamW``); ``clamp``: the error of the forecast clamped to [0, 1] (FNO4CO2's
    ``relu01``), as ``forecast`` reports it (its gradient passes the clamp: see ``tasks.co2.surrogate``)."""

    weight_decay: float = Field(0.0, ge=0, le=1, allow_inf_nan=False)
    clamp: bool = False


class MonitoringSection(SeismicSurveyConfig):
    """Time-lapse seismic: the baseline model (``model``, on the flow grid), the survey, and the RTM of the
    difference data; the monitor survey sees held-out ``case`` at report ``report`` (1-based; null: the
    last), through patchy rock physics (porosity of the case; density of the baseline from Gardner's law)."""

    imaging: ImagingSection = ImagingSection()
    case: int = Field(0, ge=0)
    report: int | None = Field(None, ge=1)


class InversionSection(StudyConfig):
    """Coupled inversion of the monitored case's permeability from its monitor records through the FNO,
    rock physics and the wave equation: ``iterations`` gradient steps (0: off) from a constant ``initial``
    mD, steps of at most ``step`` in ln mD (halved up to ``backtracks`` times until the misfit falls), ln k
    kept inside ``bounds`` mD; ``snapshot_factor`` 1 = the exact gradient."""

    iterations: int = Field(0, ge=0, le=1000)
    initial: Positive = 40.0
    bounds: tuple[Positive, Positive] = (5.0, 500.0)
    step: Positive = 0.5
    backtracks: int = Field(4, ge=0, le=30)
    snapshot_factor: int = Field(1, ge=1)

    @model_validator(mode="after")
    def _check(self) -> InversionSection:
        if not self.bounds[0] < self.initial < self.bounds[1]:
            raise ValueError(f"initial {self.initial:g} mD must lie inside bounds {list(self.bounds)}")
        return self


class Co2ForecastConfig(StudyConfig):
    """CO2 forecasting (see pipelines/studies/co2_forecast.yaml)."""

    rock: RockSection = RockSection()
    flow: FlowSection = FlowSection()
    samples: SamplesSection = SamplesSection()
    fno: FNOSection = FNOSection()
    training: SurrogateTrainingSection = SurrogateTrainingSection(epochs=200, batch_size=16, lr=3e-3, held_out=0.1,
                                                                  patience=30)
    monitoring: MonitoringSection = MonitoringSection()
    inversion: InversionSection = InversionSection()

    @model_validator(mode="after")
    def _check(self) -> Co2ForecastConfig:
        from strata_errors import InputError
        from tasks.co2.simulator import check_wells

        h = self.rock.spacing
        try:  # the simulator's own well checks, before any work
            check_wells(self.flow.simulator_params()["wells"], self.rock.shape, h)
        except InputError as exc:
            raise ValueError(str(exc)) from None
        m = self.monitoring
        if m.model.file is None and (tuple(m.model.shape) != tuple(self.rock.shape) or m.model.spacing != h):
            raise ValueError(f"monitoring.model must lie on the flow grid: shape {list(self.rock.shape)} and "
                             f"spacing {h:g} m (got {list(m.model.shape)}, {m.model.spacing:g} m)")
        if m.case >= self.samples.test:
            raise ValueError(f"monitoring.case {m.case} needs more than {self.samples.test} held-out samples")
        if m.report is not None and m.report > self.flow.reports:
            raise ValueError(f"monitoring.report {m.report} is past the last report ({self.flow.reports})")
        if max(self.fno.modes[:2]) > max(self.rock.shape) // 2 + 1:
            raise ValueError(f"fno.modes {list(self.fno.modes)} exceed what a {list(self.rock.shape)} grid holds "
                             f"(at most {max(self.rock.shape) // 2 + 1})")
        if self.fno.kind == "3d" and self.fno.modes[2] > self.flow.reports:
            raise ValueError(f"fno.modes {list(self.fno.modes)}: {self.fno.modes[2]} modes in time exceed the "
                             f"{self.flow.reports} report times")
        return self
