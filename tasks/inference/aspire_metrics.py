"""Metrics of one ASPIRE iteration on held-out cases, and the table over iterations (kind ``aspire_metrics``).

Per case: ``rmse`` of the posterior mean, ``mean_std`` (mean pointwise posterior std), ``coverage_50`` and
``coverage_90`` (share of true values inside the central 50 % / 90 % interval of their marginal draws),
``nll`` (−log p(truth | condition)), for images ``ssim`` (scikit-image, data range of the truth); pooled
over all cases: ``error_std_corr``. With a reference (the analytic posterior: ``mean`` (sample, d) and
``cov`` (d, d)) also ``mean_error`` = ‖μ̂ − μ_post‖ / √tr Γ_post, ``cov_error`` = ‖Γ̂ − Γ_post‖_F / ‖Γ_post‖_F
and ``kl`` = KL(N(μ̂, Γ̂) ‖ N(μ_post, Γ_post)), with μ̂, Γ̂ the mean and covariance of the draws. Every
per-case metric is the mean over cases, with ``<name>_se`` its standard error.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from strata_errors import InputError

from .stylized import coverage, error_std_corr, gaussian_kl

__all__ = ["per_case", "iteration_metrics", "metrics_table", "PER_CASE"]

PER_CASE = ("rmse", "ssim", "mean_std", "coverage_50", "coverage_90", "nll", "mean_error", "cov_error", "kl")
_LONG = {"rmse": "RMS error of the posterior mean", "ssim": "structural similarity of mean and truth",
         "mean_std": "mean posterior standard deviation", "coverage_50": "truth inside the central 50 % interval",
         "coverage_90": "truth inside the central 90 % interval", "nll": "-log p(truth | condition), nats",
         "error_std_corr": "correlation of |error| and posterior std",
         "mean_error": "|mean - analytic mean| / sqrt(tr analytic cov)",
         "cov_error": "relative Frobenius error of the sample covariance",
         "kl": "KL(fitted Gaussian || analytic posterior), nats"}


def _ssim(truth: np.ndarray, mean: np.ndarray) -> float:
    from skimage.metrics import structural_similarity

    span = float(truth.max() - truth.min())
    win = min(7, *truth.shape)
    return float(structural_similarity(truth, mean, data_range=span if span > 0 else 1.0,
                                       win_size=win if win % 2 else win - 1))


def _reference(post: xr.Dataset, ref: xr.Dataset) -> dict[str, np.ndarray]:
    if post.draws.ndim != 3:
        raise InputError("an analytic reference posterior is for vector problems: draws must be (case, draw, d)")
    mu = np.asarray(ref["mean"].sel(sample=post["case"].values).values, float)
    cov = np.asarray(ref["cov"].values, float)
    draws = np.asarray(post.draws.values, float)
    mu_hat = draws.mean(1)
    cov_hat = np.stack([np.cov(d, rowvar=False) for d in draws])
    return {"mean_error": np.linalg.norm(mu_hat - mu, axis=-1) / np.sqrt(np.trace(cov)),
            "cov_error": np.linalg.norm(cov_hat - cov, axis=(-2, -1)) / np.linalg.norm(cov),
            "kl": gaussian_kl(mu_hat, cov_hat, mu, np.broadcast_to(cov, cov_hat.shape))}


def per_case(post: xr.Dataset, *reference: xr.Dataset) -> dict[str, np.ndarray]:
    """Every per-case metric of the posterior dataset ``post`` (one value per case), e.g. for paired
    comparisons of two iterations on the same cases; ``reference``: the analytic posterior, if known."""
    if len(reference) > 1:
        raise InputError("per_case takes at most one reference posterior")
    draws, truth = np.asarray(post.draws.values, float), np.asarray(post.truth.values, float)
    mean, std = np.asarray(post["mean"].values, float), np.asarray(post["std"].values, float)
    cases = len(truth)
    out: dict[str, np.ndarray] = {
        "rmse": np.sqrt(((mean - truth) ** 2).reshape(cases, -1).mean(1)),
        "mean_std": std.reshape(cases, -1).mean(1),
        "coverage_50": np.array([coverage(draws[i], truth[i], 0.5) for i in range(cases)]),
        "coverage_90": np.array([coverage(draws[i], truth[i], 0.9) for i in range(cases)]),
        "nll": np.asarray(post.nll.values, float),
    }
    if truth.ndim == 3:
        out["ssim"] = np.array([_ssim(truth[i], mean[i]) for i in range(cases)])
    if reference:
        out.update(_reference(post, reference[0]))
    return out


def iteration_metrics(post: xr.Dataset, *reference: xr.Dataset, iteration: int) -> xr.Dataset:
    """One row (dim ``iteration``, length 1) of metrics of the posterior dataset ``post`` of
    :func:`tasks.inference.aspire.posterior`; ``reference``: the analytic posterior, if known."""
    per = per_case(post, *reference)
    mean, std, truth = (np.asarray(post[v].values, float) for v in ("mean", "std", "truth"))
    cases = len(truth)
    data = {}
    for name in PER_CASE:
        if name in per:
            v = per[name]
            se = float(v.std(ddof=1) / np.sqrt(cases)) if cases > 1 else 0.0
            data[name] = ("iteration", [float(v.mean())], {"long_name": _LONG[name]})
            data[f"{name}_se"] = ("iteration", [se], {"long_name": f"standard error of {name} over cases"})
    data["error_std_corr"] = ("iteration", [error_std_corr(mean, std, truth)], {"long_name": _LONG["error_std_corr"]})
    ds = xr.Dataset(data, coords={"iteration": ("iteration", [int(iteration)])})
    ds.attrs.update({"cases": cases, "draws": int(post.sizes["draw"])})
    return ds


def metrics_table(*rows: xr.Dataset) -> xr.Dataset:
    """The rows of :func:`iteration_metrics`, one per iteration, as one ``aspire_metrics`` dataset."""
    if not rows:
        raise InputError("metrics_table needs at least one iteration's metrics")
    table = xr.concat(rows, dim="iteration", combine_attrs="drop_conflicts").sortby("iteration")
    if len(np.unique(table.iteration.values)) != len(rows):
        raise InputError(f"metrics_table: repeated iterations {table.iteration.values.tolist()}")
    return table
