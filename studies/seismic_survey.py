"""Study ``seismic_survey``: velocity model → acquisition geometry → shot records."""

from __future__ import annotations

from flows.declare import study
from flows.step import Ref

from .shared.sections import (
    Circle,
    GeometrySection,
    Perturbation,
    SeismicSurveyConfig,
    SimulationSection,
    VelocityModelSection,
)
from .shared.steps import model_and_geometry, shot_count, survey

__all__ = ["seismic_survey", "SurveyConfig"]


class SurveyConfig(SeismicSurveyConfig):
    """The survey: a layered model with a random perturbation and a circular anomaly, four shots."""

    model: VelocityModelSection = VelocityModelSection(
        perturbation=Perturbation(std=50.0, correlation_length=80.0, seed=7),
        circle=Circle(center=(500.0, 300.0), radius=80.0, vp=3000.0))
    geometry: GeometrySection = GeometrySection(first_shot_x=125.0, first_receiver_x=0.0)
    simulation: SimulationSection = SimulationSection(noise_snr_db=20.0, seed=2026)


@study(config=SurveyConfig,
       summary="2D acoustic survey: layered (+ random, + circle) velocity model, geometry, Devito shot records")
def seismic_survey(cfg: SurveyConfig) -> dict[str, Ref]:
    g, s = cfg.geometry, cfg.simulation
    _, vel, geo = model_and_geometry(cfg)
    records = survey(vel, geo, pieces=s.pieces, label=f"{shot_count(g)} shots",
                     space_order=s.space_order, nbl=s.nbl, noise_snr_db=s.noise_snr_db, seed=s.seed)
    return {"velocity_model": vel, "geometry": geo, "shot_records": records}
