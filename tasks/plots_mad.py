"""Plots of the ``mad`` study: metric curves over generations per loop type and bias, sample grids."""

from __future__ import annotations

import numpy as np
import xarray as xr

__all__ = ["curves", "generation"]

_NAMES = {"precision": "precision (quality)", "recall": "recall (diversity)", "fid": "Fréchet distance (features)"}


def curves(ds: xr.Dataset):
    """Rows: precision, recall, Fréchet distance; columns: loop types; a line per bias λ (chain mean ± 2 SE)."""
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

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


def generation(ds: xr.Dataset):
    """Samples of up to four chains (2D: scatter; 64 features: 8x8 images) with their metrics."""
    import matplotlib.pyplot as plt

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
