"""Study ``mad``: real data → per (loop type, bias λ) G generations of every chain (models, a checkpoint;
then their samples and metrics) → curves."""

from __future__ import annotations

from typing import Annotated, Literal

import numpy as np
from pydantic import Field, model_validator

from flows.config import StudyConfig
from flows.declare import study
from flows.step import Ref, Step
from tasks.claims import Claim
from tasks.generative import claims, mad

from .shared.sections import Loop, Pieces

__all__ = ["mad_study", "MadConfig", "CLAIMS"]


class MadDataSection(StudyConfig):
    """Real data: ``ring`` (``modes`` Gaussians of std ``std`` on a circle of ``radius``, 2D) or ``digits``
    (8x8, 64 features); a ``pool`` of real points, a ``held_out`` reference set, a PCA feature space of
    ``components`` axes."""

    kind: Literal["ring", "digits"] = "ring"  # ring (2D mixture) or digits (scikit-learn 8x8, 64 features)
    pool: int = Field(20000, ge=10, le=10_000_000)  # real points the chains draw from
    held_out: int = Field(1000, ge=10, le=1_000_000)  # real points the metrics compare against
    components: int = Field(16, ge=1, le=64)  # PCA feature axes (at most the features)
    modes: int = Field(6, ge=1, le=64)  # ring: Gaussians on the circle
    radius: float = Field(4.0, gt=0, allow_inf_nan=False)
    std: float = Field(0.4, gt=0, allow_inf_nan=False)


class MixtureSection(StudyConfig):
    """The Gaussian-mixture family (scikit-learn EM)."""

    components: int = Field(6, ge=1, le=256)
    reg_covar: float = Field(1e-6, gt=0, le=1)


class NsfSection(StudyConfig):
    """The neural spline flow family (zuko NSF), trained by maximum likelihood."""

    transforms: int = Field(3, ge=1, le=16)
    hidden_features: tuple[Annotated[int, Field(ge=1, le=4096)], ...] = (32, 32)
    bins: int = Field(8, ge=2, le=64)
    epochs: int = Field(40, ge=1, le=10_000)
    batch_size: int = Field(128, ge=1)
    lr: float = Field(1e-3, gt=0, le=1)
    dequantize: float = Field(0.0, ge=0, le=1e6, allow_inf_nan=False)  # width of the uniform noise added to
    # the training points (discrete data such as the digits' 17 grey levels: 1/16 on the [0, 1] scale)


class MadConfig(StudyConfig):
    """Self-consuming loops of any model family."""

    data: MadDataSection = MadDataSection()
    family: Literal["gaussian", "mixture", "flow"] = "mixture"  # gaussian | mixture | flow
    mixture: MixtureSection = MixtureSection()
    flow: NsfSection = NsfSection()
    loops: tuple[Loop, ...] = ("fully_synthetic", "synthetic_augmentation", "fresh_data")
    # sampling bias λ (1: unbiased)
    biases: tuple[Annotated[float, Field(gt=0, le=10, allow_inf_nan=False)], ...] = (1.0, 0.5)
    n: int = Field(200, ge=2)  # real points per chain (generation 0)
    n_synth: int = Field(200, ge=0)  # synthetic points per generation (augmentation, fresh data)
    n_fresh: int = Field(200, ge=0)  # fresh real points per generation (fresh data)
    n_eval: int = Field(400, ge=4)  # generated points scored per chain and generation
    k: int = Field(3, ge=1, le=100)  # k-NN of the precision/recall manifolds
    # 5 generations of 10 chains: the Fréchet distance's rise was 2.0 SE (too few to see)
    generations: int = Field(10, ge=1, le=1000)
    chains: int = Field(20, ge=2, le=100_000)
    pieces: Pieces = Pieces(per_piece=4)  # chains per zarr chunk
    seed: int = Field(0, ge=0)

    @model_validator(mode="after")
    def _check(self) -> MadConfig:
        if not self.loops or len(set(self.loops)) != len(self.loops):
            raise ValueError(f"loops must name distinct loop types, got {list(self.loops)}")
        if not self.biases or len(set(self.biases)) != len(self.biases):
            raise ValueError(f"biases must be distinct, got {list(self.biases)}")
        if self.n > self.data.pool:
            raise ValueError(f"n = {self.n} real points per chain exceed the pool ({self.data.pool})")
        if "fresh_data" in self.loops and self.n_fresh == 0:
            raise ValueError("the fresh_data loop needs n_fresh > 0 real samples per generation")
        if "fresh_data" in self.loops and self.n_fresh > self.data.pool:
            raise ValueError(f"n_fresh = {self.n_fresh} exceeds the pool ({self.data.pool})")
        if self.k >= min(self.n_eval, self.data.held_out):
            raise ValueError(f"k = {self.k} needs n_eval and data.held_out above it")
        return self

    @property
    def options(self) -> dict:
        """The chosen family's fitting options."""
        return {"gaussian": {}, "mixture": self.mixture.model_dump(mode="json"),
                "flow": self.flow.model_dump(mode="json")}[self.family]

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


@study(config=MadConfig, claims=CLAIMS,
       summary="self-consuming loops of any model family: precision/recall and Fréchet distance per generation")
def mad_study(cfg: MadConfig) -> dict[str, Ref]:
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
