"""Study flow ``mad``: real data → per (loop type, bias λ) G generations of every chain (models, a checkpoint;
then their samples and metrics) → curves."""

from __future__ import annotations

from typing import Any

import numpy as np

from tasks.claims import Claim
from tasks.generative import claims, mad

from .claims import check_claims
from .step import Ref, Step
from .study import study_flow

__all__ = ["mad_study", "CLAIMS"]

PAPER = claims.PAPER
CLAIMS = (
    Claim("fully_synthetic_fid_rises",
          "fully synthetic loop, unbiased sampling (λ = 1): the Fréchet distance to real data rises — the last "
          "generation's exceeds generation 0's by more than 2 SE (paired over chains)",
          f"{PAPER}, the fully synthetic loop", claims.metric_change, ("curves",), "at_least", 0.0, 2.0,
          args={"loop": "fully_synthetic", "bias": "1", "metric": "fid"},
          paper_note="FID rises over generations (figures; image models, no number for these data)"),
    Claim("biased_precision_kept",
          "fully synthetic loop, biased sampling (the smallest λ < 1): quality is kept — the last generation's "
          "precision is not lower than generation 0's by more than 2 SE",
          f"{PAPER}, the fully synthetic loop with sampling bias", claims.metric_change, ("curves",),
          "at_least", 0.0, -2.0, args={"loop": "fully_synthetic", "bias": "below_1", "metric": "precision"},
          paper_note="with sampling bias precision is kept or rises while recall falls (figures)"),
    Claim("biased_recall_falls",
          "fully synthetic loop, biased sampling (the smallest λ < 1): diversity falls — the last generation's "
          "recall is below generation 0's by more than 2 SE",
          f"{PAPER}, the fully synthetic loop with sampling bias", claims.metric_change, ("curves",),
          "at_most", 0.0, 2.0, args={"loop": "fully_synthetic", "bias": "below_1", "metric": "recall"},
          paper_note="recall falls over generations (figures)"),
    Claim("fresh_data_stable",
          "fresh data loop (λ = 1): enough fresh real data keeps the model — the last generation's Fréchet "
          "distance is at most 1.1 × generation 0's + 2 SE",
          f"{PAPER}, the fresh data loop", claims.fresh_distance_excess, ("curves",), "at_most", 0.0, -2.0,
          args={"loop": "fresh_data", "bias": "1", "factor": 1.1},
          paper_note="with enough fresh data the loop does not go MAD (figures)"),
)

real = Step("mad_real_data", mad.real_data, version="2", kind="mad_real")
models = Step("mad_models", mad.fit_chains, version="2", kind="checkpoint", map_over="chain", coord_param="chains")
generation = Step("mad_generation", mad.generation, version="2", kind="mad_generation", map_over="chain",
                  coord_param="chains")
curves = Step("mad_curves", mad.curves, version="1", kind="mad_curves")


@study_flow("mad")
def mad_study(cfg: Any) -> dict[str, Ref]:
    """``cfg``: the study's frozen config (``pipelines.mad_models.MadConfig``)."""
    d = cfg.data
    ring = {"modes": d.modes, "radius": d.radius, "std": d.std} if d.kind == "ring" else None
    data = real(label=d.kind, kind=d.kind, pool=d.pool, held_out=d.held_out, components=d.components,
                seed=cfg.seed, ring_options=ring)
    chains = np.arange(cfg.chains)
    every: list[Ref] = []
    out: dict[str, Ref] = {"real": data}
    for loop in cfg.loops:
        for lam in cfg.biases:
            prev: Ref | None = None
            for t in range(cfg.generations + 1):
                label = f"{loop} λ={lam:g} t={t}"
                inputs = (data,) if prev is None else (data, prev)
                prev = models(*inputs, pieces=cfg.pieces, label=label, chains=chains, family=cfg.family,
                              options=cfg.options, loop=loop, lam=lam, generation=t, n=cfg.n, n_synth=cfg.n_synth,
                              n_fresh=cfg.n_fresh, seed=cfg.seed)
                scored = generation(data, prev, pieces=cfg.pieces, label=label, chains=chains, n_eval=cfg.n_eval,
                                    k=cfg.k, seed=cfg.seed)
                every.append(scored)
            out[f"last_{loop}_{lam:g}"] = scored
    out["curves"] = curves(*every, label=f"{len(every)} generations", loops=list(cfg.loops),
                           biases=list(cfg.biases))
    out["claims"] = check_claims(CLAIMS, out)
    return out
