"""Plots of the seismic datasets: velocity models, geometries, shot records, SEG-Y imports, images and their
quality, LSRTM, summaries and model samples."""

from __future__ import annotations

import xarray as xr

from .plots import register, row_height, section, sections

__all__ = ["plot_velocity_model", "plot_geometry", "plot_shot_records", "plot_segy", "plot_image",
           "plot_image_quality", "plot_lsrtm", "plot_shot_images", "plot_summary", "plot_model_samples",
           "plot_pair_records"]


def _positions(ds: xr.Dataset, prefix: str, second: str = "z"):
    """(x, z) — or (x, ``second``) — positions in metres of the ``src``/``rec`` coordinates of a dataset,
    flattened."""
    import numpy as np

    if f"{prefix}_x" not in ds or f"{prefix}_{second}" not in ds:
        return None
    x, z = np.broadcast_arrays(ds[f"{prefix}_x"].values, ds[f"{prefix}_{second}"].values)
    return np.ravel(x), np.ravel(z)


@register("velocity_model")
def plot_velocity_model(ds: xr.Dataset, geometry: xr.Dataset | None = None):
    """P-wave velocity image (x right, depth down), with sources and receivers if a geometry
    (or coordinates ``src_x/src_z``, ``rec_x/rec_z`` on ``ds``) is given."""
    import matplotlib.pyplot as plt

    vp = ds["vp"]
    at = ""
    if "y" in vp.dims:
        vp = vp.isel(y=vp.sizes["y"] // 2)
        at = f"×{ds.sizes['y']}×{ds.sizes['z']} (x, y, z), section at y = {float(vp['y']):g} m"
    x, z = ds["x"].values, ds["z"].values
    aspect = (z[-1] - z[0]) / max(x[-1] - x[0], 1e-12)
    fig, ax = plt.subplots(figsize=(9, max(2.5, 9 * aspect) + 0.8))
    im = ax.imshow(vp.transpose("z", "x").values, cmap="viridis", origin="upper", aspect="equal",
                   extent=(x[0], x[-1], z[-1], z[0]))
    fig.colorbar(im, ax=ax, label=f"vp ({vp.attrs.get('units', 'm/s')})", shrink=0.9)
    src = geometry if geometry is not None else ds
    for prefix, style, label in (("rec", dict(marker="v", s=6, c="w"), "receivers"),
                                 ("src", dict(marker="*", s=90, c="r", edgecolors="k"), "sources")):
        pos = _positions(src, prefix)
        if pos is not None:
            ax.scatter(*pos, label=label, clip_on=False, zorder=3, **style)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="lower right", fontsize=8)
    ax.set(xlabel="x (m)", ylabel="depth z (m)", xlim=(x[0], x[-1]), ylim=(z[-1], z[0]),
           title=f"velocity model {vp.sizes['x']}{at or '×' + str(vp.sizes['z'])}, "
                 f"{float(vp.min()):.0f}–{float(vp.max()):.0f} m/s")
    fig.tight_layout()
    return fig


@register("geometry")
def plot_geometry(ds: xr.Dataset):
    """Acquisition geometry: source and receiver positions, and the source wavelet."""
    import matplotlib.pyplot as plt
    import numpy as np

    fig, (ax, axw) = plt.subplots(1, 2, figsize=(12, 3.6), gridspec_kw={"width_ratios": [2, 1]})
    rec, src = _positions(ds, "rec"), _positions(ds, "src")
    areal = all(f"{p}_y" in ds for p in ("src", "rec")) and float(np.ptp(ds["rec_y"].values)) > 0
    if areal:  # 3D, positions spread in y: a map view (x, y)
        rec, src = _positions(ds, "rec", "y"), _positions(ds, "src", "y")
    if rec is not None:
        ax.scatter(*rec, marker="v", s=8, c="C0", label=f"receivers ({ds.sizes.get('receiver', '?')})")
    if src is not None:
        ax.scatter(*src, marker="*", s=90, c="C3", edgecolors="k", label=f"sources ({ds.sizes.get('shot', '?')})")
    if areal:
        depths = ", ".join(f"{w} at z = {float(np.mean(ds[f'{p}_z'].values)):g} m"
                           for p, w in (("src", "sources"), ("rec", "receivers")))
        ax.set(xlabel="x (m)", ylabel="y (m)", aspect="equal",
               title=f"{ds.attrs.get('kind', '')} geometry, map view ({depths})")
    else:
        ax.invert_yaxis()
        ax.set(xlabel="x (m)", ylabel="depth z (m)", title=f"{ds.attrs.get('kind', '')} geometry")
    ax.legend(fontsize=8)
    if "wavelet" in ds:
        axw.plot(ds["time"].values, ds["wavelet"].values, color="k", lw=1)
    axw.set(xlabel="time (s)", title=f"source wavelet (f0 = {ds.attrs.get('f0', '?')} Hz, "
                                     f"dt = {ds.attrs.get('dt', float('nan')) * 1e3:.3g} ms)")
    fig.tight_layout()
    return fig


def _receiver_line(ds: xr.Dataset, shot: int):
    """Receivers (indices, by x) of shot ``shot`` on the line of constant y nearest its source: an areal
    (3D) spread shown as one line; every receiver (``slice(None)``) when the receivers do not spread in y."""
    import numpy as np

    if "rec_y" not in ds or "src_y" not in ds:
        return slice(None)
    ry = ds["rec_y"].isel(shot=shot) if "shot" in ds["rec_y"].dims else ds["rec_y"]
    ry = np.asarray(ry.values, dtype=float)
    if float(np.ptp(ry)) == 0:
        return slice(None)
    sy = float(np.asarray(ds["src_y"].values).reshape(-1)[shot]) if "shot" in ds["src_y"].dims else \
        float(ds["src_y"].values)
    line = np.flatnonzero(np.isclose(ry, ry[np.argmin(np.abs(ry - sy))]))
    rx = ds["rec_x"].isel(shot=shot) if "shot" in ds["rec_x"].dims else ds["rec_x"]
    return line[np.argsort(np.asarray(rx.values)[line], kind="stable")]


@register("shot_records")
def plot_shot_records(ds: xr.Dataset, max_shots: int = 4):
    """Up to ``max_shots`` shot gathers (evenly picked), greyscale clipped at the 98th percentile
    of |data| over the shown shots (shared colour scale); of an areal (3D) spread, the receiver line
    nearest each source's y."""
    import matplotlib.pyplot as plt
    import numpy as np

    data = ds["data"]
    n = data.sizes["shot"]
    picks = np.unique(np.linspace(0, n - 1, min(n, max_shots)).round().astype(int))
    lines = [_receiver_line(ds, int(i)) for i in picks]
    areal = not isinstance(lines[0], slice)
    gathers = [data.isel(shot=int(i)).transpose("receiver", "time").values[sel]
               for i, sel in zip(picks, lines, strict=True)]
    clip = float(np.percentile(np.abs(np.stack(gathers)), 98)) or 1.0
    t = ds["time"].values
    fig, axes = plt.subplots(1, len(picks), figsize=(3.2 * len(picks) + 0.8, 4.6), squeeze=False, sharey=True)
    # the receiver axis is the coordinate the spread runs along (x on the surface, z down a well)
    axis = max((d for d in ("x", "z") if f"rec_{d}" in ds), default=None,
               key=lambda d: float(np.ptp(np.asarray(ds[f"rec_{d}"].values))))
    for ax, i, g, sel in zip(axes[0], picks, gathers, lines, strict=True):
        if axis is None:
            rx = ds["receiver"].values
        else:
            coord = ds[f"rec_{axis}"]
            rx = (coord.isel(shot=int(i)) if "shot" in coord.dims else coord).values[sel]
        im = ax.imshow(g.T, cmap="gray", vmin=-clip, vmax=clip, aspect="auto",
                       extent=(rx[0], rx[-1], t[-1], t[0]), interpolation="nearest")
        shot_label = ds["shot"].values[i]
        src = f"src_{axis}" if axis else None
        where = f", {axis} = {float(ds[src].values[i]):g} m" if src in ds and "shot" in ds[src].dims else ""
        xlabel = f"receiver {axis} (m)" if axis else "receiver"
        if areal:
            ry = ds["rec_y"].isel(shot=int(i)) if "shot" in ds["rec_y"].dims else ds["rec_y"]
            where = f" at ({float(ds['src_x'].values[i]):g}, {float(ds['src_y'].values[i]):g}) m"
            xlabel = f"receiver x (m), line y = {float(ry.values[sel[0]]):g} m"
        ax.set(title=f"shot {shot_label}{where}", xlabel=xlabel)
    axes[0][0].set_ylabel("time (s)")
    fig.colorbar(im, ax=axes[0].tolist(), label=f"amplitude (clipped at ±{clip:.3g}, 98th pct)", shrink=0.9)
    snr = ds.attrs.get("noise_snr_db")
    fig.suptitle(f"shot records: {n} shots × {data.sizes['receiver']} receivers × {data.sizes['time']} samples"
                 + (f", noise SNR {snr:g} dB" if snr is not None else "")
                 + ("\n(areal: the receiver line nearest each source)" if areal else ""), y=1.04 if areal else None)
    return fig


@register("segy")
def plot_segy(ds: xr.Dataset, max_traces: int = 2000):
    """An imported SEG-Y file: the first ``max_traces`` traces side by side (greyscale, clipped at
    the 98th percentile of |amplitude|)."""
    import matplotlib.pyplot as plt
    import numpy as np

    n = ds.sizes["trace"]
    data = np.asarray(ds["data"].isel(trace=slice(0, max_traces)).values, dtype=np.float64)
    clip = float(np.percentile(np.abs(data), 98)) or 1.0
    t = ds["time"].values
    fig, ax = plt.subplots(figsize=(10, 4.8))
    im = ax.imshow(data.T, cmap="gray", vmin=-clip, vmax=clip, aspect="auto", interpolation="nearest",
                   extent=(-0.5, data.shape[0] - 0.5, t[-1], t[0]))
    fig.colorbar(im, ax=ax, label=f"amplitude (clipped at ±{clip:.3g}, 98th pct)")
    shown = f"first {data.shape[0]} of {n}" if n > data.shape[0] else f"{n}"
    ax.set(xlabel="trace", ylabel="time (s)",
           title=f"SEG-Y: {shown} traces × {ds.sizes['time']} samples ({ds.attrs.get('segy_format', '?')}, "
                 f"{ds.attrs.get('segy_endian', '?')}-endian)")
    fig.tight_layout()
    return fig


@register("image")
def plot_image(ds: xr.Dataset):
    """Stacked migrated image, red/blue symmetric scale."""
    extra = ", illumination-compensated" if ds.attrs.get("normalized") else ""
    cond = f" ({ds.attrs['condition']})" if "condition" in ds.attrs else ""
    return sections(ds, "image", lead=None, max_panels=1, symmetric=True,
                     title=f"stacked RTM image{cond} of {ds.attrs.get('n_shots', '?')} shots{extra}")


@register("image_quality")
def plot_image_quality(ds: xr.Dataset):
    """The stacked images of each imaging condition side by side (own scale each, its low-wavenumber share in
    the title), then the envelopes along the first trace looked at with the true interfaces."""
    import matplotlib.pyplot as plt
    import numpy as np
    from scipy.signal import hilbert

    conds = [str(c) for c in ds["condition"].values]
    img = ds["image"]
    if "y" in img.dims:
        img = img.sel(y=float(ds.attrs.get("trace_y", img["y"].values[img.sizes["y"] // 2])), method="nearest")
    x, z = ds["x"].values, ds["z"].values
    fig, axes = plt.subplots(1, len(conds) + 1, figsize=(4.5 * (len(conds) + 1), row_height(x, z, 4.5)),
                             squeeze=False)
    axes = axes[0]
    tx = float(ds["trace_x"].values[0])
    for ax, c in zip(axes, conds, strict=False):
        section(ax, img.sel(condition=c).transpose("z", "x").values, x, z)
        ax.axvline(tx, color="k", lw=0.6, ls=":")
        share = float(ds["low_wavenumber_share"].sel(condition=c))
        ax.set(xlabel="x (m)", title=f"{c}: {100 * share:.1f} % below k_low")
    axes[0].set_ylabel("depth z (m)")
    ax = axes[-1]
    for c in conds:
        tr = img.sel(condition=c).sel(x=tx, method="nearest").values.astype(float)
        env = np.abs(hilbert(tr))
        ax.plot(env / (env.max() or 1.0), z, label=c)
    if "interface_depth" in ds:
        for d in ds["interface_depth"].values[0]:
            if np.isfinite(d):
                ax.axhline(d, color="k", lw=0.8, ls="--")
    ax.set(ylim=(z[-1], z[0]), xlabel="envelope / max", title=f"x = {tx:g} m (dashed: true interfaces)")
    ax.legend(fontsize=8)
    fig.suptitle(f"imaging conditions (k_low = {float(ds['k_low']) * 1000:.2f} cycles/km: 2 x "
                 f"{float(ds['f_low']):.2f} Hz / {float(ds['v_max']):.0f} m/s)")
    fig.tight_layout()
    return fig


@register("lsrtm")
def plot_lsrtm(ds: xr.Dataset):
    """LSRTM: the relative data residual per iteration, and the image after the first and the last."""
    import matplotlib.pyplot as plt

    it = ds["iteration"].values
    img = ds["image"]
    if "y" in img.dims:
        img = img.isel(y=img.sizes["y"] // 2)
    x, z = ds["x"].values, ds["z"].values
    picks = sorted({min(1, len(it) - 1), len(it) - 1})
    fig, axes = plt.subplots(1, len(picks) + 1, figsize=(4.5 * (len(picks) + 1), row_height(x, z, 4.5)),
                             squeeze=False)
    axes = axes[0]
    axes[0].semilogy(it, ds["relative_residual"].values, "o-")
    axes[0].set(xlabel="iteration", ylabel="||r|| / ||r0||", title="data residual")
    for ax, i in zip(axes[1:], picks, strict=True):
        section(ax, img.isel(iteration=i).transpose("z", "x").values, x, z)
        ax.set(xlabel="x (m)", ylabel="depth z (m)", title=f"image after iteration {int(it[i])}")
    fig.suptitle("least-squares RTM (preconditioned CGLS)")
    fig.tight_layout()
    return fig


@register("shot_images")
def plot_shot_images(ds: xr.Dataset):
    """A few per-shot RTM images (before stacking)."""
    return sections(ds, "image", lead="shot", max_panels=3, symmetric=True,
                     title=f"per-shot RTM images ({ds.sizes['shot']} shots)")


@register("summary")
def plot_summary(ds: xr.Dataset):
    """A few samples of a summary statistic (FWI gradient or RTM image per sample)."""
    var = "gradient" if "gradient" in ds else "image"
    if "x" not in ds[var].dims:  # a vector per sample (aspire_location, aspire_stylized)
        return _vector_summary(ds, var)
    return sections(ds, var, lead="sample", max_panels=3, symmetric=True,
                     title=f"summary statistic '{var}' ({ds.sizes['sample']} samples)")


def _vector_summary(ds: xr.Dataset, var: str):
    """A summary statistic that is a vector per sample: the spread of each component over the samples."""
    import matplotlib.pyplot as plt

    da = ds[var].transpose("sample", ...)
    values = da.values.reshape(da.sizes["sample"], -1)
    dims = [d for d in da.dims if d != "sample"]
    labels = ([str(v) for v in da[dims[0]].values] if len(dims) == 1 and dims[0] in da.coords
              else [str(i) for i in range(values.shape[1])])
    fig, ax = plt.subplots(figsize=(max(4.0, 0.6 * values.shape[1] + 2), 3.5))
    ax.boxplot(values, tick_labels=labels)
    ax.axhline(0.0, color="0.7", lw=0.8, zorder=0)
    ax.set(xlabel=" × ".join(dims) or "component", ylabel=var,
           title=f"summary statistic '{var}': {values.shape[1]} components over {da.sizes['sample']} samples")
    fig.tight_layout()
    return fig


@register("model_samples")
def plot_model_samples(ds: xr.Dataset):
    """A few sampled velocity models (or estimates)."""
    return sections(ds, "vp", lead="sample", max_panels=3, symmetric=False, cmap="viridis",
                     title=f"velocity model samples ({ds.sizes['sample']})")


@register("pair_records")
def plot_pair_records(ds: xr.Dataset):
    """Shot records of the first sample of a batch of (model, data) pairs."""
    fig = plot_shot_records(ds.isel(sample=0))
    fig.suptitle(f"sample {ds['sample'].values[0]} of {ds.sizes['sample']}: " + fig._suptitle.get_text())
    return fig
