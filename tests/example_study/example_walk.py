"""Study ``example_walk``: random walks (a mapped step: walks per piece) → their mean squared displacement, and
the claim that it is the known n σ²."""

from __future__ import annotations

import numpy as np
from pydantic import Field

from flows.config import StudyConfig
from flows.declare import study
from flows.kinds import Kind, register
from flows.step import Ref, Step
from studies.shared.sections import Pieces
from tasks.claims import Claim

from . import science


class WalkConfig(StudyConfig):
    walks: int = Field(40, ge=2)  # walks (the SE is over them)
    steps: int = Field(50, ge=1)  # steps per walk
    sigma: float = Field(1.0, gt=0)  # m, std of one step
    seed: int = Field(0, ge=0)
    pieces: Pieces = Pieces(per_piece=10)  # walks per zarr chunk


# the study's own kinds, checked when written (what the study's readers and plots rely on)
register(Kind("example_walks", "random walks: the position after each step", {"position": ("walk", "step")}))
register(Kind("example_displacement", "the mean squared displacement per step and its standard error",
              {"msd": ("step",), "msd_se": ("step",)}))

draw = Step("walks", science.walks, version="1", kind="example_walks", map_over="walk", coord_param="walks")
msd = Step("displacement", science.displacement, version="1", kind="example_displacement")

CLAIMS = (Claim("msd_is_n_sigma2", "the last step's mean squared displacement is n σ² within 3 SE",
                "Einstein (1905): a random walk's mean squared displacement grows linearly", science.msd_excess,
                ("displacement",), "within", 0.0, 3.0, args={"sigma": 1.0}),)


@study(config=WalkConfig, claims=CLAIMS, summary="random walks and their mean squared displacement (a test's study)")
def example_walk(cfg: WalkConfig) -> dict[str, Ref]:
    paths = draw(pieces=cfg.pieces, label=f"{cfg.walks} walks", walks=np.arange(cfg.walks), steps=cfg.steps,
                 sigma=cfg.sigma, seed=cfg.seed)
    return {"walks": paths, "displacement": msd(paths, label="msd")}
