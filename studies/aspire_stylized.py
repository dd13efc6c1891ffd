"""Study ``aspire_stylized``: ASPIRE on a linear-Gaussian problem whose posterior is known."""

from __future__ import annotations

from pydantic import Field

from flows.config import StudyConfig
from flows.declare import study
from flows.step import Ref, Step
from tasks.claims import Claim
from tasks.inference import claims as measures
from tasks.inference import stylized_data

from .shared.aspire import REFINE_PAPER, Problem, aspire_loop, sample_labels
from .shared.learning import AspireSection, TrainingSection, VectorCNFSection
from .shared.sections import Pieces

__all__ = ["aspire_stylized", "AspireStylizedConfig", "CLAIMS"]


class LinearProblemSection(StudyConfig):
    """x ∈ R^d ~ N(mu0, G0), y = A x + ε ∈ R^m, ε ~ N(0, Gn) with Gn[i, j] = noise_scale² ·
    noise_correlation^|i−j| (0: white); a seeded random A, mu0 and G0 (eigenvalues in prior_scale² ·
    [1/spread, 1])."""

    d: int = Field(4, ge=1, le=256)  # unknowns
    m: int = Field(6, ge=1, le=1024)  # observations
    prior_scale: float = Field(1.0, gt=0, allow_inf_nan=False)
    noise_scale: float = Field(0.3, gt=0, allow_inf_nan=False)
    noise_correlation: float = Field(0.5, ge=0, lt=1)  # Gn[i, j] = noise_scale^2 * 0.5^|i-j| (non-white)
    spread: float = Field(4.0, ge=1, allow_inf_nan=False)
    seed: int = Field(7, ge=0)


class AspireStylizedConfig(StudyConfig):
    """ASPIRE on the linear-Gaussian problem."""

    problem: LinearProblemSection = LinearProblemSection()
    aspire: AspireSection = AspireSection(train_pairs=20000, test_cases=24, pieces=Pieces(per_piece=5000))
    cnf: VectorCNFSection = VectorCNFSection(transforms=2, hidden_features=(32, 32))
    training: TrainingSection = TrainingSection(epochs=60, patience=10)


CLAIMS = (
    Claim("first_iteration_close", "linear-Gaussian: the first gradient is a sufficient statistic, so iteration 1's "
          "Gaussian KL to the analytic posterior is at most 0.1 nats", REFINE_PAPER, measures.metric, ("metrics",),
          "at_most", 0.1, args={"name": "kl", "at": 0},
          paper_note="the stylized example of the paper (figures; its KL is not tabulated)"),
    Claim("later_iterations_not_worse", "the last iteration is not worse than the first by more than 2 paired SE in KL",
          REFINE_PAPER, measures.change, ("metrics",), "at_most", 0.0, -2.0, args={"name": "kl"},
          paper_note="the stylized example of the paper (figures)"),
)

problem = Step("linear_problem", stylized_data.problem_dataset, version="1", kind="linear_problem")
pairs = Step("pairs", stylized_data.draw_pairs, version="1", kind="pairs", map_over="sample",
             coord_param="samples")
initial = Step("prior_estimates", stylized_data.prior_estimates, version="1", kind="estimates", map_over="sample")
summaries = Step("summaries", stylized_data.summaries, version="1", kind="summary", map_over="sample")
reference = Step("analytic_posterior", stylized_data.reference_posterior, version="1", kind="reference_posterior")


@study(config=AspireStylizedConfig, claims=CLAIMS,
       summary="ASPIRE on a linear-Gaussian problem with a known posterior: a CNF per iteration, metrics")
def aspire_stylized(cfg: AspireStylizedConfig) -> dict[str, Ref]:
    a = cfg.aspire
    prob = problem(label=f"d={cfg.problem.d} m={cfg.problem.m}", **cfg.problem.model_dump(mode="json"))
    labels = sample_labels(a)
    xy = {w: pairs(prob, pieces=a.pieces, label=f"{len(v)} {w}", samples=v, seed=a.seed) for w, v in labels.items()}
    x0 = {w: initial(xy[w], prob, pieces=a.pieces, label=w) for w in xy}

    def summarize(xhat: Ref, split: str, k: int) -> Ref:
        return summaries(xhat, xy[split], prob, pieces=a.pieces, label=f"k={k} {split}")

    loop = Problem(truth=xy, initial=x0, summarize=summarize, var="x", reference=reference(xy["test"], prob))
    out = {"problem": prob, **aspire_loop(cfg, loop)}
    return out
