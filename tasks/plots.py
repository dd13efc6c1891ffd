"""Dataset → matplotlib figure, chosen by the dataset's kind (pure: no I/O, no catalog)."""

from __future__ import annotations

from collections.abc import Callable

import xarray as xr

__all__ = ["plot_dataset", "register", "PLOTTERS"]

PLOTTERS: dict[str, Callable[[xr.Dataset], object]] = {}


def register(kind: str):
    """Decorator: ``@register("kind")`` makes a function the plotter of a dataset kind."""

    def deco(fn):
        PLOTTERS[kind] = fn
        return fn

    return deco


def plot_dataset(ds: xr.Dataset, kind: str):
    """Return a matplotlib Figure for ``ds``; unknown kinds get a generic per-variable view."""
    import matplotlib

    matplotlib.use("Agg")
    fn = PLOTTERS.get(kind, _plot_generic)
    return fn(ds)


def _plot_generic(ds: xr.Dataset):
    import matplotlib.pyplot as plt
    import numpy as np

    names = list(ds.data_vars)[:4] or list(ds.coords)[:1]
    fig, axes = plt.subplots(1, len(names), figsize=(4.5 * len(names), 3.5), squeeze=False)
    for ax, name in zip(axes[0], names, strict=False):
        da = ds[name]
        while da.ndim > 2:
            da = da.isel({da.dims[0]: 0})
        if da.ndim == 2:
            da.plot(ax=ax)
        elif da.ndim == 1:
            da.plot(ax=ax)
        else:
            ax.text(0.5, 0.5, f"{name} = {np.asarray(da.values)!r}", ha="center")
        ax.set_title(name)
    fig.tight_layout()
    return fig


@register("mad_curves")
def plot_mad_curves(ds: xr.Dataset):
    """MAD summary (``summarize`` output): W2, variance and mean error vs generation per loop."""
    import matplotlib.pyplot as plt
    import numpy as np

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


@register("mad_generation")
def plot_mad_generation(ds: xr.Dataset):
    """One MAD generation: histograms over chains of trace(Σ̂)/d and of W2 to the truth."""
    import matplotlib.pyplot as plt
    import numpy as np

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
