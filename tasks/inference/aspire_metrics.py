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

from .stylized import coverage, error_std_corr, gaussian_kl, nominal_coverage

__all__ = ["per_case", "iteration_metrics", "metrics_table", "nominal_coverage", "aggregate", "PER_CASE"]

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


def _is_per_case(ds: xr.Dataset) -> bool:
    return ds.attrs.get("role") == "per_case_metrics"


def aggregate(v: np.ndarray, how: str) -> tuple[float, np.ndarray]:
    """The aggregate over cases and each case's linearized contribution (its standard error is theirs /√n):
    ``mean`` — the mean; ``rms`` — √(mean of v) of per-case squared values v (delta method)."""
    m = float(v.mean())
    if how == "rms":
        root = np.sqrt(m)
        return root, (v / (2 * root) if root > 0 else np.zeros_like(v))
    return m, v


def iteration_metrics(post: xr.Dataset, *inputs: xr.Dataset, iteration: int) -> xr.Dataset:
    """One row (dim ``iteration``, length 1) of metrics of the posterior dataset ``post`` of
    :func:`tasks.inference.aspire.posterior`. ``inputs``: the analytic posterior, if known, and datasets of
    further per-case metrics (attr ``role = per_case_metrics``, variables over ``case``; a variable with
    attr ``aggregate = rms`` holds squared values and is reported as the root of their mean).

    Every per-case metric ``m`` gives ``m`` (the aggregate), ``m_se`` (its standard error over cases) and
    ``m_per_case`` (iteration, case) — kept so that iterations can be compared case by case; coverage also
    gives ``coverage_50_nominal``/``coverage_90_nominal``, the level a calibrated posterior reaches with
    this many draws."""
    extra = [d for d in inputs if _is_per_case(d)]
    reference = [d for d in inputs if not _is_per_case(d)]
    per = {name: (v, "mean") for name, v in per_case(post, *reference).items()}
    cases_coord = post["case"].values
    for d in extra:
        d = d.sel(case=cases_coord)
        per.update({str(n): (np.asarray(d[n].values, float), d[n].attrs.get("aggregate", "mean"))
                    for n in d.data_vars})
    mean, std, truth = (np.asarray(post[v].values, float) for v in ("mean", "std", "truth"))
    cases = len(truth)
    long = {**_LONG, **{str(n): d[n].attrs.get("long_name", str(n)) for d in extra for n in d.data_vars}}
    data = {}
    names = [n for n in PER_CASE if n in per] + [n for n in per if n not in PER_CASE]
    for name in names:
        values, how = per[name]
        agg, contrib = aggregate(values, how)
        se = float(contrib.std(ddof=1) / np.sqrt(cases)) if cases > 1 else 0.0
        data[name] = ("iteration", [agg], {"long_name": long.get(name, name), "aggregate": how})
        data[f"{name}_se"] = ("iteration", [se], {"long_name": f"standard error of {name} over cases"})
        data[f"{name}_per_case"] = (("iteration", "case"), values[None], {"long_name": f"{name} of each case"
                                    + (" (squared; aggregated as the root of the mean)" if how == "rms" else "")})
    draws = int(post.sizes["draw"])
    for level in (0.5, 0.9):
        data[f"coverage_{int(level * 100)}_nominal"] = ("iteration", [nominal_coverage(level, draws)], {
            "long_name": f"coverage of the empirical central {level:.0%} interval of {draws} draws for a "
                         "calibrated posterior"})
    data["error_std_corr"] = ("iteration", [error_std_corr(mean, std, truth)], {"long_name": _LONG["error_std_corr"]})
    ds = xr.Dataset(data, coords={"iteration": ("iteration", [int(iteration)]),
                                  "case": ("case", cases_coord.astype(np.int64))})
    ds.attrs.update({"cases": cases, "draws": draws})
    return ds


def metrics_table(*rows: xr.Dataset) -> xr.Dataset:
    """The rows of :func:`iteration_metrics`, one per iteration, as one ``aspire_metrics`` dataset, with the
    paired change of every per-case metric from the previous iteration: ``m_diff`` and ``m_diff_se`` (the
    same held-out cases) over dim ``change`` (the later iteration of each pair k−1 → k)."""
    if not rows:
        raise InputError("metrics_table needs at least one iteration's metrics")
    table = xr.concat(rows, dim="iteration", combine_attrs="drop_conflicts").sortby("iteration")
    if len(np.unique(table.iteration.values)) != len(rows):
        raise InputError(f"metrics_table: repeated iterations {table.iteration.values.tolist()}")
    n, its = table.sizes.get("case", 0), table.iteration.values
    if len(its) < 2:
        return table
    change = {"change": ("change", its[1:].astype(np.int64), {"long_name": "iteration k of the change k-1 -> k"})}
    for name in [str(v)[: -len("_per_case")] for v in table.data_vars if str(v).endswith("_per_case")]:
        how = table[name].attrs.get("aggregate", "mean")
        per = np.asarray(table[f"{name}_per_case"].values, float)
        if np.isnan(per).any():
            continue
        diff, se = np.empty(len(per) - 1), np.empty(len(per) - 1)
        for i in range(1, len(per)):
            a1, c1 = aggregate(per[i - 1], how)
            a2, c2 = aggregate(per[i], how)
            diff[i - 1] = a2 - a1
            se[i - 1] = float((c2 - c1).std(ddof=1) / np.sqrt(n)) if n > 1 else 0.0
        table[f"{name}_diff"] = xr.DataArray(diff, dims="change", coords=change, attrs={
            "long_name": f"change of {name} from the previous iteration (paired over cases)"})
        table[f"{name}_diff_se"] = xr.DataArray(se, dims="change", coords=change, attrs={
            "long_name": f"standard error of {name}_diff"})
    return table
