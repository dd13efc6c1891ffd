"""Config sections several studies share: pieces, the seismic survey (model, geometry, simulation), imaging."""

from __future__ import annotations

import warnings
from typing import Annotated, Literal

from pydantic import Field, PlainValidator, field_validator, model_serializer, model_validator

from flows.config import StudyConfig
from strata_errors import InputError

__all__ = ["Pieces", "Loop", "SeismicSurveyConfig", "ImagingSection", "Finite", "Velocity", "Length"]

Loop = Literal["fully_synthetic", "synthetic_augmentation", "fresh_data"]


def _per_task(value: object) -> int | str:
    if value == "auto" or (isinstance(value, int) and not isinstance(value, bool) and value >= 1):
        return value  # type: ignore[return-value]
    raise ValueError("must be 'auto' or an integer >= 1")


# Chunks computed by one cluster task: a runtime choice, never in a key (resumption stays per
# chunk). "auto": tasks of about a second, at least two per worker thread (flows.executors.tasks_of).
PerTask = Annotated[int | Literal["auto"], PlainValidator(_per_task, json_schema_input_type=int | Literal["auto"])]


class Pieces(StudyConfig):
    """How a mapped step is cut: ``per_piece`` entries of the mapped dim (shots, samples, chains)
    per zarr chunk and resume marker — part of the dataset's key — and ``per_task`` chunks per
    executor task (``auto``: about a second of work each; never part of a key)."""

    per_piece: int = Field(1, ge=1)
    per_task: PerTask = "auto"


# -- seismic_survey --------------------------------------------------------------------------------
Finite = Annotated[float, Field(allow_inf_nan=False)]
Velocity = Annotated[float, Field(gt=0, le=20000, allow_inf_nan=False)]
Length = Annotated[float, Field(gt=0, allow_inf_nan=False)]


class Perturbation(StudyConfig):
    """A seeded Gaussian random field added to the layers (m/s standard deviation, metres)."""

    std: float = Field(0.0, ge=0, le=5000, allow_inf_nan=False)  # m/s
    correlation_length: Length = 100.0  # m
    seed: int = Field(0, ge=0)


class Circle(StudyConfig):
    """A circular anomaly of constant velocity: centre (x, z) — a sphere on a 3D model: (x, y, z) — and
    radius in metres."""

    center: tuple[Finite, ...]  # (x, z) m
    radius: Length  # m
    vp: Velocity  # m/s

    @field_validator("center")
    @classmethod
    def _center(cls, v: tuple[float, ...]) -> tuple[float, ...]:
        if len(v) not in (2, 3):
            raise ValueError(f"a centre is (x, z) or, on a 3D model, (x, y, z) in m: got {len(v)} coordinates")
        return v


class ModelFile(StudyConfig):
    """An imported model: ``.npy`` (x, z) or post-stack ``.sgy`` at ``spacing``, or ``.zarr``."""

    path: str
    units: Literal["m/s", "km/s"] = "m/s"


GridPoints = Annotated[int, Field(ge=3, le=20001)]


class VelocityModelSection(StudyConfig):
    """Flat layers on a uniform grid, ``shape`` (x, z) or 3D (x, y, z) points — or an imported
    ``file`` (then shape, velocities and depths are not used) — then the optional perturbation and
    circle (a sphere on a 3D grid: its centre has as many coordinates as ``shape``)."""

    shape: tuple[GridPoints, ...] = (101, 61)  # grid points (x, z)
    spacing: Length = 10.0  # m
    velocities: tuple[Velocity, ...] = Field((1500.0, 2000.0, 2500.0), min_length=1)  # m/s
    depths: tuple[Finite, ...] = (200.0, 400.0)  # m, interfaces between the layers
    perturbation: Perturbation | None = None  # null for none
    circle: Circle | None = None  # null for none
    file: ModelFile | None = None

    @model_validator(mode="after")
    def _check(self) -> VelocityModelSection:
        if len(self.velocities) != len(self.depths) + 1:
            raise ValueError(f"{len(self.velocities)} layer velocities need {len(self.velocities) - 1} "
                             f"interface depths, got {len(self.depths)}")
        if any(b <= a for a, b in zip(self.depths, self.depths[1:], strict=False)):
            raise ValueError(f"layer depths must increase, got {list(self.depths)}")
        if self.file is None and self.circle is not None and len(self.circle.center) != len(self.shape):
            dims = {2: "(x, z)", 3: "(x, y, z)"}
            raise ValueError(f"circle center {list(self.circle.center)} is {dims[len(self.circle.center)]} but shape "
                             f"{list(self.shape)} is a {len(self.shape)}D grid {dims[len(self.shape)]}: give the "
                             f"centre {len(self.shape)} coordinates")
        return self

    @field_validator("shape")
    @classmethod
    def _shape(cls, v: tuple[int, ...]) -> tuple[int, ...]:
        if len(v) not in (2, 3):
            raise ValueError(f"shape is 2 grid point counts (x, z) or 3 (x, y, z), got {len(v)}")
        return v


class GeometrySection(StudyConfig):
    """Acquisition: ``surface`` (sources at ``source_depth``, a fixed receiver spread along x),
    ``ocean_bottom`` (receivers on the seafloor: ``seafloor`` m, or found in the model),
    ``crosswell`` (sources down the well at ``source_well_x``, receivers down ``receiver_well_x``;
    spacings run along z from ``first_shot_z`` / ``first_receiver_z``), ``ring`` (2D: sources and
    receivers evenly spaced all around the rectangle ``ring_inset`` m inside the model's edges — transmission
    from every side; the counts set the spacings, which are not used) or ``areal`` (3D only: sources on an
    ``n_shots`` × ``n_shots_y`` grid at ``source_depth``, receivers on an ``n_receivers`` × ``n_receivers_y``
    grid at ``receiver_depth``; spacings and first positions along x as for ``surface``, along y
    ``shot_spacing_y`` / ``receiver_spacing_y`` (default: the x spacings) and ``first_shot_y`` /
    ``first_receiver_y`` (default: the model's first y node). The survey has ``n_shots * n_shots_y`` shots,
    numbered x fastest (shot ``i_y * n_shots + i_x``), each recorded by all ``n_receivers * n_receivers_y``
    receivers, numbered the same way). On a 3D model, ``surface``, ``ocean_bottom`` and ``crosswell`` lie in
    the plane at the model's centre y.

    The ``*_y`` fields are left out of the section's dump while unset (None), so they enter no dataset key
    of a run that does not use them: the keys of 2D runs are as they were before they existed."""

    layout: Literal["surface", "ocean_bottom", "crosswell", "ring", "areal"] = "surface"
    seafloor: Finite | None = None
    source_well_x: Finite | None = None
    receiver_well_x: Finite | None = None
    first_shot_z: Finite | None = None
    first_receiver_z: Finite | None = None
    ring_inset: float | None = Field(None, ge=0, allow_inf_nan=False)  # m
    n_shots: int = Field(4, ge=1, le=100_000)
    shot_spacing: float = Field(250.0, ge=0, allow_inf_nan=False)  # m
    first_shot_x: Finite | None = None  # m (default: the model's left edge)
    source_depth: Finite = 20.0  # m
    n_receivers: int = Field(101, ge=1, le=1_000_000)
    receiver_spacing: float = Field(10.0, ge=0, allow_inf_nan=False)  # m
    first_receiver_x: Finite | None = None
    receiver_depth: Finite = 10.0  # m
    record_length: float = Field(0.6, gt=0, le=100, allow_inf_nan=False)  # s
    f0: float = Field(10.0, gt=0, le=1000, allow_inf_nan=False)  # Hz
    dt: float | None = Field(None, gt=0, allow_inf_nan=False)  # s; null = 90% of the CFL limit
    # areal layout only (None: unset, and then not in the dump, see above)
    n_shots_y: int | None = Field(None, ge=1, le=100_000)  # source lines along y
    shot_spacing_y: float | None = Field(None, ge=0, allow_inf_nan=False)  # m; None: shot_spacing
    first_shot_y: Finite | None = None  # m; None: the model's first y node
    n_receivers_y: int | None = Field(None, ge=1, le=1_000_000)  # receiver lines along y
    receiver_spacing_y: float | None = Field(None, ge=0, allow_inf_nan=False)  # m; None: receiver_spacing
    first_receiver_y: Finite | None = None  # m; None: the model's first y node

    @model_serializer(mode="wrap")
    def _dump(self, handler):
        out = handler(self)
        for name in _AREAL_Y:
            if name in out and out[name] is None:
                del out[name]
        return out


_AREAL_Y = ("n_shots_y", "shot_spacing_y", "first_shot_y", "n_receivers_y", "receiver_spacing_y", "first_receiver_y")


class SimulationSection(StudyConfig):
    """Finite differences and noise; ``pieces.per_piece`` shots per zarr chunk."""

    space_order: Literal[4, 6, 8, 10, 12, 14, 16] = 8
    nbl: int = Field(40, ge=0, le=1000)  # absorbing boundary points per side
    noise_snr_db: float | None = Field(None, ge=-60, le=200, allow_inf_nan=False)  # null for noise-free records
    seed: int = Field(0, ge=0)  # noise of shot i is seeded by (seed, i)
    pieces: Pieces = Pieces()  # shots per zarr chunk; per_task: auto (chunks per executor task)

    @model_validator(mode="after")
    def _check(self) -> SimulationSection:
        reach = self.space_order // 2  # points the stencil reaches on each side
        if 0 < self.nbl < reach:
            raise ValueError(f"nbl = {self.nbl} absorbing points are fewer than the {reach} the space order "
                             f"{self.space_order} stencil reaches: use nbl >= {reach} (or 0 for a reflecting edge)")
        return self


class SeismicSurveyConfig(StudyConfig):
    """Velocity model → acquisition geometry → shot records.

    Besides the field checks, validation builds the (cheap) model and geometry exactly as the flow
    will, so a non-finite or non-positive model, a time step above the CFL limit or a source or
    receiver outside the model is a config error before any work starts.
    """

    model: VelocityModelSection = VelocityModelSection()
    geometry: GeometrySection = GeometrySection()
    simulation: SimulationSection = SimulationSection()

    @model_validator(mode="after")
    def _check(self) -> SeismicSurveyConfig:
        from tasks.seismic.geometry import acquisition
        from tasks.seismic.model import build_model

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # dispersion warnings are the run's business
            try:
                vel = build_model(**self.model.model_dump(mode="python"))
            except InputError as exc:
                raise ValueError(f"model: {exc}") from None
            try:
                acquisition(vel, **self.geometry.model_dump(mode="python"),
                                 space_order=self.simulation.space_order)
            except InputError as exc:
                raise ValueError(f"geometry: {exc}") from None
        return self


Condition = Literal["born", "crosscorrelation", "isic"]


class LsrtmSection(StudyConfig):
    """Least-squares RTM: ``iterations`` of preconditioned CGLS on the Born normal equations (0 = off);
    ``epsilon`` stabilises the illumination preconditioner ``1 / sqrt(illum + epsilon max illum)``."""

    iterations: int = Field(0, ge=0, le=500)  # least-squares RTM (CGLS), 0 = off
    epsilon: float = Field(1e-3, gt=0, le=1, allow_inf_nan=False)


class ImagingSection(StudyConfig):
    """Reverse-time migration in a smoothed background, ``pieces.per_piece`` shots per zarr chunk.

    ``condition``: ``isic`` (inverse scattering: suppresses the low-wavenumber artifact of
    cross-correlation), ``born`` (the FWI gradient's ``J^T``) or ``crosscorrelation``; ``compare``: other
    conditions stacked beside it in the report. ``max_offset``: migrate source-receiver offsets up to it
    (m), tapered over the last ``offset_taper`` m (far offsets record head waves: a comb above the
    refractor). ``mute_depth``: zero the image above it, tapered to full weight over ``mute_taper`` m."""

    smoothing: float = Field(60.0, gt=0, allow_inf_nan=False)  # m, Gaussian sigma in slowness
    snapshot_factor: int | None = Field(None, ge=1)  # None: from the Nyquist rate of f_max
    condition: Condition = "isic"  # inverse scattering (JUDI's isic): cancels the low-wavenumber backscatter
    compare: tuple[Condition, ...] = ()  # stacked beside it in the report (image_quality)
    normalize: bool = True  # source-illumination compensation of the stack
    mute_depth: float | None = Field(None, ge=0, allow_inf_nan=False)  # m, zero the image above
    mute_taper: float = Field(30.0, ge=0, allow_inf_nan=False)  # m, cosine ramp below mute_depth
    max_offset: float | None = Field(None, gt=0, allow_inf_nan=False)  # m; None: every offset
    offset_taper: float = Field(100.0, ge=0, allow_inf_nan=False)  # m
    lsrtm: LsrtmSection = LsrtmSection()
    pieces: Pieces = Pieces()  # shots per zarr chunk

    @model_validator(mode="after")
    def _check(self) -> ImagingSection:
        if self.condition in self.compare or len(set(self.compare)) != len(self.compare):
            raise ValueError(f"compare {list(self.compare)} must list conditions other than {self.condition!r}, "
                             f"each once")
        if self.max_offset is not None and self.offset_taper > self.max_offset:
            raise ValueError(f"offset_taper {self.offset_taper:g} m exceeds max_offset {self.max_offset:g} m")
        return self
