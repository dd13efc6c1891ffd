"""Study flow ``seismic_survey``: velocity model → acquisition geometry → shot records."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tasks.seismic.geometry import acquisition
from tasks.seismic.model import build_model, content_hash
from tasks.seismic.solver import survey_shots

from .steps import Ref, Step
from .study import study_flow

__all__ = ["seismic_survey", "velocity_model", "geometry", "survey", "model_params"]

velocity_model = Step("velocity_model", build_model, version="1", kind="velocity_model")
geometry = Step("geometry", acquisition, version="1", kind="geometry")
# one task per `chunk` shots; the shot coordinate comes from the geometry input
survey = Step("survey", survey_shots, version="2", kind="shot_records", map_over="shot")


def model_params(m: Mapping[str, Any]) -> tuple[dict[str, Any], str]:
    """The velocity_model step's params and label; an imported file enters the key by its
    absolute path and content hash, so an edited file is never mistaken for the old one."""
    params = dict(m)
    if params.get("file"):
        path = str(Path(params["file"]["path"]).resolve())
        params["file"] = {**params["file"], "path": path, "sha256": content_hash(path)}
        return params, f"{Path(path).name} @ {m['spacing']:g} m"
    return params, f"{m['shape'][0]}x{m['shape'][1]} @ {m['spacing']:g} m"


@study_flow("seismic_survey")
def seismic_survey(cfg: Mapping[str, Any]) -> dict[str, Ref]:
    m, g, s = cfg["model"], cfg["geometry"], cfg["simulation"]
    params, label = model_params(m)
    vel = velocity_model(label=label, **params)
    geo = geometry(vel, label=f"{g['n_shots']} shots x {g['n_receivers']} receivers",
                   space_order=s["space_order"], **g)
    records = survey(vel, geo, chunk=s["shots_per_piece"], per_task=s["pieces_per_task"],
                     label=f"{g['n_shots']} shots",
                     space_order=s["space_order"], nbl=s["nbl"], noise_snr_db=s["noise_snr_db"],
                     seed=s["seed"])
    return {"velocity_model": vel, "geometry": geo, "shot_records": records}
