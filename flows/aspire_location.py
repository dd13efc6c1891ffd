"""Study flow ``aspire_location``: ASPIRE on locating a source from travel times, a 2-D problem whose exact
posterior (and the best posterior each iteration's summaries allow) is computed by quadrature on a grid."""

from __future__ import annotations

from typing import Any

from tasks.claims import Claim
from tasks.inference import claims as measures
from tasks.inference import location

from .aspire import ASPIRE_PAPER, Problem, aspire_loop, coverage_claims, sample_labels
from .claims import check_claims
from .step import Ref, Step
from .study import study_flow

__all__ = ["aspire_location", "CLAIMS"]

_FIG = "the paper's claim on a problem whose exact posterior is known (our set-up; no number in the paper)"
CLAIMS = (
    Claim("kl_grid_last", "the last iteration's KL(exact ‖ CNF) on the grid is at most 0.4 nats", ASPIRE_PAPER,
          measures.metric, ("metrics",), "at_most", 0.4, args={"name": "kl_grid"}, paper_note=_FIG),
    Claim("kl_grid_drop", "the KL falls by at least 0.8 nats from the first iteration to the last", ASPIRE_PAPER,
          measures.change, ("metrics",), "at_most", -0.8, args={"name": "kl_grid"}, paper_note=_FIG),
    Claim("kl_grid_drop_significant", "the KL's fall from the first iteration to the last is more than 3 paired SE",
          ASPIRE_PAPER, measures.change, ("metrics",), "at_most", 0.0, 3.0, args={"name": "kl_grid"},
          paper_note=_FIG),
    Claim("rmse_halves", "the last iteration's posterior-mean rmse is at most half the first iteration's",
          ASPIRE_PAPER, measures.ratio, ("metrics",), "at_most", 0.5, args={"name": "rmse", "at": -1, "other_at": 0},
          paper_note=_FIG),
    Claim("mean_error_last", "the last iteration's mean_error — the RMS over cases of ‖μ̂ − μ_exact‖ / √tr Σ_exact "
          "— is at most 0.6", ASPIRE_PAPER, measures.metric, ("metrics",), "at_most", 0.6,
          args={"name": "mean_error"}, paper_note=_FIG),
    *coverage_claims(0.80, 0.98),
)

problem = Step("location_problem", location.problem_dataset, version="1", kind="location_problem")
cases = Step("location_cases", location.draw_cases, version="1", kind="pairs", map_over="sample",
             coord_param="samples")
initial = Step("prior_estimates", location.prior_estimates, version="1", kind="estimates", map_over="sample")
summaries = Step("travel_time_summaries", location.summaries, version="1", kind="summary", map_over="sample")
reference = Step("grid_posterior", location.reference_posterior, version="1", kind="reference_posterior")
grid_metrics = Step("grid_metrics", location.grid_metrics, version="1", kind="case_metrics")
ideal = Step("ideal_metrics", location.ideal_metrics, version="1", kind="case_metrics")


@study_flow("aspire_location")
def aspire_location(cfg: Any) -> dict[str, Ref]:
    """``cfg``: the study's frozen config (``pipelines.aspire_models.AspireLocationConfig``)."""
    a, p, g = cfg.aspire, cfg.problem, cfg.grid
    prob = problem(label=f"{p.receivers} receivers", **p.model_dump(mode="json", exclude={"seed"}))
    xy = {w: cases(prob, pieces=a.pieces, label=f"{len(v)} {w}", samples=v, seed=p.seed)
          for w, v in sample_labels(a).items()}
    x0 = {w: initial(xy[w], pieces=a.pieces, label=w) for w in xy}
    exact = reference(xy["test"], prob, label=f"{g.points}² points", points=g.points, extent=g.extent)

    def summarize(xhat: Ref, split: str, k: int) -> Ref:
        return summaries(xhat, xy[split], prob, pieces=a.pieces, label=f"k={k} {split}")

    def extra(k: int, ckpt: Ref, s: Ref, xhats: list[Ref], post: Ref) -> tuple[Ref, ...]:
        return (grid_metrics(ckpt, s, xhats[-1], exact, post, label=f"k={k}"),
                ideal(prob, xy["test"], exact, *xhats, label=f"k={k}"))

    loop = Problem(truth=xy, initial=x0, summarize=summarize, var="x", extra_metrics=extra)
    out = {"problem": prob, "held_out": xy["test"], "reference_posterior": exact, **aspire_loop(cfg, loop)}
    return {**out, "claims": check_claims(CLAIMS, out)}
