"""Dataset → matplotlib figure, chosen by the dataset's kind (pure: no I/O, no catalog).

The registry and the helpers every plotter shares. The plotters themselves live in ``tasks/plots_<domain>.py``
(seismic, nn, aspire, co2, mad, claims, …), each importing only this module and marking a function
``@register("kind")``; :func:`plot_dataset` imports every ``tasks.plots_*`` module on its first call
(:func:`discover`), so a new kind's plot is one new function in one such module — no other edit.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import xarray as xr

__all__ = ["plot_dataset", "plotter", "register", "discover", "code_version", "sections", "section", "row_height",
           "PLOTTERS"]

PLOTTERS: dict[str, Callable[[xr.Dataset], object]] = {}  # kind -> plotter, filled by discover()
_PREFIX = "plots_"  # the modules discover() imports: tasks/plots_<domain>.py


def register(kind: str):
    """Decorator: ``@register("kind")`` makes a function the plotter of a dataset kind (one plotter per kind:
    a second function for a registered kind is an error)."""

    def deco(fn):
        old = PLOTTERS.get(kind)
        if old is not None and (old.__module__, old.__qualname__) != (fn.__module__, fn.__qualname__):
            raise ValueError(f"kind {kind!r} already has a plotter: {old.__module__}.{old.__qualname__}")
        PLOTTERS[kind] = fn
        return fn

    return deco


@functools.cache
def discover() -> tuple[str, ...]:
    """Import every ``tasks.plots_<domain>`` module (importing one registers its plotters), once per process;
    returns their names."""
    import importlib
    import pkgutil
    from pathlib import Path

    names = sorted(f"{__package__}.{m.name}" for m in pkgutil.iter_modules([str(Path(__file__).parent)])
                   if m.name.startswith(_PREFIX))
    for name in names:
        importlib.import_module(name)
    return tuple(names)


def plotter(kind: str) -> Callable[[xr.Dataset], object]:
    """The plotter of a dataset kind; unknown kinds get a generic per-variable view."""
    discover()
    return PLOTTERS.get(kind, _plot_generic)


def plot_dataset(ds: xr.Dataset, kind: str):
    """Return a matplotlib Figure for ``ds``; unknown kinds get a generic per-variable view."""
    import matplotlib

    matplotlib.use("Agg")
    return plotter(kind)(ds)


@functools.cache
def code_version() -> str:
    """sha256 (16 hex) of the plotting code: this module and every ``tasks.plots_<domain>`` module, so that a
    rendering cached under it (the report's PNGs) is redrawn when any plotter changes (once per process: the
    plotting code a process runs is the code it imported)."""
    import hashlib
    import sys
    from pathlib import Path

    h = hashlib.sha256()
    for name in (__name__, *discover()):
        h.update(name.encode() + b"\0" + Path(sys.modules[name].__file__).read_bytes())
    return h.hexdigest()[:16]


def _plot_generic(ds: xr.Dataset):
    import matplotlib.pyplot as plt
    import numpy as np

    names = list(ds.data_vars)[:4] or list(ds.coords)[:1]
    fig, axes = plt.subplots(1, len(names), figsize=(4.5 * len(names), 3.5), squeeze=False)
    for ax, name in zip(axes[0], names, strict=False):
        da = ds[name]
        while da.ndim > 2:
            da = da.isel({da.dims[0]: 0})
        numeric = all(np.issubdtype(np.asarray(da[d].values).dtype, np.number) for d in da.dims if d in da.coords)
        if da.ndim in (1, 2) and not numeric:  # e.g. labels as coordinates: plot against positions
            da = da.drop_vars([d for d in da.dims if d in da.coords])
        if da.ndim in (1, 2):
            da.plot(ax=ax)
        else:
            ax.text(0.5, 0.5, f"{name} = {np.asarray(da.values)!r}", ha="center")
        ax.set_title(name)
    fig.tight_layout()
    return fig


def row_height(x, z, width: float) -> float:
    """Height (inches) of a row of (x, z) panels ``width`` inches wide: depth to scale, at least 2.2."""
    return max(2.2, width * (z[-1] - z[0]) / max(x[-1] - x[0], 1e-12)) + 0.9


def section(ax, panel, x, z, *, cmap: str = "seismic", vmin: float | None = None, vmax: float | None = None):
    """``panel`` (z, x) on ``ax``, x right and depth down to scale; without ``vmax``, a symmetric scale at its own
    98th percentile of |values|."""
    import numpy as np

    if vmax is None:
        vmax = float(np.percentile(np.abs(panel), 98)) or 1.0
        vmin = -vmax
    return ax.imshow(panel, cmap=cmap, vmin=vmin, vmax=vmax, aspect="equal", origin="upper",
                     extent=(x[0], x[-1], z[-1], z[0]), interpolation="nearest")


def sections(ds: xr.Dataset, var: str, *, lead: str | None, max_panels: int, symmetric: bool,
              title: str, cmap: str = "gray"):
    """Panels of ``ds[var]`` on (x, z), x right and depth down, one per ``lead`` index (up to
    ``max_panels``, evenly picked); symmetric data share a ±98th-percentile scale."""
    import matplotlib.pyplot as plt
    import numpy as np

    da = ds[var]
    if "y" in da.dims:  # 3D: the (x, z) section at the centre y
        da = da.isel(y=da.sizes["y"] // 2)
        title = f"{title}, section at y = {float(da['y']):g} m"
    picks = [None]
    if lead is not None and lead in da.dims:
        n = da.sizes[lead]
        picks = list(np.unique(np.linspace(0, n - 1, min(n, max_panels)).round().astype(int)))
    panels = [(da if i is None else da.isel({lead: int(i)})).transpose("z", "x").values for i in picks]
    stack = np.stack(panels)
    if symmetric:
        vmax = float(np.percentile(np.abs(stack), 98)) or 1.0
        vmin, cmap = -vmax, ("seismic" if cmap == "gray" else cmap)
    else:
        vmin, vmax = float(np.percentile(stack, 1)), float(np.percentile(stack, 99))
    x, z = ds["x"].values, ds["z"].values
    width = 5.0 if len(picks) > 1 else 8.0
    fig, axes = plt.subplots(1, len(picks), figsize=(width * len(picks) + 1.0, row_height(x, z, width)),
                             squeeze=False, sharey=True)
    for ax, i, p in zip(axes[0], picks, panels, strict=True):
        im = section(ax, p, x, z, cmap=cmap, vmin=vmin, vmax=vmax)
        label = "" if i is None else f"{lead} {ds[lead].values[i]}"
        ax.set(xlabel="x (m)", title=label)
    axes[0][0].set_ylabel("depth z (m)")
    units = da.attrs.get("units", "")
    clip = f" (clipped at ±{vmax:.3g})" if symmetric else ""
    fig.colorbar(im, ax=axes[0].tolist(), label=f"{da.attrs.get('long_name', var)} [{units}]{clip}", shrink=0.9)
    fig.suptitle(title)
    return fig
