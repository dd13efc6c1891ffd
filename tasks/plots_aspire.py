"""Plots of the ASPIRE datasets: held-out posteriors (per iteration) and the metrics over iterations."""

from __future__ import annotations

import numpy as np
import xarray as xr

from .plots import register, sections

__all__ = ["plot_posterior", "plot_aspire_metrics", "plot_estimates", "plot_pairs", "plot_reference_posterior",
           "plot_location_problem"]


def _calibration(ax, ds: xr.Dataset) -> None:
    """|error| against the posterior std, every entry of every case, with the y = x line."""
    err = np.abs(ds["mean"].values - ds["truth"].values).ravel()
    std = np.broadcast_to(ds["std"].values, ds["mean"].shape).ravel()
    pick = np.random.default_rng(0).permutation(err.size)[:20000]
    ax.scatter(std[pick], err[pick], s=2, alpha=0.3)
    top = float(max(std.max(), np.percentile(err, 99.5)))
    ax.plot([0, top], [0, top], "k--", lw=1, label="|error| = std")
    ax.set(xlabel="posterior std", ylabel="|mean − truth|", title="calibration", xlim=(0, top), ylim=(0, top))
    ax.legend(fontsize=8)


def _image_posterior(ds: xr.Dataset):
    import matplotlib.pyplot as plt

    cases = ds["case"].values[: min(3, ds.sizes["case"])]
    x, z = ds["x"].values, ds["z"].values
    extent = (x[0], x[-1], z[-1], z[0])
    lo, hi = np.percentile(ds["truth"].values, [1, 99])
    err = ds["mean"] - ds["truth"]
    emax = float(np.percentile(np.abs(err.values), 99)) or 1.0
    smax = float(np.percentile(ds["std"].values, 99)) or 1.0
    fig, axes = plt.subplots(len(cases), 5, figsize=(19, 3.4 * len(cases)), squeeze=False)
    for row, case in zip(axes, cases, strict=True):
        panels = [("truth", ds["truth"], "viridis", lo, hi), ("posterior mean", ds["mean"], "viridis", lo, hi),
                  ("posterior std", ds["std"], "magma", 0, smax), ("error (mean − truth)", err, "seismic", -emax, emax)]
        for ax, (title, da, cmap, vmin, vmax) in zip(row, panels, strict=False):
            im = ax.imshow(da.sel(case=case).transpose("z", "x").values, cmap=cmap, vmin=vmin, vmax=vmax,
                           extent=extent, aspect="equal")
            ax.set(title=f"case {case}: {title}", xlabel="x (m)", ylabel="z (m)")
            fig.colorbar(im, ax=ax, shrink=0.8)
        _calibration(row[4], ds.sel(case=[case]))
    fig.suptitle(f"held-out posterior, iteration {ds.attrs.get('iteration', '?')} ({ds.sizes['draw']} draws)")
    fig.tight_layout()
    return fig


def _vector_posterior(ds: xr.Dataset):
    import matplotlib.pyplot as plt

    cases = ds["case"].values[: min(2, ds.sizes["case"])]
    event = ds["truth"].dims[-1]
    d = ds.sizes[event]
    labels = [str(v) for v in ds[event].values] if event in ds.coords else [str(j) for j in range(d)]
    cols = min(d, 4) + (d == 2)
    fig, axes = plt.subplots(len(cases), cols + 1, figsize=(3.6 * (cols + 1), 3.0 * len(cases)), squeeze=False)
    for row, case in zip(axes, cases, strict=True):
        one = ds.sel(case=case)
        draws, truth, mean = one["draws"].values, one["truth"].values, one["mean"].values
        for j in range(min(d, 4)):
            ax = row[j]
            ax.hist(draws[:, j], bins=60, density=True, alpha=0.7)
            ax.axvline(float(truth[j]), color="k", lw=1.5, label="truth")
            ax.axvline(float(mean[j]), color="C3", ls="--", lw=1.2, label="mean")
            ax.set(title=f"case {case}, {event} {labels[j]}")
        if d == 2:  # the joint draws: curved posteriors show here, not in the marginals
            ax = row[2]
            ax.scatter(draws[:, 0], draws[:, 1], s=2, alpha=0.3)
            ax.plot(*truth, "k*", ms=10, label="truth")
            ax.plot(*mean, "C3x", ms=8, label="mean")
            ax.set(title=f"case {case}: joint draws", xlabel=labels[0], ylabel=labels[1])
            ax.set_aspect("equal", adjustable="datalim")
        row[0].legend(fontsize=8)
        _calibration(row[cols], ds)
    fig.suptitle(f"held-out posterior, iteration {ds.attrs.get('iteration', '?')} "
                 f"({ds.sizes['draw']} draws per case)")
    fig.tight_layout()
    return fig


@register("posterior")
def plot_posterior(ds: xr.Dataset):
    """Held-out cases: images — truth, posterior mean, std, error and calibration per case; vectors —
    the marginal draws with the truth, and calibration."""
    return _image_posterior(ds) if ds["truth"].ndim == 3 else _vector_posterior(ds)


_GROUPS = [["rmse", "rmse_linear", "rmse_prior_mean", "ideal_rmse"], ["mean_std"], ["coverage_50", "coverage_90"],
           ["nll"], ["kl_grid", "ideal_kl_grid"], ["kl"], ["mean_error", "ideal_mean_error", "cov_error"],
           ["ssim", "error_std_corr"]]
_STYLE = {"rmse_linear": {"color": "C2", "ls": "-.", "label": "ridge on PCA (baseline)"},
          "rmse_prior_mean": {"color": "0.5", "ls": ":", "label": "training mean (baseline)"}}


@register("aspire_metrics")
def plot_aspire_metrics(ds: xr.Dataset):
    """Each metric against the iteration with a band of ± 2 standard errors over the held-out cases; beside
    the CNF's rmse the baselines, beside a metric ``m`` its ideal value ``ideal_m`` (the best posterior the
    iteration's summaries allow, dashed) where it is known; coverage with the level a calibrated posterior
    reaches with the draws taken (dotted)."""
    import matplotlib.pyplot as plt

    groups = [[n for n in g if n in ds] for g in _GROUPS]
    groups = [g for g in groups if g]
    it = ds["iteration"].values
    cols = min(3, len(groups))
    rows = -(-len(groups) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.8 * cols, 3.5 * rows), squeeze=False)
    for ax in axes.ravel()[len(groups):]:
        ax.set_visible(False)
    for ax, names in zip(axes.ravel(), groups, strict=False):
        for i, name in enumerate(names):
            v = np.asarray(ds[name].values, float)
            se = np.asarray(ds[f"{name}_se"].values, float) if f"{name}_se" in ds else np.zeros_like(v)
            style = _STYLE.get(name, {"color": "k", "ls": "--", "label": "ideal (quadrature)"}
                               if name.startswith("ideal_") else {"color": f"C{i}", "ls": "-", "label": name})
            ax.plot(it, v, marker="o", ms=4, **style)
            ax.fill_between(it, v - 2 * se, v + 2 * se, color=style["color"], alpha=0.15, lw=0)
            nominal = f"{name}_nominal"
            if nominal in ds:
                ax.plot(it, ds[nominal].values, color=style["color"], ls=":", lw=1.2,
                        label=f"calibrated, {ds.attrs.get('draws', '?')} draws")
        ax.set(xlabel="iteration", xticks=it, title=names[0])
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
    fig.suptitle(f"ASPIRE metrics per iteration ({ds.attrs.get('cases', '?')} held-out cases, "
                 f"{ds.attrs.get('draws', '?')} draws each; bands ± 2 SE)")
    fig.tight_layout()
    return fig


@register("estimates")
def plot_estimates(ds: xr.Dataset):
    """Posterior-mean estimates: velocity models as sections, vectors as lines per sample."""
    import matplotlib.pyplot as plt

    if "vp" in ds:
        return sections(ds, "vp", lead="sample", max_panels=3, symmetric=False, cmap="viridis",
                         title=f"estimates ({ds.sizes['sample']} samples)")
    var = next(iter(ds.data_vars))
    fig, ax = plt.subplots(figsize=(6, 3.6))
    ax.plot(ds[var].values[:50].T, alpha=0.4)
    ax.set(xlabel=ds[var].dims[-1], ylabel=var, title=f"estimates of {ds.sizes['sample']} samples (first 50)")
    fig.tight_layout()
    return fig


def _receivers(ax, problem_like: xr.Dataset) -> None:
    if "receivers" in problem_like:
        r = problem_like["receivers"].values
        ax.plot(r[:, 0], r[:, 1], "v", color="C1", ms=7, label="receivers")


@register("location_problem")
def plot_location_problem(ds: xr.Dataset):
    """The receivers (km) and the prior's 1σ and 2σ circles."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4.6, 4.4))
    t = np.linspace(0, 2 * np.pi, 200)
    for k in (1, 2):
        ax.plot(k * np.cos(t), k * np.sin(t), color="0.6", ls=":", lw=1, label=f"prior {k}σ" if k == 1 else None)
    _receivers(ax, ds)
    ax.set(xlabel="x (km)", ylabel="y (km)", aspect="equal", title=f"{ds.sizes['receiver']} receivers, "
           f"v = {ds.attrs.get('velocity')} km/s, noise {ds.attrs.get('noise_std')} s")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


@register("pairs")
def plot_pairs(ds: xr.Dataset):
    """The true unknowns of the samples (the first two components) and, where there is room, the data."""
    import matplotlib.pyplot as plt

    x = ds["x"].values
    fig, axes = plt.subplots(1, 2, figsize=(9.5, 4.0))
    axes[0].scatter(x[:, 0], x[:, 1] if x.shape[1] > 1 else np.zeros(len(x)), s=4, alpha=0.5)
    axes[0].set(title=f"true x of {len(x)} samples", xlabel="x[0]", ylabel="x[1]")
    if "y" in ds:
        axes[1].plot(ds["y"].values[:30].T, alpha=0.5)
        axes[1].set(title="observed y (first 30 samples)", xlabel=ds["y"].dims[-1], ylabel="y")
    fig.tight_layout()
    return fig


@register("reference_posterior")
def plot_reference_posterior(ds: xr.Dataset):
    """The exact posterior: on a grid, the density of the first cases with its mean; otherwise the analytic
    means and covariance."""
    import matplotlib.pyplot as plt

    if "log_density" not in ds:
        fig, axes = plt.subplots(1, 2, figsize=(9.5, 4.0))
        axes[0].plot(ds["mean"].values[:30].T, alpha=0.5)
        axes[0].set(title="analytic posterior means (first 30)", xlabel=ds["mean"].dims[-1])
        im = axes[1].imshow(ds["cov"].values, cmap="RdBu_r")
        fig.colorbar(im, ax=axes[1])
        axes[1].set(title="analytic posterior covariance")
        fig.tight_layout()
        return fig
    cases = ds["case"].values[: min(4, ds.sizes["case"])]
    g = ds["gx"].values
    fig, axes = plt.subplots(1, len(cases), figsize=(3.8 * len(cases), 3.8), squeeze=False)
    for ax, case in zip(axes[0], cases, strict=True):
        p = np.exp(ds["log_density"].sel(case=case).values).T
        ax.imshow(p, origin="lower", extent=(g[0], g[-1], g[0], g[-1]), cmap="Blues")
        m = ds["mean"].sel(case=case).values
        ax.plot(*m, "C3x", ms=8, label="exact mean")
        half = max(4 * float(np.sqrt(np.trace(ds["cov"].sel(case=case).values))), 0.3)
        ax.set(xlim=(m[0] - half, m[0] + half), ylim=(m[1] - half, m[1] + half), title=f"case {case}",
               xlabel="x (km)", ylabel="y (km)")
    axes[0][0].legend(fontsize=8)
    fig.suptitle(f"exact posterior by quadrature ({ds.attrs.get('points', '?')}² points over "
                 f"±{ds.attrs.get('extent', '?')} km)")
    fig.tight_layout()
    return fig
