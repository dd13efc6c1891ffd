"""Study flow ``mad_gaussian``: real set → G generations per loop type → curves."""

from __future__ import annotations

from typing import Any

import numpy as np

from tasks.claims import Claim
from tasks.generative import claims, gaussian

from .claims import check_claims
from .step import Ref, Step
from .study import study_flow

__all__ = ["mad_gaussian", "real_samples", "generation", "curves", "CLAIMS"]

PAPER = claims.PAPER
_LOOP_WORDS = {"fully_synthetic": "fully synthetic", "synthetic_augmentation": "synthetic augmentation",
               "fresh_data": "fresh data"}
CLAIMS = (
    *(Claim(f"{moment}_recursion_{loop}",
            f"{_LOOP_WORDS[loop]} loop: the fitted {'variance' if moment == 'var' else 'mean error |μ − μ0|²'} at "
            f"the last generation follows the exact recursion (mean over chains within 3 SE)",
            f"{PAPER}, the Gaussian analysis of the {_LOOP_WORDS[loop]} loop", claims.recursion_gap, ("curves",),
            "within", 0.0, 3.0, args={"loop": loop, "moment": moment},
            paper_note="analytic: the recursion is the paper's (derived here for synthetic augmentation)")
      for loop in gaussian.LOOPS for moment in ("var", "mean_err")),
    Claim("fully_synthetic_collapse",
          "fully synthetic loop: the model drifts away from the truth — the Wasserstein-2 distance at the last "
          "generation exceeds generation 0's by more than 2 SE",
          f"{PAPER}, the fully synthetic loop (primary conclusion)", claims.distance_rise, ("curves",),
          "at_least", 0.0, 2.0, args={"loop": "fully_synthetic"},
          paper_note="a statement and figures, no number for a Gaussian"),
)


real_samples = Step("real_samples", gaussian.draw_real, version="1", kind="mad_real",
                    map_over="chain", coord_param="chains")
generation = Step("generation", gaussian.fit_generation, version="2", kind="mad_generation", map_over="chain")
curves = Step("curves", gaussian.curves, version="1", kind="mad_curves")


@study_flow("mad_gaussian")
def mad_gaussian(cfg: Any) -> dict[str, Ref]:
    """``cfg``: the study's frozen config (``pipelines.models.MadGaussianConfig``)."""
    truth = {"mu0": cfg.mu0, "sigma0": cfg.sigma0, "rho": cfg.rho}
    real = real_samples(pieces=cfg.pieces, label=f"{cfg.chains} chains", chains=np.arange(cfg.chains),
                        n=cfg.n, dim=cfg.dim, seed=cfg.seed, **truth)
    outputs: dict[str, Ref] = {}
    history: list[Ref] = []
    for loop in cfg.loops:
        prev: Ref | None = None
        for t in range(cfg.generations + 1):
            inputs = (real,) if prev is None else (real, prev)
            prev = generation(*inputs, pieces=cfg.pieces, label=f"{loop} t={t}", generation=t, loop=loop,
                              lam=cfg.lam, n_synth=cfg.n_synth, n_fresh=cfg.n_fresh,
                              estimator=cfg.estimator, seed=cfg.seed, **truth)
            history.append(prev)
        outputs[f"last_{loop}"] = prev
    outputs = {"curves": curves(*history, loop_names=list(cfg.loops)), **outputs}
    return {**outputs, "claims": check_claims(CLAIMS, outputs)}
