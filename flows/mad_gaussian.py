"""Study flow ``mad_gaussian``: real set → G generations per loop type → curves."""

from __future__ import annotations

from typing import Any

import numpy as np

from tasks.generative import gaussian

from .step import Ref, Step
from .study import study_flow

__all__ = ["mad_gaussian", "real_samples", "generation", "curves"]


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
    return {"curves": curves(*history, loop_names=list(cfg.loops)), **outputs}
