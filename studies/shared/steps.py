"""Steps several studies use: the survey (velocity model, geometry, shot records), the migration's background,
per-shot migration and stack, (model, data) pairs and their gradient summaries, and the labels of held-out samples."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flows.step import Ref, Step
from tasks.seismic.geometry import acquisition
from tasks.seismic.gradient import gradient_summary
from tasks.seismic.migration import migrate_shot, stack_images
from tasks.seismic.model import build_model, content_hash, smooth_model
from tasks.seismic.pairs import simulate_pairs
from tasks.seismic.solver import survey_shots

__all__ = ["velocity_model", "geometry", "survey", "background", "migrate", "stack", "pair_data", "gradients",
           "model_params", "model_and_geometry", "shot_count", "HELD_OUT"]

velocity_model = Step("velocity_model", build_model, version="1", kind="velocity_model")
geometry = Step("geometry", acquisition, version="1", kind="geometry")
# one region per `pieces.per_piece` shots; the shot coordinate comes from the geometry input
survey = Step("survey", survey_shots, version="2", kind="shot_records", map_over="shot")
background = Step("background", smooth_model, version="1", kind="velocity_model")
migrate = Step("migrate", migrate_shot, version="3", kind="shot_images", map_over="shot")
stack = Step("stack", stack_images, version="2", kind="image")
# (model, data) pairs and their FWI-gradient summaries (seismic_imaging's summaries, aspire_seismic's loop)
pair_data = Step("pair_data", simulate_pairs, version="2", kind="pair_records", map_over="sample")
gradients = Step("gradient_summary", gradient_summary, version="2", kind="summary", map_over="sample")

HELD_OUT = 1_000_000_000  # the first held-out sample label: held-out cases do not change with the training size


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
