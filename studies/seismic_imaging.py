"""Study ``seismic_imaging``: survey → smooth background → RTM per shot → stacked image (its own
imaging condition and any others to compare, with image-quality measures), optionally least-squares RTM
(``imaging.lsrtm.iterations``: each iteration a Born run, a forward and an adjoint run per shot, then a CGLS
update, every state stored), and (``summaries.samples > 0``) ASPIRE summary statistics on sampled (model, data)
pairs."""

from __future__ import annotations

from typing import Any

import numpy as np
from pydantic import Field

from flows.config import StudyConfig
from flows.declare import study
from flows.step import Ref, Step
from tasks.claims import Claim
from tasks.seismic import claims as measures
from tasks.seismic import lsrtm as ls
from tasks.seismic.gradient import rtm_summary
from tasks.seismic.pairs import sample_models, smooth_samples
from tasks.seismic.quality import compare_images

from .shared.sections import (
    Circle,
    GeometrySection,
    ImagingSection,
    LsrtmSection,
    Pieces,
    SeismicSurveyConfig,
    SimulationSection,
    VelocityModelSection,
)
from .shared.steps import background, gradients, migrate, model_and_geometry, pair_data, shot_count, stack, survey

__all__ = ["seismic_imaging", "SeismicImagingConfig", "CLAIMS"]

class SummariesSection(StudyConfig):
    """ASPIRE summary statistics on sampled (model, data) pairs; ``samples: 0`` turns them off."""

    samples: int = Field(0, ge=0, le=1_000_000)
    pieces: Pieces = Pieces()  # samples per zarr chunk
    perturbation_std: float = Field(100.0, gt=0, allow_inf_nan=False)  # m/s
    correlation_length: float = Field(80.0, gt=0, allow_inf_nan=False)  # m
    estimate_smoothing: float = Field(60.0, gt=0, allow_inf_nan=False)  # m, estimates x̂ = smoothed models
    seed: int = Field(0, ge=0)


class SeismicImagingConfig(SeismicSurveyConfig):
    """Survey → smooth background → RTM per shot → stacked image (+ optional ASPIRE summaries)."""

    model: VelocityModelSection = VelocityModelSection(shape=(121, 61), velocities=(1500.0, 2000.0, 2600.0),
                                                       depths=(200.0, 420.0),
                                                       circle=Circle(center=(600.0, 320.0), radius=60.0, vp=3000.0))
    geometry: GeometrySection = GeometrySection(n_shots=12, shot_spacing=100.0, first_shot_x=50.0, n_receivers=121,
                                                first_receiver_x=0.0, record_length=0.8, f0=12.0)
    simulation: SimulationSection = SimulationSection(seed=2026)
    # max_offset 600 m: far offsets record head waves along the 2000 m/s interface (critical offset ~410 m),
    # which migrate into a comb of shallow events
    imaging: ImagingSection = ImagingSection(mute_depth=60.0, max_offset=600.0, compare=("born", "crosscorrelation"),
                                             lsrtm=LsrtmSection(iterations=10))
    summaries: SummariesSection = SummariesSection(samples=4, seed=11)


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

quality = Step("image_quality", compare_images, version="1", kind="image_quality")
lsrtm_start = Step("lsrtm_start", ls.lsrtm_start, version="1", kind="lsrtm_shots", map_over="shot")
lsrtm_setup = Step("lsrtm_setup", ls.lsrtm_setup, version="1", kind="lsrtm_state")
lsrtm_apply = Step("lsrtm_apply", ls.lsrtm_apply, version="1", kind="lsrtm_shots", map_over="shot")
lsrtm_update = Step("lsrtm_update", ls.lsrtm_update, version="1", kind="lsrtm_state")
lsrtm_images = Step("lsrtm", ls.lsrtm_images, version="1", kind="lsrtm")
pair_models = Step("pair_models", sample_models, version="1", kind="model_samples",
                   map_over="sample", coord_param="samples")
estimates = Step("estimates", smooth_samples, version="1", kind="model_samples", map_over="sample")
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


@study(config=SeismicImagingConfig, claims=CLAIMS,
       summary="survey -> smoothed background -> RTM per shot -> stacked image; ASPIRE gradient summaries")
def seismic_imaging(cfg: SeismicImagingConfig) -> dict[str, Ref]:
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
    return outputs
