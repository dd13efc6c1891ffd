"""Study flow ``seismic_survey``: velocity model → acquisition geometry → shot records."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tasks.seismic.geometry import acquisition
from tasks.seismic.model import build_model, content_hash
from tasks.seismic.solver import survey_shots

from .step import Ref, Step
from .study import study_flow

__all__ = ["seismic_survey", "velocity_model", "geometry", "survey", "model_params", "model_and_geometry",
           "shot_count"]

velocity_model = Step("velocity_model", build_model, version="1", kind="velocity_model")
geometry = Step("geometry", acquisition, version="1", kind="geometry")
# one region per `pieces.per_piece` shots; the shot coordinate comes from the geometry input
survey = Step("survey", survey_shots, version="2", kind="shot_records", map_over="shot")


def model_params(m: Any) -> tuple[dict[str, Any], str]:
    """The velocity_model step's params and label from the config's ``model`` section; an imported
    file enters the key by its absolute path and content hash, so an edited file is never mistaken
    for the old one."""
    params = m.model_dump(mode="json")
    if m.file is not None:
        path = str(Path(m.file.path).resolve())
        params["file"] = {**params["file"], "path": path, "sha256": content_hash(path)}
        return params, f"{Path(path).name} @ {m.spacing:g} m"
    return params, f"{'x'.join(str(n) for n in m.shape)} @ {m.spacing:g} m"


def shot_count(g: Any) -> int:
    """The number of shots of a config's ``geometry`` section (an areal layout's grid of them)."""
    return g.n_shots * (getattr(g, "n_shots_y", None) or 1)


def model_and_geometry(cfg: Any) -> tuple[dict[str, Any], Ref, Ref]:
    """The velocity_model step's params and the velocity_model and geometry steps of a config with the
    sections ``model``, ``geometry`` and ``simulation`` (every study built on a survey)."""
    g = cfg.geometry
    params, label = model_params(cfg.model)
    vel = velocity_model(label=label, **params)
    geo = geometry(vel, label=f"{shot_count(g)} shots x {g.n_receivers * (g.n_receivers_y or 1)} receivers",
                   space_order=cfg.simulation.space_order, **g.model_dump(mode="json"))
    return params, vel, geo


@study_flow("seismic_survey")
def seismic_survey(cfg: Any) -> dict[str, Ref]:
    """``cfg``: the study's frozen config (``pipelines.models.SeismicSurveyConfig``)."""
    g, s = cfg.geometry, cfg.simulation
    _, vel, geo = model_and_geometry(cfg)
    records = survey(vel, geo, pieces=s.pieces, label=f"{shot_count(g)} shots",
                     space_order=s.space_order, nbl=s.nbl, noise_snr_db=s.noise_snr_db, seed=s.seed)
    return {"velocity_model": vel, "geometry": geo, "shot_records": records}
