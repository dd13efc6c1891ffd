"""Dataset → matplotlib figure, chosen by the dataset's kind (pure: no I/O, no catalog)."""

from __future__ import annotations

from collections.abc import Callable

import xarray as xr

__all__ = ["plot_dataset", "register", "sections", "PLOTTERS"]

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


@register("mad_curves")
def plot_mad_curves(ds: xr.Dataset):
    """MAD summary (``summarize`` output): W2, variance and mean error vs generation per loop; the ``mad``
    study's curves (precision, recall, Fréchet distance) by :func:`tasks.plots_mad.curves`."""
    import matplotlib.pyplot as plt
    import numpy as np

    if "fid" in ds:
        return _mad.curves(ds)

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
    """One MAD generation: histograms over chains of trace(Σ̂)/d and of W2 to the truth; the ``mad``
    study's generations (samples, metrics) by :func:`tasks.plots_mad.generation`."""
    import matplotlib.pyplot as plt
    import numpy as np

    if "samples" in ds:
        return _mad.generation(ds)

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


def _row_height(x, z, width: float) -> float:
    """Height (inches) of a row of (x, z) panels ``width`` inches wide: depth to scale, at least 2.2."""
    return max(2.2, width * (z[-1] - z[0]) / max(x[-1] - x[0], 1e-12)) + 0.9


def _section(ax, panel, x, z, *, cmap: str = "seismic", vmin: float | None = None, vmax: float | None = None):
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
    fig, axes = plt.subplots(1, len(picks), figsize=(width * len(picks) + 1.0, _row_height(x, z, width)),
                             squeeze=False, sharey=True)
    for ax, i, p in zip(axes[0], picks, panels, strict=True):
        im = _section(ax, p, x, z, cmap=cmap, vmin=vmin, vmax=vmax)
        label = "" if i is None else f"{lead} {ds[lead].values[i]}"
        ax.set(xlabel="x (m)", title=label)
    axes[0][0].set_ylabel("depth z (m)")
    units = da.attrs.get("units", "")
    clip = f" (clipped at ±{vmax:.3g})" if symmetric else ""
    fig.colorbar(im, ax=axes[0].tolist(), label=f"{da.attrs.get('long_name', var)} [{units}]{clip}", shrink=0.9)
    fig.suptitle(title)
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
    fig, axes = plt.subplots(1, len(conds) + 1, figsize=(4.5 * (len(conds) + 1), _row_height(x, z, 4.5)),
                             squeeze=False)
    axes = axes[0]
    tx = float(ds["trace_x"].values[0])
    for ax, c in zip(axes, conds, strict=False):
        _section(ax, img.sel(condition=c).transpose("z", "x").values, x, z)
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
    fig, axes = plt.subplots(1, len(picks) + 1, figsize=(4.5 * (len(picks) + 1), _row_height(x, z, 4.5)),
                             squeeze=False)
    axes = axes[0]
    axes[0].semilogy(it, ds["relative_residual"].values, "o-")
    axes[0].set(xlabel="iteration", ylabel="||r|| / ||r0||", title="data residual")
    for ax, i in zip(axes[1:], picks, strict=True):
        _section(ax, img.isel(iteration=i).transpose("z", "x").values, x, z)
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
    return sections(ds, var, lead="sample", max_panels=3, symmetric=True,
                     title=f"summary statistic '{var}' ({ds.sizes['sample']} samples)")


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


@register("checkpoint")
def plot_checkpoint(ds: xr.Dataset):
    """Training curve of a trained network: loss per epoch of each split in its history (log scale
    when every loss is positive), the best validation epoch marked."""
    import matplotlib.pyplot as plt
    import numpy as np

    from tasks.nn.layout import CLASS_ATTR, HISTORY_ATTR, parameter_summary

    history = {str(k): np.asarray(v, dtype=float) for k, v in dict(ds.attrs.get(HISTORY_ATTR) or {}).items()}
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for i, (split, loss) in enumerate(history.items()):
        ax.plot(np.arange(1, loss.size + 1), loss, "-o", ms=3, color=f"C{i}", label=split)
    val = history.get("validation")
    if val is not None and val.size:
        best = int(np.argmin(val))
        ax.axvline(best + 1, color="k", ls=":", lw=1, label=f"best validation (epoch {best + 1})")
    if history and all((v > 0).all() for v in history.values() if v.size):
        ax.set_yscale("log")
    n = parameter_summary(ds)["count"]
    ax.set(xlabel="epoch", ylabel="loss", title=f"training of {ds.attrs.get(CLASS_ATTR, '?')} ({n:,} parameters)")
    if history:
        ax.legend(fontsize=8)
    else:
        ax.text(0.5, 0.5, "no training history", ha="center", transform=ax.transAxes)
    ax.grid(alpha=0.3, which="both")
    fig.tight_layout()
    return fig


from . import plots_aspire as _aspire  # noqa: E402,F401 - registers the ASPIRE plotters
from . import plots_claims as _claims  # noqa: E402,F401 - registers the claims table
from . import plots_co2 as _co2  # noqa: E402,F401 - registers the CO2 plotters
from . import plots_mad as _mad  # noqa: E402 - the mad study's curves and generations
