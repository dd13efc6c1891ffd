"""Study flow ``seismic_survey``: velocity model → acquisition geometry → shot records."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tasks.seismic.geometry import surface_geometry
from tasks.seismic.model import build_model
from tasks.seismic.solver import survey_shots

from .steps import Ref, Step
from .study import study_flow

__all__ = ["seismic_survey", "velocity_model", "geometry", "survey"]

velocity_model = Step("velocity_model", build_model, version="1", kind="velocity_model")
geometry = Step("geometry", surface_geometry, version="1", kind="geometry")
# one task per `chunk` shots; the shot coordinate comes from the geometry input
survey = Step("survey", survey_shots, version="1", kind="shot_records", map_over="shot")


@study_flow("seismic_survey")
def seismic_survey(cfg: Mapping[str, Any]) -> dict[str, Ref]:
    m, g, s = cfg["model"], cfg["geometry"], cfg["simulation"]
    nx, nz = m["shape"]
    vel = velocity_model(label=f"{nx}x{nz} @ {m['spacing']:g} m", **m)
    geo = geometry(vel, label=f"{g['n_shots']} shots x {g['n_receivers']} receivers",
                   space_order=s["space_order"], **g)
    records = survey(vel, geo, chunk=s["shots_per_piece"], label=f"{g['n_shots']} shots",
                     space_order=s["space_order"], nbl=s["nbl"], noise_snr_db=s["noise_snr_db"],
                     seed=s["seed"])
    return {"velocity_model": vel, "geometry": geo, "shot_records": records}
