"""Study ``co2_forecast``: permeability samples → two-phase flow simulations → FNO surrogate →
held-out plume forecasts and their errors → rock physics → baseline and monitor surveys of the simulated
and of the forecast plume → time-lapse difference data and their RTM images; optionally (``inversion.iterations``)
the coupled inversion of the monitored case's permeability from its monitor records."""

from __future__ import annotations

from typing import Annotated, Literal

import numpy as np
from pydantic import Field, model_validator

from flows.config import StudyConfig
from flows.declare import study
from flows.step import Ref, Step
from tasks.claims import Claim
from tasks.co2 import claims, fields, inversion, monitoring, simulator, surrogate

from .shared.learning import TrainingSection
from .shared.sections import (
    GeometrySection,
    ImagingSection,
    Pieces,
    SeismicSurveyConfig,
    SimulationSection,
    VelocityModelSection,
)
from .shared.steps import HELD_OUT, background, migrate, model_and_geometry, stack, survey

__all__ = ["co2_forecast", "Co2ForecastConfig", "CLAIMS"]

Positive = Annotated[float, Field(gt=0, allow_inf_nan=False)]


class ChannelSection(StudyConfig):
    """A channel of ``channel`` mD in a ``background`` of mD, centred at ``depth`` m, ``thickness`` m
    thick, its top and bottom each perturbed by a Gaussian process (std ``undulation`` m, squared-
    exponential correlation ``correlation_length`` m)."""

    background: Positive = 20.0  # mD
    channel: Positive = 120.0  # mD
    depth: Positive = 480.0  # m, channel centre
    thickness: Positive = 150.0  # m
    # m, std of the Gaussian process moving the channel's top and bottom
    undulation: float = Field(60.0, ge=0, allow_inf_nan=False)
    correlation_length: Positive = 300.0  # m, along x


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

    background: Positive = 20.0  # mD
    channel: Positive = 120.0  # mD
    variance: float = Field(5.0, ge=0, allow_inf_nan=False)  # cells²
    length: Positive = 6.25  # cells
    jitter: float = Field(1e-5, ge=0, le=1)  # x variance, added on the kernel's diagonal
    # depth fractions: the channel's base top cell, uniform in this range, rounded
    top: tuple[Annotated[float, Field(ge=0, le=1)], Annotated[float, Field(ge=0, le=1)]] = (0.37, 0.42)
    # depth fractions: its base bottom cell
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

    # or grf (log-normal Gaussian random field, see rock.grf), or fno4co2 (rock.fno4co2)
    kind: Literal["channelized", "grf", "fno4co2"] = "channelized"
    shape: tuple[Annotated[int, Field(ge=4, le=4096)], Annotated[int, Field(ge=4, le=4096)]] = (64, 64)  # cells (x, z)
    spacing: Positive = 15.0  # m
    channel: ChannelSection = ChannelSection()
    grf: GRFSection = GRFSection()  # mD, 1, m (kind: grf)
    fno4co2: FNO4CO2Section = FNO4CO2Section()  # kind: fno4co2 — FNO4CO2's scripts/gen_perm.jl, in cells
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


class TwoPhaseFlowSection(StudyConfig):
    """Incompressible two-phase flow: ``wells``, ``reports`` report times every ``report_every`` days,
    viscosities (cP), Corey exponents and residual saturations (CO2, brine), the transport CFL number,
    sub-stepping (off: ``dt`` s must satisfy the CFL bound), pressure solves per report interval, phase
    densities (kg/m³) and ``gravity`` (m/s² along the depth z; 0 turns buoyancy off)."""

    wells: tuple[Well, ...] = (Well(name="injector", x=97.5, z=480.0, rate=5e-4),
                               Well(name="producer", x=862.5, z=480.0, rate=-5e-4))
    reports: int = Field(16, ge=1, le=1000)  # report times
    report_every: Positive = 50.0  # days
    thickness: Positive = 1.0  # m, out of plane
    mu_co2: Positive = 0.1  # cP
    mu_brine: Positive = 1.0  # cP
    corey: tuple[Positive, Positive] = (2.0, 2.0)  # relative-permeability exponents (CO2, brine): quadratic
    # residual saturations (CO2, brine)
    residual: tuple[Annotated[float, Field(ge=0, lt=1)], Annotated[float, Field(ge=0, lt=1)]] = (0.0, 0.0)
    cfl: float = Field(0.9, gt=0, le=1)  # transport CFL number of the sub-steps
    substep: bool = True  # false: transport steps of dt s, which must satisfy the CFL bound
    dt: float | None = Field(None, gt=0, allow_inf_nan=False)  # s, used when substep is off
    # pressure solves per report interval (IMPES; 1: ≈10 %, 4: ≈4 % from converged)
    pressure_steps: int = Field(4, ge=1, le=10_000)
    rho_brine: float = Field(1053.0, gt=0, le=3000, allow_inf_nan=False)  # kg/m³
    rho_co2: float = Field(501.9, gt=0, le=3000, allow_inf_nan=False)  # kg/m³
    gravity: float = Field(9.8, ge=0, le=100, allow_inf_nan=False)  # m/s², 0: off

    @model_validator(mode="after")
    def _check(self) -> TwoPhaseFlowSection:
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

    # simulations to train the FNO on (200: held-out error 0.112 ± 0.015 with gravity, above 0.10)
    train: int = Field(400, ge=4, le=1_000_000)
    test: int = Field(16, ge=1, le=100_000)  # held-out simulations: forecasts and their errors
    seed: int = Field(0, ge=0)
    pieces: Pieces = Pieces(per_piece=4)  # samples per zarr chunk


class FNOSection(StudyConfig):
    """The FNO (``tasks.co2.surrogate.FNOSurrogate``): ``kind`` 2d (over (x, z), the report times as output
    channels) or 3d (over (x, z, t), the inputs repeated at every report time, one output channel: FNO4CO2's);
    ``modes`` kept per axis — two for 2d, three (x, z, t) for 3d — as neuraloperator's ``n_modes`` counts them
    (the negative and positive frequencies together; the last axis keeps ``m // 2 + 1`` of its half spectrum);
    ``width`` hidden channels, ``layers`` Fourier layers; ``padding``: zero padding of that fraction of every
    axis at both ends before the Fourier layers (neuraloperator's ``domain_padding``; 0 = off), so that the
    periodic Fourier layers do not make the two ends of an axis neighbours."""

    kind: Literal["2d", "3d"] = "2d"  # 2d: over (x, z), report times as output channels; 3d: over (x, z, t) (FNO4CO2's)
    # Fourier modes kept per axis (neuraloperator's n_modes; 3d: three, x, z, t)
    modes: tuple[Annotated[int, Field(ge=1, le=512)], ...] = Field((12, 12), min_length=2, max_length=3)
    width: int = Field(16, ge=1, le=1024)  # hidden channels (32: ≈ the same held-out error, 3x the training time here)
    layers: int = Field(4, ge=1, le=32)  # Fourier layers
    # fraction of every axis zero-padded at both ends (0: off; the layers are periodic)
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

    weight_decay: float = Field(0.0, ge=0, le=1, allow_inf_nan=False)  # AdamW's decoupled weight decay (0: Adam)
    clamp: bool = False  # true: the loss of the forecast clamped to [0, 1] (FNO4CO2's relu01)


class MonitoringSection(SeismicSurveyConfig):
    """Time-lapse seismic: the baseline model (``model``, on the flow grid), the survey, and the RTM of the
    difference data; the monitor survey sees held-out ``case`` at report ``report`` (1-based; null: the
    last), through patchy rock physics (porosity of the case; density of the baseline from Gardner's law)."""

    model: VelocityModelSection = VelocityModelSection(shape=(64, 64), spacing=15.0,
                                                       velocities=(3000.0, 3300.0, 3600.0), depths=(300.0, 660.0))
    geometry: GeometrySection = GeometrySection(n_shots=8, shot_spacing=120.0, first_shot_x=52.5, source_depth=15.0,
                                                n_receivers=64, receiver_spacing=15.0, first_receiver_x=0.0,
                                                receiver_depth=15.0, record_length=0.8, f0=15.0)
    simulation: SimulationSection = SimulationSection(seed=2026)
    imaging: ImagingSection = ImagingSection(condition="born", mute_depth=60.0)
    case: int = Field(0, ge=0)  # the held-out sample monitored
    report: int | None = Field(None, ge=1)  # its report time (1-based); null: the last


class InversionSection(StudyConfig):
    """Coupled inversion of the monitored case's permeability from its monitor records through the FNO,
    rock physics and the wave equation: ``iterations`` gradient steps (0: off) from a constant ``initial``
    mD, steps of at most ``step`` in ln mD (halved up to ``backtracks`` times until the misfit falls), ln k
    kept inside ``bounds`` mD; ``snapshot_factor`` 1 = the exact gradient."""

    iterations: int = Field(10, ge=0, le=1000)
    initial: Positive = 40.0  # mD, the constant starting model
    bounds: tuple[Positive, Positive] = (5.0, 500.0)  # mD
    step: Positive = 0.5  # largest step in ln mD (halved until the misfit falls)
    backtracks: int = Field(4, ge=0, le=30)
    snapshot_factor: int = Field(1, ge=1)  # 1: the exact gradient

    @model_validator(mode="after")
    def _check(self) -> InversionSection:
        if not self.bounds[0] < self.initial < self.bounds[1]:
            raise ValueError(f"initial {self.initial:g} mD must lie inside bounds {list(self.bounds)}")
        return self


class Co2ForecastConfig(StudyConfig):
    """CO2 forecasting."""

    rock: RockSection = RockSection()
    flow: TwoPhaseFlowSection = TwoPhaseFlowSection()
    samples: SamplesSection = SamplesSection()
    fno: FNOSection = FNOSection()
    training: SurrogateTrainingSection = SurrogateTrainingSection(epochs=200, batch_size=16, lr=3e-3, held_out=0.1,
                                                                  patience=30)
    monitoring: MonitoringSection = MonitoringSection()
    inversion: InversionSection = InversionSection()  # coupled inversion of the monitored case (0 iterations: off)

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

PAPER = ("Yin, Siahkoohi, Louboutin, Herrmann, Learned coupled inversion for carbon sequestration monitoring and "
         "forecasting with Fourier neural operators (SEG 2022), and its code slimgroup/FNO4CO2")
CLAIMS = (
    Claim("forecast_error", "the FNO's held-out relative L2 error of the saturation, averaged over report times, is "
          "at most 0.10", PAPER, claims.forecast_error, ("forecast",), "at_most", 0.10,
          paper_note="FNO4CO2 reports its held-out relative errors in figures (2-D and 3-D examples)"),
    Claim("mass_balance", "the simulator conserves CO2: every held-out simulation's relative mass-balance error is "
          "at most 1e-10 at every report time", "conservation of the finite-volume scheme (our known answer)",
          claims.mass_balance, ("simulations",), "at_most", 1e-10),
    Claim("plume_rises", "with gravity on, the plume's centre of mass at the last report lies on average (over the "
          "held-out simulations) at least one cell above the injector (CO2 is lighter than brine)",
          "two-phase flow with buoyancy (FNO4CO2's simulator, after FwiFlow, has gravity)", claims.plume_rise,
          ("simulations",), "at_least", 1.0),
)

rock = Step("rock_samples", fields.rock_samples, version="1", kind="rock_samples", map_over="sample",
            coord_param="samples")
simulate = Step("co2_simulation", simulator.simulate_samples, version="2", kind="co2_simulation", map_over="sample")
train = Step("train_surrogate", surrogate.train_surrogate, version="2", kind="checkpoint", isolated=True)
forecast = Step("forecast", surrogate.forecast, version="1", kind="co2_forecast", map_over="sample")
errors = Step("forecast_metrics", surrogate.forecast_metrics, version="1", kind="forecast_metrics")
monitor = Step("monitor_model", monitoring.monitor_model, version="1", kind="velocity_model")
time_lapse = Step("time_lapse", monitoring.difference, version="1", kind="shot_records")
invert = Step("coupled_inversion", inversion.coupled_inversion, version="1", kind="coupled_inversion", isolated=True)


@study(config=Co2ForecastConfig, claims=CLAIMS,
       summary="CO2 plume: channelized permeability, two-phase flow, FNO surrogate, rock physics, time-lapse RTM")
def co2_forecast(cfg: Co2ForecastConfig) -> dict[str, Ref]:
    r, f, s, m = cfg.rock, cfg.flow, cfg.samples, cfg.monitoring
    rock_params, flow_params = {**r.sampler_params(), "seed": s.seed}, f.simulator_params()
    splits = {"train": np.arange(s.train), "test": HELD_OUT + np.arange(s.test)}
    sims = {}
    for split, labels in splits.items():
        fields_ref = rock(pieces=s.pieces, label=f"{len(labels)} {split}", samples=labels, **rock_params)
        sims[split] = simulate(fields_ref, pieces=s.pieces, label=f"{len(labels)} {split}", **flow_params)
    t = cfg.training
    ckpt = train(sims["train"], label=f"{s.train} simulations", fno=cfg.fno.model_dump(mode="json"),
                 training=t.model_dump(mode="json", exclude={"threads"}), seed=s.seed, threads=t.threads)
    fc = forecast(ckpt, sims["test"], pieces=s.pieces, label=f"{s.test} held-out")
    out = {"simulations": sims["test"], "checkpoint": ckpt, "forecast": fc,
           "forecast_metrics": errors(fc, label=f"{s.test} held-out")}

    # time-lapse monitoring of one held-out case, for the simulated and the forecast plume
    fd = {"space_order": m.simulation.space_order, "nbl": m.simulation.nbl}
    _, base, geo = model_and_geometry(m)
    shots = f"{m.geometry.n_shots} shots"
    rec0 = survey(base, geo, pieces=m.simulation.pieces, label=f"baseline {shots}",
                  noise_snr_db=m.simulation.noise_snr_db, seed=m.simulation.seed, **fd)
    bg = background(base, label=f"sigma {m.imaging.smoothing:g} m", sigma=m.imaging.smoothing)
    case = int(HELD_OUT + m.case)
    out["baseline"] = base
    monitor_records = {}
    for name, plume in (("simulated", sims["test"]), ("forecast", fc)):
        vel = monitor(base, plume, label=f"{name} plume, case {m.case}", sample=case, report=m.report)
        rec = survey(vel, geo, pieces=m.simulation.pieces, label=f"monitor ({name}) {shots}",
                     noise_snr_db=m.simulation.noise_snr_db, seed=m.simulation.seed, **fd)
        monitor_records[name] = rec
        diff = time_lapse(rec, rec0, label=name)
        per_shot = migrate(bg, geo, diff, pieces=m.imaging.pieces, label=f"{name} difference, {shots}",
                           factor=m.imaging.snapshot_factor, condition=m.imaging.condition,
                           subtract_background=False, max_offset=m.imaging.max_offset,
                           offset_taper=m.imaging.offset_taper, **fd)
        out[f"monitor_{name}"] = vel
        out[f"difference_{name}"] = diff
        out[f"image_{name}"] = stack(per_shot, normalize=m.imaging.normalize, mute_depth=m.imaging.mute_depth,
                                     mute_taper=m.imaging.mute_taper)

    inv = cfg.inversion
    if inv.iterations:  # the stretch: permeability from the (simulated plume's) monitor records through the FNO
        out["inversion"] = invert(ckpt, base, geo, monitor_records["simulated"], sims["test"],
                                  label=f"case {m.case}, {inv.iterations} iterations", sample=case, report=m.report,
                                  **inv.model_dump(mode="json", exclude={"snapshot_factor"}),
                                  factor=inv.snapshot_factor, **fd)
    return out
