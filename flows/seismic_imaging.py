"""Study flow ``seismic_imaging``: survey → smooth background → RTM per shot → stacked image (its own
imaging condition and any others to compare, with image-quality measures), optionally least-squares RTM
(``imaging.lsrtm.iterations``: each iteration a Born run, a forward and an adjoint run per shot, then a CGLS
update, every state stored), and (``summaries.samples > 0``) ASPIRE summary statistics on sampled (model, data)
pairs."""

from __future__ import annotations

from typing import Any

import numpy as np

from tasks.claims import Claim
from tasks.seismic import claims as measures
from tasks.seismic import lsrtm as ls
from tasks.seismic.gradient import gradient_summary, rtm_summary
from tasks.seismic.migration import migrate_shot, stack_images
from tasks.seismic.model import smooth_model
from tasks.seismic.pairs import sample_models, simulate_pairs, smooth_samples
from tasks.seismic.quality import compare_images

from .claims import check_claims
from .seismic_survey import model_and_geometry, shot_count, survey
from .step import Ref, Step
from .study import study_flow

__all__ = ["seismic_imaging", "CLAIMS"]

ISIC = "Whitmore & Crawley 2012 (SEG, inverse-scattering imaging conditions); Op 't Root et al. 2012 (Wave Motion)"
CLAIMS = (
    Claim("low_wavenumber_suppressed", "the inverse-scattering condition leaves at most 10 % of the image's energy "
          "below the seismic band (k < 2 f_low / v_max; cross-correlation: about half)", ISIC,
          measures.low_wavenumber_share, ("image_quality",), "at_most", 0.10, args={"condition": "isic"}),
    Claim("reflectors_at_interfaces", "along traces at ¼ and ¾ of the width, the strongest envelope peaks (as many as "
          "there are interfaces) lie within 20 m of the true interfaces", ISIC, measures.interface_miss,
          ("image_quality",), "at_most", 20.0),
    Claim("no_spurious_events", "no other envelope peak along those traces exceeds 0.3 × the weakest interface peak",
          ISIC, measures.spurious_peak_ratio, ("image_quality",), "at_most", 0.3),
)

background = Step("background", smooth_model, version="1", kind="velocity_model")
migrate = Step("migrate", migrate_shot, version="3", kind="shot_images", map_over="shot")
stack = Step("stack", stack_images, version="2", kind="image")
quality = Step("image_quality", compare_images, version="1", kind="image_quality")
lsrtm_start = Step("lsrtm_start", ls.lsrtm_start, version="1", kind="lsrtm_shots", map_over="shot")
lsrtm_setup = Step("lsrtm_setup", ls.lsrtm_setup, version="1", kind="lsrtm_state")
lsrtm_apply = Step("lsrtm_apply", ls.lsrtm_apply, version="1", kind="lsrtm_shots", map_over="shot")
lsrtm_update = Step("lsrtm_update", ls.lsrtm_update, version="1", kind="lsrtm_state")
lsrtm_images = Step("lsrtm", ls.lsrtm_images, version="1", kind="lsrtm")
pair_models = Step("pair_models", sample_models, version="1", kind="model_samples",
                   map_over="sample", coord_param="samples")
pair_data = Step("pair_data", simulate_pairs, version="2", kind="pair_records", map_over="sample")
estimates = Step("estimates", smooth_samples, version="1", kind="model_samples", map_over="sample")
gradients = Step("gradient_summary", gradient_summary, version="2", kind="summary", map_over="sample")
rtm_images = Step("rtm_summary", rtm_summary, version="2", kind="summary", map_over="sample")


def image(im: Any, bg: Ref, geo: Ref, records: Ref, condition: str, shots: str, fd: dict[str, int]) -> Ref:
    """The stacked image of ``records`` with ``condition`` (the imaging section's offsets, mute, normalisation)."""
    per_shot = migrate(bg, geo, records, pieces=im.pieces, label=f"{condition}, {shots}",
                       factor=im.snapshot_factor, condition=condition, max_offset=im.max_offset,
                       offset_taper=im.offset_taper, **fd)
    return stack(per_shot, label=condition, normalize=im.normalize, mute_depth=im.mute_depth,
                 mute_taper=im.mute_taper)


def least_squares(im: Any, bg: Ref, geo: Ref, records: Ref, shots: str, fd: dict[str, int]) -> Ref:
    """``im.lsrtm.iterations`` of LSRTM on ``records``: every state a stored dataset, then their images."""
    start = lsrtm_start(bg, geo, records, pieces=im.pieces, label=shots, **fd)
    state = lsrtm_setup(start, label="iteration 0", mute_depth=im.mute_depth, mute_taper=im.mute_taper,
                        epsilon=im.lsrtm.epsilon)
    states = [state]
    for k in range(1, im.lsrtm.iterations + 1):
        applied = lsrtm_apply(state, bg, geo, pieces=im.pieces, label=f"iteration {k}, {shots}", **fd)
        state = lsrtm_update(state, applied, label=f"iteration {k}")
        states.append(state)
    return lsrtm_images(*states, label=f"{im.lsrtm.iterations} iterations")


@study_flow("seismic_imaging")
def seismic_imaging(cfg: Any) -> dict[str, Ref]:
    """``cfg``: the study's frozen config (``pipelines.models.SeismicImagingConfig``)."""
    g, s, im, su = cfg.geometry, cfg.simulation, cfg.imaging, cfg.summaries
    fd = {"space_order": s.space_order, "nbl": s.nbl}
    params, vel, geo = model_and_geometry(cfg)
    records = survey(vel, geo, pieces=s.pieces, label=f"{shot_count(g)} shots",
                     noise_snr_db=s.noise_snr_db, seed=s.seed, **fd)
    bg = background(vel, label=f"sigma {im.smoothing:g} m", sigma=im.smoothing)
    shots = f"{shot_count(g)} shots"
    conditions = [im.condition, *im.compare]
    stacks = [image(im, bg, geo, records, c, shots, fd) for c in conditions]
    outputs = {"image": stacks[0], "velocity_model": vel, "background": bg, "shot_records": records,
               "image_quality": quality(bg, geo, vel, *stacks, label=", ".join(conditions), conditions=conditions,
                                        mute_depth=im.mute_depth)}
    if im.lsrtm.iterations:
        outputs["lsrtm"] = least_squares(im, bg, geo, records, shots, fd)

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
    claims = [c for c in CLAIMS if all(n in outputs for n in c.needs)]
    return {**outputs, "claims": check_claims(claims, outputs)}
