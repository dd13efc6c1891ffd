"""Study flow ``mad``: real data → per (loop type, bias λ) G generations of every chain (models, a checkpoint;
then their samples and metrics) → curves."""

from __future__ import annotations

from typing import Any

import numpy as np

from tasks.generative import mad

from .step import Ref, Step
from .study import study_flow

__all__ = ["mad_study"]

real = Step("mad_real_data", mad.real_data, version="1", kind="mad_real")
models = Step("mad_models", mad.fit_chains, version="1", kind="checkpoint", map_over="chain", coord_param="chains")
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
    return out
