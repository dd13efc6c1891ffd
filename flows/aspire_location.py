"""Study flow ``aspire_location``: ASPIRE on locating a source from travel times, a 2-D problem whose exact
posterior (and the best posterior each iteration's summaries allow) is computed by quadrature on a grid."""

from __future__ import annotations

from typing import Any

from tasks.inference import location

from .aspire import Problem, aspire_loop, sample_labels
from .step import Ref, Step
from .study import study_flow

__all__ = ["aspire_location"]

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
    return {"problem": prob, "held_out": xy["test"], "reference_posterior": exact, **aspire_loop(cfg, loop)}
