"""Study flow ``aspire_stylized``: ASPIRE on a linear-Gaussian problem whose posterior is known."""

from __future__ import annotations

from typing import Any

from tasks.claims import Claim
from tasks.inference import claims as measures
from tasks.inference import stylized_data

from .aspire import REFINE_PAPER, Problem, aspire_loop, sample_labels
from .claims import check_claims
from .step import Ref, Step
from .study import study_flow

__all__ = ["aspire_stylized", "CLAIMS"]

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


@study_flow("aspire_stylized")
def aspire_stylized(cfg: Any) -> dict[str, Ref]:
    """``cfg``: the study's frozen config (``pipelines.aspire_models.AspireStylizedConfig``)."""
    a = cfg.aspire
    prob = problem(label=f"d={cfg.problem.d} m={cfg.problem.m}", **cfg.problem.model_dump(mode="json"))
    labels = sample_labels(a)
    xy = {w: pairs(prob, pieces=a.pieces, label=f"{len(v)} {w}", samples=v, seed=a.seed) for w, v in labels.items()}
    x0 = {w: initial(xy[w], prob, pieces=a.pieces, label=w) for w in xy}

    def summarize(xhat: Ref, split: str, k: int) -> Ref:
        return summaries(xhat, xy[split], prob, pieces=a.pieces, label=f"k={k} {split}")

    loop = Problem(truth=xy, initial=x0, summarize=summarize, var="x", reference=reference(xy["test"], prob))
    out = {"problem": prob, **aspire_loop(cfg, loop)}
    return {**out, "claims": check_claims(CLAIMS, out)}
