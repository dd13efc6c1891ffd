"""Study flow ``seismic_imaging``: survey → smooth background → RTM per shot → stacked image,
plus (``summaries.samples > 0``) ASPIRE summary statistics on sampled (model, data) pairs."""

from __future__ import annotations

from typing import Any

import numpy as np

from tasks.seismic.gradient import gradient_summary, rtm_summary
from tasks.seismic.migration import migrate_shot, stack_images
from tasks.seismic.model import smooth_model
from tasks.seismic.pairs import sample_models, simulate_pairs, smooth_samples

from .seismic_survey import model_and_geometry, survey
from .step import Ref, Step
from .study import study_flow

__all__ = ["seismic_imaging"]

background = Step("background", smooth_model, version="1", kind="velocity_model")
migrate = Step("migrate", migrate_shot, version="2", kind="shot_images", map_over="shot")
stack = Step("stack", stack_images, version="1", kind="image")
pair_models = Step("pair_models", sample_models, version="1", kind="model_samples",
                   map_over="sample", coord_param="samples")
pair_data = Step("pair_data", simulate_pairs, version="2", kind="pair_records", map_over="sample")
estimates = Step("estimates", smooth_samples, version="1", kind="model_samples", map_over="sample")
gradients = Step("gradient_summary", gradient_summary, version="2", kind="summary", map_over="sample")
rtm_images = Step("rtm_summary", rtm_summary, version="2", kind="summary", map_over="sample")


@study_flow("seismic_imaging")
def seismic_imaging(cfg: Any) -> dict[str, Ref]:
    """``cfg``: the study's frozen config (``pipelines.models.SeismicImagingConfig``)."""
    g, s, im, su = cfg.geometry, cfg.simulation, cfg.imaging, cfg.summaries
    fd = {"space_order": s.space_order, "nbl": s.nbl}
    params, vel, geo = model_and_geometry(cfg)
    records = survey(vel, geo, pieces=s.pieces, label=f"{g.n_shots} shots",
                     noise_snr_db=s.noise_snr_db, seed=s.seed, **fd)
    bg = background(vel, label=f"sigma {im.smoothing:g} m", sigma=im.smoothing)
    per_shot = migrate(bg, geo, records, pieces=im.pieces, label=f"{g.n_shots} shots",
                       factor=im.snapshot_factor, condition=im.condition, **fd)
    image = stack(per_shot, normalize=im.normalize, mute_depth=im.mute_depth)
    outputs = {"image": image, "velocity_model": vel, "background": bg, "shot_records": records}

    if su.samples > 0:
        samples = f"{su.samples} samples"
        prior = {"std": su.perturbation_std, "correlation_length": su.correlation_length}
        models = pair_models(pieces=su.pieces, label=samples, samples=np.arange(su.samples),
                             base=params, perturbation=prior, seed=su.seed)
        data = pair_data(models, geo, pieces=su.pieces, label=samples, noise_snr_db=s.noise_snr_db,
                         seed=su.seed, **fd)
        xhat = estimates(models, pieces=su.pieces, sigma=su.estimate_smoothing)
        outputs["gradient_summary"] = gradients(xhat, data, geo, pieces=su.pieces, factor=im.snapshot_factor, **fd)
        outputs["rtm_summary"] = rtm_images(bg, data, geo, pieces=su.pieces, factor=im.snapshot_factor, **fd)
    return outputs
