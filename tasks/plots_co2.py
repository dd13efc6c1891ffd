"""Plots of the CO2 datasets: permeability samples, plumes over time, simulator vs FNO, forecast errors."""

from __future__ import annotations

import json

import numpy as np
import xarray as xr

from .plots import register

__all__ = ["plot_rock_samples", "plot_co2_simulation", "plot_co2_forecast", "plot_forecast_metrics",
           "plot_coupled_inversion"]


def _extent(ds: xr.Dataset) -> tuple[float, float, float, float]:
    x, z = ds["x"].values, ds["z"].values
    hx, hz = (x[1] - x[0]) / 2 if x.size > 1 else 0.5, (z[1] - z[0]) / 2 if z.size > 1 else 0.5
    return (x[0] - hx, x[-1] + hx, z[-1] + hz, z[0] - hz)


def _show(fig, ax, da: xr.DataArray, ds: xr.Dataset, title: str, **kw) -> None:
    im = ax.imshow(da.transpose("z", "x").values, extent=_extent(ds), aspect="equal", interpolation="nearest", **kw)
    ax.set(title=title, xlabel="x (m)", ylabel="depth z (m)")
    fig.colorbar(im, ax=ax, shrink=0.8)


def _wells(ax, ds: xr.Dataset) -> None:
    for w in json.loads(ds.attrs.get("wells", "[]")) if isinstance(ds.attrs.get("wells"), str) else []:
        inj = (w.get("rate") or 0) > 0
        ax.plot(w["x"], w["z"], "v" if inj else "^", color="w" if inj else "k", mec="k", ms=7)


def _log_norm(*arrays: xr.DataArray):
    """A log colour scale spanning ``arrays`` (never empty: a constant field gets 1 % of range)."""
    from matplotlib.colors import LogNorm

    lo, hi = min(float(a.min()) for a in arrays), max(float(a.max()) for a in arrays)
    return LogNorm(lo, max(hi, lo * 1.01))


def _times(ds: xr.Dataset, n: int) -> list[int]:
    return list(np.unique(np.linspace(0, ds.sizes["time"] - 1, min(n, ds.sizes["time"])).round().astype(int)))


@register("rock_samples")
def plot_rock_samples(ds: xr.Dataset):
    """Permeability (log scale) of up to four samples, and one porosity field."""
    import matplotlib.pyplot as plt

    samples = ds["sample"].values[:4]
    fig, axes = plt.subplots(1, len(samples) + 1, figsize=(4.2 * (len(samples) + 1), 3.8), squeeze=False)
    k = ds["permeability"]
    norm = _log_norm(k)
    for ax, s in zip(axes[0], samples, strict=False):
        _show(fig, ax, k.sel(sample=s), ds, f"sample {s}: permeability (mD)", cmap="viridis", norm=norm)
    _show(fig, axes[0][-1], ds["porosity"].sel(sample=samples[0]), ds, f"sample {samples[0]}: porosity",
          cmap="cividis")
    fig.tight_layout()
    return fig


@register("co2_simulation")
def plot_co2_simulation(ds: xr.Dataset):
    """One sample's permeability and its plume (CO2 saturation) at several report times; wells marked."""
    import matplotlib.pyplot as plt

    s = ds["sample"].values[0]
    one = ds.sel(sample=s)
    picks = _times(ds, 4)
    fig, axes = plt.subplots(1, len(picks) + 1, figsize=(4.2 * (len(picks) + 1), 3.8), squeeze=False)
    k = one["permeability"]
    _show(fig, axes[0][0], k, ds, f"sample {s}: permeability (mD)", cmap="viridis", norm=_log_norm(k))
    for ax, i in zip(axes[0][1:], picks, strict=True):
        _show(fig, ax, one["saturation"].isel(time=i), ds, f"saturation, day {float(ds['time'].values[i]):g}",
              cmap="magma", vmin=0, vmax=1)
    for ax in axes[0]:
        _wells(ax, ds)
    fig.suptitle(f"two-phase flow simulation ({ds.sizes['sample']} samples)")
    fig.tight_layout()
    return fig


@register("co2_forecast")
def plot_co2_forecast(ds: xr.Dataset):
    """Simulator vs FNO side by side and their difference, at several report times, for one held-out case."""
    import matplotlib.pyplot as plt

    s = ds["sample"].values[0]
    one = ds.sel(sample=s)
    picks = _times(ds, 4)
    emax = float(np.abs(one["error"]).max()) or 1.0
    fig, axes = plt.subplots(3, len(picks), figsize=(4.2 * len(picks), 10.5), squeeze=False)
    for col, i in enumerate(picks):
        day = f"day {float(ds['time'].values[i]):g}"
        _show(fig, axes[0][col], one["simulated"].isel(time=i), ds, f"simulator, {day}", cmap="magma", vmin=0, vmax=1)
        _show(fig, axes[1][col], one["saturation"].isel(time=i), ds, f"FNO, {day}", cmap="magma", vmin=0, vmax=1)
        rel = float(one["relative_l2"].isel(time=i))
        _show(fig, axes[2][col], one["error"].isel(time=i), ds, f"FNO − simulator (rel. L2 {rel:.3f})",
              cmap="seismic", vmin=-emax, vmax=emax)
    fig.suptitle(f"held-out case {s}: plume forecasts ({ds.sizes['sample']} cases in the dataset)")
    fig.tight_layout()
    return fig


@register("forecast_metrics")
def plot_forecast_metrics(ds: xr.Dataset):
    """Held-out relative L2 error of the forecasts per report time (mean ± 2 SE)."""
    import matplotlib.pyplot as plt

    t = ds["time"].values
    m, se = ds["relative_l2"].values, ds["relative_l2_se"].values
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.errorbar(t, m, yerr=2 * se, marker="o", capsize=3)
    ax.set(xlabel="time (days)", ylabel="relative L2 error", ylim=(0, None),
           title=f"FNO forecast error, {ds.attrs.get('samples', '?')} held-out cases "
                 f"(all times: {ds.attrs.get('relative_l2', float('nan')):.3f})")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


@register("coupled_inversion")
def plot_coupled_inversion(ds: xr.Dataset):
    """True, starting and inverted permeability, observed vs FNO saturation at the last iteration, misfit curve."""
    import matplotlib.pyplot as plt

    k = ds["permeability"]
    norm = _log_norm(k, ds["true_permeability"])
    fig, axes = plt.subplots(2, 3, figsize=(14, 8.5))
    last = int(ds["iteration"].values[-1])
    _show(fig, axes[0][0], ds["true_permeability"], ds, "true permeability (mD)", cmap="viridis", norm=norm)
    _show(fig, axes[0][1], k.isel(iteration=0), ds, "starting model (mD)", cmap="viridis", norm=norm)
    _show(fig, axes[0][2], k.isel(iteration=-1), ds, f"inverted, iteration {last} (mD)", cmap="viridis", norm=norm)
    _show(fig, axes[1][0], ds["observed_saturation"], ds, "simulated saturation (truth)", cmap="magma", vmin=0, vmax=1)
    _show(fig, axes[1][1], ds["saturation"].isel(iteration=-1), ds, f"FNO saturation, iteration {last}", cmap="magma",
          vmin=0, vmax=1)
    ax = axes[1][2]
    m = ds["misfit"].values
    ax.semilogy(ds["iteration"].values, m / m[0], "o-", label="data misfit / initial")
    ax.plot(ds["iteration"].values, ds["log_error"].values / ds["log_error"].values[0], "s--",
            label="RMS ln k error / initial")
    ax.set(xlabel="iteration", title="coupled inversion")
    ax.grid(alpha=0.3, which="both")
    ax.legend()
    fig.suptitle(f"coupled inversion of held-out case {ds.attrs.get('sample', '?')} (report {ds.attrs.get('report')})")
    fig.tight_layout()
    return fig
