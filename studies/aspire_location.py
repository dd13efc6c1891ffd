"""Study ``aspire_location``: ASPIRE on locating a source from travel times, a 2-D problem whose exact
posterior (and the best posterior each iteration's summaries allow) is computed by quadrature on a grid."""

from __future__ import annotations

from pydantic import Field, model_validator

from flows.config import StudyConfig
from flows.declare import study
from flows.step import Ref, Step
from tasks.claims import Claim
from tasks.inference import claims as measures
from tasks.inference import location

from .shared.aspire import ASPIRE_PAPER, Problem, aspire_loop, coverage_claims, sample_labels
from .shared.learning import AspireSection, TrainingSection, VectorCNFSection
from .shared.sections import Pieces

__all__ = ["aspire_location", "AspireLocationConfig", "CLAIMS"]


class LocationProblemSection(StudyConfig):
    """Source location from travel times: ``receivers`` on a circle of ``radius`` km around the origin,
    ``velocity`` km/s, Gaussian noise of ``noise_std`` s; the source x ~ N(0, I) km; ``seed`` of the cases."""

    receivers: int = Field(8, ge=2, le=1024)  # on a circle around the origin
    radius: float = Field(1.0, gt=0, le=100, allow_inf_nan=False)  # km
    velocity: float = Field(1.0, gt=0, le=100, allow_inf_nan=False)  # km/s
    noise_std: float = Field(0.1, gt=0, le=100, allow_inf_nan=False)  # s
    seed: int = Field(0, ge=0)


class GridSection(StudyConfig):
    """The quadrature grid of the exact posterior: ``points`` per axis (odd) over ±``extent`` km."""

    points: int = Field(241, ge=11, le=2001)  # per axis (odd)
    # km: the grid covers [-4, 4]^2 (4 prior standard deviations)
    extent: float = Field(4.0, gt=0, le=100, allow_inf_nan=False)

    @model_validator(mode="after")
    def _odd(self) -> GridSection:
        if self.points % 2 == 0:
            raise ValueError(f"points must be odd (0 on the grid), got {self.points}")
        return self


class AspireLocationConfig(StudyConfig):
    """ASPIRE on source location from travel times."""

    problem: LocationProblemSection = LocationProblemSection()
    grid: GridSection = GridSection()
    aspire: AspireSection = AspireSection(train_pairs=20000, test_cases=100, estimate_draws=128,
                                          posterior_draws=1000, cross_fit=2, pieces=Pieces(per_piece=5000))
    cnf: VectorCNFSection = VectorCNFSection(family="nsf")
    training: TrainingSection = TrainingSection(epochs=60, patience=10, threads=1)


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


@study(config=AspireLocationConfig, claims=CLAIMS,
       summary="ASPIRE locating a source from travel times: exact posterior by quadrature, ideal per iteration")
def aspire_location(cfg: AspireLocationConfig) -> dict[str, Ref]:
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
    return out
