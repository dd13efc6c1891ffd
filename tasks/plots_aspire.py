"""Plots of the ASPIRE datasets: held-out posteriors (per iteration) and the metrics over iterations."""

from __future__ import annotations

import numpy as np
import xarray as xr

from .plots import register, sections

__all__ = ["plot_posterior", "plot_aspire_metrics", "plot_estimates"]


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
    d = ds.sizes["component"]
    cols = min(d, 4)
    fig, axes = plt.subplots(len(cases), cols + 1, figsize=(3.6 * (cols + 1), 3.0 * len(cases)), squeeze=False)
    for row, case in zip(axes, cases, strict=True):
        one = ds.sel(case=case)
        for j in range(cols):
            ax = row[j]
            ax.hist(one["draws"].values[:, j], bins=60, density=True, alpha=0.7)
            ax.axvline(float(one["truth"][j]), color="k", lw=1.5, label="truth")
            ax.axvline(float(one["mean"][j]), color="C3", ls="--", lw=1.2, label="mean")
            ax.set(title=f"case {case}, x[{j}]")
        row[0].legend(fontsize=8)
        _calibration(row[cols], ds)
    fig.suptitle(f"held-out posterior marginals, iteration {ds.attrs.get('iteration', '?')} "
                 f"({ds.sizes['draw']} draws per case)")
    fig.tight_layout()
    return fig


@register("posterior")
def plot_posterior(ds: xr.Dataset):
    """Held-out cases: images — truth, posterior mean, std, error and calibration per case; vectors —
    the marginal draws with the truth, and calibration."""
    return _image_posterior(ds) if ds["truth"].ndim == 3 else _vector_posterior(ds)


@register("aspire_metrics")
def plot_aspire_metrics(ds: xr.Dataset):
    """Each metric against the iteration, ± 1 standard error over the held-out cases; coverage with its
    nominal levels."""
    import matplotlib.pyplot as plt

    groups = [["rmse", "mean_std"], ["coverage_50", "coverage_90"], ["nll"], ["ssim", "error_std_corr"],
              ["mean_error", "cov_error"], ["kl"]]
    groups = [[n for n in g if n in ds] for g in groups]
    groups = [g for g in groups if g]
    it = ds["iteration"].values
    cols = min(3, len(groups))
    rows = -(-len(groups) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.6 * cols, 3.4 * rows), squeeze=False)
    for ax in axes.ravel()[len(groups):]:
        ax.set_visible(False)
    for ax, names in zip(axes.ravel(), groups, strict=False):
        for name in names:
            se = ds[f"{name}_se"].values if f"{name}_se" in ds else None
            ax.errorbar(it, ds[name].values, yerr=se, marker="o", capsize=3, label=name)
        for level in (0.5, 0.9):
            if f"coverage_{int(level * 100)}" in names:
                ax.axhline(level, color="k", ls=":", lw=1)
        ax.set(xlabel="iteration", xticks=it)
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    fig.suptitle(f"ASPIRE metrics per iteration ({ds.attrs.get('cases', '?')} held-out cases, "
                 f"{ds.attrs.get('draws', '?')} draws each)")
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
