"""Study ``mad_gaussian``: real set → G generations per loop type → curves."""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import Field, model_validator

from flows.config import StudyConfig
from flows.declare import study
from flows.step import Ref, Step
from tasks.claims import Claim
from tasks.generative import claims, gaussian

from .shared.sections import Loop, Pieces

__all__ = ["mad_gaussian", "MadGaussianConfig", "real_samples", "generation", "curves", "CLAIMS"]


class MadGaussianConfig(StudyConfig):
    """The self-consuming Gaussian loop."""

    dim: int = Field(2, ge=1, le=64)  # 1 = scalar case; d > 1 uses full covariance
    mu0: float = 0.0
    sigma0: float = Field(1.0, gt=0)
    rho: float = Field(0.5, gt=-1, lt=1)  # correlation of Sigma0 (d > 1)
    n: int = Field(20, ge=2)  # real samples (generation 0) and synthetic samples per generation (fully synthetic)
    n_synth: int = Field(20, ge=0)  # synthetic samples per generation in augmentation and fresh-data loops
    n_fresh: int = Field(10, ge=0)  # new real samples per generation in the fresh-data loop
    lam: float = Field(1.0, gt=0, le=10)  # sampling bias lambda: sample from N(mu, lam * Sigma)
    estimator: Literal["unbiased", "mle"] = "unbiased"  # or mle
    loops: tuple[Loop, ...] = ("fully_synthetic", "synthetic_augmentation", "fresh_data")
    generations: int = Field(20, ge=1, le=10000)
    chains: int = Field(400, ge=1)
    pieces: Pieces = Pieces(per_piece=400)  # chains per zarr chunk
    seed: int = Field(2026, ge=0)

    @model_validator(mode="after")
    def _check(self) -> MadGaussianConfig:
        if not self.loops:
            raise ValueError("loops must name at least one loop type")
        if len(set(self.loops)) != len(self.loops):
            raise ValueError("loops has duplicates")
        if "fresh_data" in self.loops and self.n_fresh == 0:
            raise ValueError("the fresh_data loop needs n_fresh > 0 real samples per generation")
        if "fresh_data" in self.loops and self.n_fresh + self.n_synth < 2:
            raise ValueError("fresh_data needs n_fresh + n_synth >= 2")
        if self.dim > 1 and not (-1.0 / (self.dim - 1) < self.rho < 1.0):
            raise ValueError(f"rho must lie in (-1/(dim-1), 1) = ({-1.0 / (self.dim - 1):.3g}, 1) "
                             "for a valid covariance")
        return self

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


real_samples = Step("real_samples", gaussian.draw_real, version="1", kind="mad_gaussian_real",
                    map_over="chain", coord_param="chains")
generation = Step("generation", gaussian.fit_generation, version="2", kind="mad_gaussian_generation", map_over="chain")
curves = Step("curves", gaussian.curves, version="1", kind="mad_gaussian_curves")


@study(config=MadGaussianConfig, claims=CLAIMS,
       summary="self-consuming Gaussian loop: fitted mean/covariance and W2 per generation, 3 loop types")
def mad_gaussian(cfg: MadGaussianConfig) -> dict[str, Ref]:
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
