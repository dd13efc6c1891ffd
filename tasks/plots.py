"""Dataset → matplotlib figure, chosen by the dataset's kind (pure: no I/O, no catalog)."""

from __future__ import annotations

from collections.abc import Callable

import xarray as xr

__all__ = ["plot_dataset", "register", "PLOTTERS"]

PLOTTERS: dict[str, Callable[[xr.Dataset], "object"]] = {}


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
