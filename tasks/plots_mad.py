"""Plots of the MAD studies, one per kind: of ``mad`` (``mad_curves``, ``mad_generation``), metric curves over
generations per loop type and bias, sample grids; of ``mad_gaussian`` (``mad_gaussian_curves``,
``mad_gaussian_generation``), W2/variance/mean-error curves, histograms over chains.

A root written before ``mad_gaussian`` had kinds of its own holds its curves and generations as ``mad_curves`` and
``mad_generation``: those two plotters hand such a dataset (it has mad_gaussian's variables, not ``mad``'s) to
mad_gaussian's plotter, so ``strata catalog plot`` of an old root keeps working (nothing is migrated)."""

from __future__ import annotations

import numpy as np
import xarray as xr

from .plots import register

__all__ = ["plot_mad_curves", "plot_mad_generation", "plot_mad_gaussian_curves", "plot_mad_gaussian_generation"]

_NAMES = {"precision": "precision (quality)", "recall": "recall (diversity)", "fid": "Fréchet distance (features)"}


@register("mad_curves")
def plot_mad_curves(ds: xr.Dataset):
    """Rows: precision, recall, Fréchet distance; columns: loop types; a line per bias λ (chain mean ± 2 SE)."""
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    if "fid" not in ds and "w2_mean" in ds:  # mad_gaussian's curves in a root written before its own kinds
        return plot_mad_gaussian_curves(ds)

    loops, metrics = list(ds["loop"].values), list(_NAMES)
    fig, axes = plt.subplots(len(metrics), len(loops), figsize=(4.6 * len(loops), 3.2 * len(metrics)),
                             squeeze=False, sharex=True)
    g = ds["generation"].values
    n = ds.sizes["chain"]
    for j, loop in enumerate(loops):
        for i, m in enumerate(metrics):
            ax = axes[i][j]
            for lam in ds["bias"].values:
                v = ds[m].sel(loop=loop, bias=lam).values  # (chain, generation)
                mean, se = np.nanmean(v, 0), np.nanstd(v, 0, ddof=1) / np.sqrt(n)
                ax.errorbar(g, mean, yerr=2 * se, marker="o", ms=3, capsize=2, label=f"λ = {lam:g}")
            ax.set(title=f"{loop}" if i == 0 else "", ylabel=_NAMES[m] if j == 0 else "",
                   xlabel="generation" if i == len(metrics) - 1 else "")
            ax.grid(alpha=0.3)
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes[0][0].legend(fontsize=8)
    fig.suptitle(f"self-consuming loops: {n} chains, mean ± 2 SE")
    fig.tight_layout()
    return fig


@register("mad_generation")
def plot_mad_generation(ds: xr.Dataset):
    """Samples of up to four chains (2D: scatter; 64 features: 8x8 images) with their metrics."""
    import matplotlib.pyplot as plt

    if "samples" not in ds and "w2" in ds:  # a mad_gaussian generation in a root written before its own kinds
        return plot_mad_gaussian_generation(ds)

    x = ds["samples"].values
    chains = ds["chain"].values[:4]
    title = (f"{ds.attrs.get('family')} · {ds.attrs.get('loop')} · λ = {ds.attrs.get('lam')} · "
             f"generation {ds.attrs.get('generation')}")
    if x.shape[-1] == 64:
        fig, axes = plt.subplots(len(chains), 8, figsize=(9, 1.25 * len(chains) + 0.6), squeeze=False)
        for r, c in enumerate(chains):
            for j in range(8):
                axes[r][j].imshow(x[r, j].reshape(8, 8), cmap="gray_r", vmin=0, vmax=1)
                axes[r][j].axis("off")
            axes[r][0].set_title(f"chain {c}: P {float(ds.precision[r]):.2f} R {float(ds.recall[r]):.2f}",
                                 fontsize=8, loc="left")
    else:
        fig, axes = plt.subplots(1, len(chains), figsize=(3.6 * len(chains), 3.6), squeeze=False)
        lim = float(np.nanpercentile(np.abs(x[..., :2]), 99.5)) * 1.1 or 1.0
        for ax, r in zip(axes[0], range(len(chains)), strict=False):
            ax.scatter(x[r, :, 0], x[r, :, 1 if x.shape[-1] > 1 else 0], s=3, alpha=0.5)
            ax.set(xlim=(-lim, lim), ylim=(-lim, lim), aspect="equal",
                   title=f"chain {chains[r]}: P {float(ds.precision[r]):.2f} R {float(ds.recall[r]):.2f} "
                         f"FD {float(ds.fid[r]):.2f}")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


@register("mad_gaussian_curves")
def plot_mad_gaussian_curves(ds: xr.Dataset):
    """mad_gaussian's curves (``tasks.generative.gaussian.curves``): W2, variance and mean error vs generation per
    loop (mean ± 2 SE), the variance's median and the exact expectations dashed."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    gen = ds["generation"].values
    for i, loop in enumerate(ds["loop"].values):
        c, s = f"C{i}", ds.sel(loop=loop)
        for ax, stem, se in ((axes[0], "w2_mean", "w2_se"), (axes[1], "var_mean", "var_se"),
                             (axes[2], "mean_err", "mean_err_se")):
            m, e = s[stem].values, 2 * s[se].values
            ax.plot(gen, m, "-o", ms=3, color=c, label=str(loop))
            ax.fill_between(gen, np.clip(m - e, 1e-300, None), m + e, color=c, alpha=0.2, lw=0)
        axes[1].plot(gen, s["var_median"].values, ":", color=c)
        for ax, th in ((axes[1], "var_theory"), (axes[2], "mean_err_theory")):
            if th in s and np.isfinite(s[th].values).any():
                ax.plot(gen, s[th].values, "--", color=c, lw=1.2)
    titles = ("Wasserstein-2 distance to the truth", r"fitted variance tr$(\hat\Sigma)/d$",
              r"squared mean error $|\hat\mu - \mu_0|^2$")
    ylabels = ("W2 (data units)", "variance (data units²)", "squared error (data units²)")
    for ax, title, ylabel in zip(axes, titles, ylabels, strict=True):
        ax.set(title=title, xlabel="generation", ylabel=ylabel)
        ax.grid(alpha=0.3)
    axes[1].set_yscale("log")
    axes[2].set_yscale("log")
    axes[0].legend(fontsize=8, title="loop", title_fontsize=8)
    styles = (("-", "mean ± 2 SE (band)"), (":", "median"), ("--", "exact expectation"))
    axes[1].legend([plt.Line2D([], [], color="k", ls=ls) for ls, _ in styles],
                   [label for _, label in styles], fontsize=8)
    fig.suptitle(f"Self-consuming Gaussian loops ({ds.attrs.get('chains', '?')} chains, "
                 f"d = {ds.attrs.get('dim', '?')})")
    fig.tight_layout()
    return fig


@register("mad_gaussian_generation")
def plot_mad_gaussian_generation(ds: xr.Dataset):
    """One mad_gaussian generation: histograms over chains of trace(Σ̂)/d and of W2 to the truth."""
    import matplotlib.pyplot as plt

    var = np.trace(ds["cov"].values, axis1=1, axis2=2) / ds.sizes["dim"]
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    sigma0 = ds.attrs.get("sigma0")
    w2_label = r"W2 to $N(\mu_0, \Sigma_0)$ (data units)"
    for ax, data, xlabel in ((axes[0], var, r"tr$(\hat\Sigma)/d$ (data units²)"),
                             (axes[1], ds["w2"].values, w2_label)):
        ax.hist(data, bins=min(60, max(10, data.size // 20)), color="C0", alpha=0.8)
        ax.axvline(np.median(data), color="k", ls=":", label=f"median {np.median(data):.3g}")
        ax.axvline(data.mean(), color="C3", ls="--", label=f"mean {data.mean():.3g}")
        ax.set(xlabel=xlabel, ylabel="chains")
        ax.legend(fontsize=8)
    if sigma0 is not None:
        axes[0].axvline(sigma0**2, color="C2", label=f"σ₀² = {sigma0**2:.3g}")
        axes[0].legend(fontsize=8)
    axes[0].set_title("fitted variance over chains")
    axes[1].set_title("Wasserstein-2 distance over chains")
    loop = ds.attrs.get("loop", "?")
    fig.suptitle(f"generation {int(ds['generation'])} of {loop} "
                 f"(λ = {ds.attrs.get('lam', '?')}, {ds.sizes['chain']} chains)")
    fig.tight_layout()
    return fig
