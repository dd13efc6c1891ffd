"""Study flow ``aspire_seismic``: ASPIRE on seismic imaging — a structural prior of small velocity models
(dipping layers of varying depth and velocity, an elliptic anomaly, a weak texture), their noisy surveys,
FWI-gradient summaries at the current estimates, a conditional Glow per iteration."""

from __future__ import annotations

from typing import Any

from tasks.claims import Claim
from tasks.inference import claims as measures
from tasks.seismic.pairs import repeat_model
from tasks.seismic.prior import structural_models

from .aspire import ASPIRE_PAPER, REFINE_PAPER, Problem, aspire_loop, coverage_claims, sample_labels
from .claims import check_claims
from .seismic_imaging import background, gradients, pair_data
from .seismic_survey import model_and_geometry
from .step import Ref, Step
from .study import study_flow

__all__ = ["aspire_seismic", "CLAIMS"]

CLAIMS = (
    Claim("refines", "the last iteration's posterior-mean rmse is below the first's by more than 2 paired SE",
          REFINE_PAPER, measures.change, ("metrics",), "at_most", 0.0, 2.0, args={"name": "rmse"},
          paper_note="figures: posterior means and errors over iterations (a 512² model; no rmse table)"),
    Claim("beats_prior_mean", "the last iteration's posterior-mean rmse is at most 0.8 × predicting the prior mean",
          ASPIRE_PAPER, measures.ratio, ("metrics",), "at_most", 0.8,
          args={"name": "rmse", "other": "rmse_prior_mean"}, paper_note="no baseline in the paper"),
    Claim("beats_linear", "the last iteration's posterior-mean rmse is at most the ridge regression's on the same "
          "condition (the SE is of the paired difference over cases)", ASPIRE_PAPER, measures.difference,
          ("metrics",), "at_most", 0.0,
          args={"name": "rmse", "other": "rmse_linear"}, paper_note="no baseline in the paper"),
    *coverage_claims(0.80, 0.97),
)

prior_models = Step("prior_models", structural_models, version="1", kind="model_samples", map_over="sample",
                    coord_param="samples")
initial = Step("initial_estimates", repeat_model, version="1", kind="model_samples", map_over="sample")


@study_flow("aspire_seismic")
def aspire_seismic(cfg: Any) -> dict[str, Ref]:
    """``cfg``: the study's frozen config (``pipelines.aspire_models.AspireSeismicConfig``)."""
    a, p, s = cfg.aspire, cfg.prior, cfg.simulation
    fd = {"space_order": s.space_order, "nbl": s.nbl}
    _, vel, geo = model_and_geometry(cfg)
    bg = background(vel, label=f"sigma {p.estimate_smoothing:g} m", sigma=p.estimate_smoothing)
    grid = {"shape": list(cfg.model.shape), "spacing": cfg.model.spacing}
    labels = sample_labels(a)
    models, data, x0 = {}, {}, {}
    for w, v in labels.items():
        models[w] = prior_models(pieces=a.pieces, label=f"{len(v)} {w}", samples=v, **grid, **p.sampler(),
                                 seed=a.seed)
        data[w] = pair_data(models[w], geo, pieces=a.pieces, label=w, noise_snr_db=s.noise_snr_db, seed=s.seed, **fd)
        x0[w] = initial(bg, models[w], pieces=a.pieces, label=w)

    def summarize(xhat: Ref, split: str, k: int) -> Ref:
        return gradients(xhat, data[split], geo, pieces=a.pieces, label=f"k={k} {split}",
                         factor=p.snapshot_factor, **fd)

    loop = Problem(truth=models, initial=x0, summarize=summarize, var="vp", clip=(p.vp_min, p.vp_max))
    out = {"velocity_model": vel, "geometry": geo, "background": bg, **aspire_loop(cfg, loop)}
    return {**out, "claims": check_claims(CLAIMS, out)}
