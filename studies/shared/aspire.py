"""The ASPIRE loop as steps, shared by the ASPIRE studies.

For k = 1…K: summaries s^k at the previous estimates (training and held-out samples, mapped over
samples); CNF_k trained on (x, [s^k, x̂^{k-1}]) in a fresh process with all the configured threads;
held-out posterior draws, the baselines (training mean, ridge on PCA) and the iteration's metrics; then
(k < K) the posterior means x̂^k of every sample. Iteration k's datasets take iteration k−1's as inputs, so
lineage and resumption follow.

Cross-fitting (``aspire.cross_fit`` F ≥ 2): for k < K also F fold CNFs, fold f's trained without the
training samples of fold f; a training sample's next estimate comes from the CNF of its fold, every
held-out case's from fold 0's — so training and held-out estimates are made alike, neither by a CNF that
saw its sample. The iteration's metrics use the CNF trained on all pairs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from flows.step import Ref, Step
from tasks.claims import Claim
from tasks.inference import aspire, aspire_metrics, baselines
from tasks.inference import claims as measures

from .steps import HELD_OUT

__all__ = ["Problem", "aspire_loop", "sample_labels", "train", "estimate", "posterior", "metrics", "table",
           "baseline", "ASPIRE_PAPER", "REFINE_PAPER", "coverage_claims"]

ASPIRE_PAPER = "Orozco, Siahkoohi, Louboutin, Herrmann, ASPIRE: iterative amortized posterior inference (2023)"
REFINE_PAPER = ("Orozco, Siahkoohi, Louboutin, Herrmann, Refining amortized posterior approximations using "
                "gradient-based summary statistics (2023)")


def coverage_claims(low: float, high: float) -> tuple[Claim, Claim]:
    """The posterior's 90 % intervals are calibrated at every iteration: coverage_90 within [low, high]."""
    words = "the share of held-out truths inside the central 90 % posterior interval"
    return (Claim("coverage_90_low", f"at every iteration {words} is at least {low:g}", ASPIRE_PAPER,
                  measures.extreme, ("metrics",), "at_least", low, args={"name": "coverage_90", "which": "min"},
                  paper_note="calibration is shown by figures (z-scores, uncertainty vs error), no coverage number"),
            Claim("coverage_90_high", f"at every iteration {words} is at most {high:g}", ASPIRE_PAPER,
                  measures.extreme, ("metrics",), "at_most", high, args={"name": "coverage_90", "which": "max"}))

train = Step("train_posterior", aspire.train_posterior, version="2", kind="checkpoint", isolated=True)
estimate = Step("posterior_estimates", aspire.posterior_estimates, version="2", kind="estimates", map_over="sample")
posterior = Step("posterior", aspire.posterior, version="1", kind="posterior")
baseline = Step("baselines", baselines.baselines, version="1", kind="case_metrics")
metrics = Step("iteration_metrics", aspire_metrics.iteration_metrics, version="2", kind="aspire_metrics")
table = Step("aspire_metrics", aspire_metrics.metrics_table, version="3", kind="aspire_metrics")

SPLITS = ("train", "test")


def sample_labels(a: Any) -> dict[str, np.ndarray]:
    """Sample labels of the training and held-out splits (``a``: the config's ``aspire`` section); each
    sample's draws are seeded by its label."""
    return {"train": np.arange(a.train_pairs), "test": HELD_OUT + np.arange(a.test_cases)}


@dataclass(frozen=True)
class Problem:
    """What a study gives the loop: per split (``train``, ``test``) the truth and the initial estimates,
    ``summarize(estimates, split, k) -> summaries``, the variable name, and optionally the analytic
    posterior of the held-out cases; ``clip``: bounds of the estimates (e.g. velocities the solver allows);
    ``extra_metrics(k, checkpoint, summaries, estimates, posterior)`` -> datasets of further per-case metrics of
    iteration k (``estimates``: the held-out x̂⁰…x̂ᵏ⁻¹ in order, the last one the CNF's condition)."""

    truth: Mapping[str, Ref]
    initial: Mapping[str, Ref]
    summarize: Callable[[Ref, str, int], Ref]
    var: str
    reference: Ref | None = None
    clip: tuple[float, float] | None = None
    extra_metrics: Callable[[int, Ref, Ref, list[Ref], Ref], tuple[Ref, ...]] | None = None


def aspire_loop(cfg: Any, problem: Problem) -> dict[str, Ref]:
    """Run K iterations; ``cfg`` has sections ``aspire`` (iterations, draws, cross_fit, seed, pieces), ``cnf``
    and ``training`` (with ``threads``). Returns every iteration's checkpoint and posterior, and ``metrics``."""
    a, t = cfg.aspire, cfg.training
    fit = t.model_dump(mode="json", exclude={"threads"})
    net = cfg.cnf.model_dump(mode="json")
    xhat = dict(problem.initial)
    history = [xhat["test"]]
    bounds = {} if problem.clip is None else {"clip": [float(v) for v in problem.clip]}
    common = {"var": problem.var, "seed": a.seed, "threads": t.threads, "cnf": net, "training": fit}
    rows: list[Ref] = []
    out: dict[str, Ref] = {}
    for k in range(1, a.iterations + 1):
        s = {w: problem.summarize(xhat[w], w, k) for w in SPLITS}
        pair = (problem.truth["train"], s["train"], xhat["train"])
        ckpt = train(*pair, label=f"k={k}", iteration=k, **common)
        post = posterior(ckpt, s["test"], xhat["test"], problem.truth["test"], label=f"k={k} held-out",
                         var=problem.var, draws=a.posterior_draws, seed=a.seed, iteration=k)
        base = baseline(*pair, s["test"], xhat["test"], problem.truth["test"], label=f"k={k}", var=problem.var)
        inputs = (problem.reference,) if problem.reference is not None else ()
        if problem.extra_metrics is not None:
            inputs += tuple(problem.extra_metrics(k, ckpt, s["test"], list(history), post))
        rows.append(metrics(post, *inputs, base, label=f"k={k}", iteration=k))
        out[f"checkpoint_{k}"], out[f"posterior_{k}"] = ckpt, post
        if k < a.iterations:
            folds = [train(*pair, label=f"k={k} fold {f + 1}/{a.cross_fit}", iteration=k, fold=f,
                           folds=a.cross_fit, **common) for f in range(a.cross_fit)] if a.cross_fit > 1 else [ckpt]
            draw = {"var": problem.var, "draws": a.estimate_draws, "seed": a.seed, "iteration": k, **bounds}
            xhat = {"train": estimate(s["train"], xhat["train"], *folds, pieces=a.pieces, label=f"k={k} train",
                                      **draw),
                    "test": estimate(s["test"], xhat["test"], folds[0], pieces=a.pieces, label=f"k={k} test", **draw)}
            history.append(xhat["test"])
    out["metrics"] = table(*rows, label=f"K={a.iterations}")
    return out
