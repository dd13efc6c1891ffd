"""Image quality of a stacked migrated image: how much of its energy lies below the seismic band,
and whether its strongest events sit at the true model's interfaces.

* :func:`low_wavenumber_share` — zero the image above the mute depth + 2 grid points, take the real
  FFT along z of every trace (no padding, no taper), sum ``|FFT|²`` over the other axes, and return the
  share of that energy in the bins below ``k_low = 2 f_low / v_max`` cycles per metre, ``f_low`` being
  where the wavelet's amplitude spectrum is 15 dB below its peak (:func:`low_frequency`). A flat reflector
  imaged at normal incidence by frequencies above f_low at velocities up to v_max has vertical wavenumbers
  above ``k_low``; energy below it is mostly the low-wavenumber artifact of cross-correlation imaging
  (back-scattered and diving energy), though wide-angle and dipping reflections (k_z = 2 f cos θ / v) put some
  there too. The sums are the one-sided spectrum's bins as they are (DC counted once, like every other bin),
  the issue's definition of the measure; the cut at the mute depth + 2 points, inside a tapered mute, leaks a
  little into the low bins.
* :func:`envelope_peaks` — the peaks of the Hilbert envelope along z of a trace, strongest first.
* :func:`image_quality` — both for an image, with the true interfaces (where the true model's
  velocity jumps along each trace) at ¼ and ¾ of the width when the true model is known.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from strata_errors import InputError

__all__ = ["compare_images", "envelope_peaks", "image_quality", "interfaces", "low_frequency", "low_wavenumber_share",
           "trace_positions"]

BELOW_PEAK_DB = 15.0
JUMP = 0.01  # a relative velocity jump between neighbouring depths that makes an interface


def low_frequency(wavelet: np.ndarray, dt: float, below_db: float = BELOW_PEAK_DB) -> float:
    """The frequency (Hz) below the peak of ``wavelet``'s amplitude spectrum where it has fallen
    ``below_db`` dB (linear interpolation between the bins; the spectrum zero-padded to 8192 samples
    so that short wavelets are resolved)."""
    w = np.asarray(wavelet, dtype=np.float64)
    n = max(8192, w.size)
    amp = np.abs(np.fft.rfft(w, n))
    freqs = np.fft.rfftfreq(n, dt)
    peak = int(np.argmax(amp))
    level = amp[peak] * 10.0 ** (-below_db / 20.0)
    below = np.flatnonzero(amp[:peak + 1] < level)
    if below.size == 0:
        return 0.0
    i = int(below[-1])
    a0, a1 = amp[i], amp[i + 1]
    return float(freqs[i] + (level - a0) / (a1 - a0) * (freqs[i + 1] - freqs[i]))


def _spacing(da: xr.DataArray, dim: str) -> float:
    values = np.asarray(da[dim].values, dtype=np.float64)
    if values.size < 2:
        raise InputError(f"the image needs at least 2 points along {dim}")
    return float(values[1] - values[0])


def low_wavenumber_share(image: xr.DataArray, *, mute_depth: float | None, k_low: float) -> float:
    """Share (0..1) of the image's energy below ``k_low`` cycles/m along z, the image zeroed above
    ``mute_depth + 2`` grid points first (the module's measure)."""
    if "z" not in image.dims:
        raise InputError(f"the image has no z dimension (dims {image.dims})")
    dz = _spacing(image, "z")
    z = image["z"].values
    data = np.moveaxis(np.asarray(image.values, dtype=np.float64), image.dims.index("z"), -1).copy()
    if mute_depth is not None:
        data[..., z < mute_depth + 2 * dz] = 0.0
    power = np.abs(np.fft.rfft(data, axis=-1)) ** 2
    spectrum = power.reshape(-1, power.shape[-1]).sum(axis=0)
    k = np.fft.rfftfreq(data.shape[-1], dz)
    total = float(spectrum.sum())
    return float(spectrum[k < k_low].sum() / total) if total > 0 else float("nan")


def envelope_peaks(trace: np.ndarray, z: np.ndarray, *, below: float | None = None,
                   count: int = 6) -> tuple[np.ndarray, np.ndarray]:
    """Depths and heights of the ``count`` highest local maxima of the Hilbert envelope of ``trace``
    along ``z`` (strongest first), only those at or below ``below`` m."""
    from scipy.signal import find_peaks, hilbert

    env = np.abs(hilbert(np.asarray(trace, dtype=np.float64)))
    idx, _ = find_peaks(np.concatenate([[0.0], env, [0.0]]))  # a maximum at either end counts
    idx = idx - 1
    if below is not None:
        idx = idx[np.asarray(z)[idx] >= below]
    order = idx[np.argsort(env[idx])[::-1]][:count]
    return np.asarray(z, dtype=np.float64)[order], env[order]


def interfaces(vp: np.ndarray, z: np.ndarray, jump: float = JUMP) -> np.ndarray:
    """Depths (m) where ``vp`` along ``z`` jumps by more than ``jump`` (relative) between neighbours: the
    first depth of the new layer (a study's ``depths`` on its grid)."""
    vp = np.asarray(vp, dtype=np.float64)
    rel = np.abs(np.diff(vp)) / np.minimum(vp[:-1], vp[1:])
    i = np.flatnonzero(rel > jump)
    return np.asarray(z, dtype=np.float64)[i + 1]


def trace_positions(image: xr.DataArray) -> dict[str, float]:
    """The coordinates of the traces looked at: x at ¼ and ¾ of the width (3-D: at the centre y)."""
    x = image["x"].values
    out = {"x": [float(x[0] + f * (x[-1] - x[0])) for f in (0.25, 0.75)]}
    if "y" in image.dims:
        y = image["y"].values
        out["y"] = float(0.5 * (y[0] + y[-1]))
    return out


def _trace(da: xr.DataArray, x: float, y: float | None) -> xr.DataArray:
    at = {"x": x} if y is None else {"x": x, "y": y}
    return da.sel(at, method="nearest")


def image_quality(image_ds: xr.Dataset, background_ds: xr.Dataset, geometry_ds: xr.Dataset,
                  true_model_ds: xr.Dataset | None = None, *, mute_depth: float | None = None,
                  peaks: int = 6) -> xr.Dataset:
    """The quality measures of ``image_ds``'s ``image``: ``low_wavenumber_share`` (with ``k_low``,
    ``f_low``, ``v_max`` of the migration background ``background_ds``, and the wavelet of
    ``geometry_ds``), and along the traces of :func:`trace_positions` the envelope peaks
    ``peak_depth``/``peak_height`` (trace, peak; strongest first, NaN-padded) below the mute, and the
    true model's ``interface_depth`` (trace, interface; NaN-padded) when ``true_model_ds`` is given."""
    image = image_ds["image"]
    mute = mute_depth if mute_depth is not None else image_ds.attrs.get("mute_depth")
    mute = None if mute is None else float(mute)
    f_low = low_frequency(geometry_ds["wavelet"].values, float(geometry_ds.attrs["dt"]))
    v_max = float(background_ds["vp"].max())
    k_low = 2.0 * f_low / v_max
    share = low_wavenumber_share(image, mute_depth=mute, k_low=k_low)

    at = trace_positions(image)
    y = at.get("y")
    z = image["z"].values
    depths = np.full((2, peaks), np.nan)
    heights = np.full((2, peaks), np.nan)
    found: list[np.ndarray] = []
    for t, x in enumerate(at["x"]):
        d, h = envelope_peaks(_trace(image, x, y).values, z, below=mute, count=peaks)
        depths[t, :d.size], heights[t, :h.size] = d, h
        if true_model_ds is not None:  # those the image can show: below the mute
            faces = interfaces(_trace(true_model_ds["vp"], x, y).values, true_model_ds["z"].values)
            found.append(faces if mute is None else faces[faces >= mute])
    out = xr.Dataset(
        {"low_wavenumber_share": ((), share, {"long_name": "share of the image energy below k_low", "units": "1"}),
         "k_low": ((), k_low, {"long_name": "2 f_low / v_max", "units": "1/m"}),
         "f_low": ((), f_low, {"long_name": f"frequency {BELOW_PEAK_DB:g} dB below the wavelet's peak",
                               "units": "Hz"}),
         "v_max": ((), v_max, {"long_name": "largest background velocity", "units": "m/s"}),
         "peak_depth": (("trace", "peak"), depths, {"long_name": "envelope peak depth, strongest first",
                                                    "units": "m", "nan_meaning": "fewer peaks"}),
         "peak_height": (("trace", "peak"), heights, {"long_name": "envelope peak height", "units": "1",
                                                      "nan_meaning": "fewer peaks"})},
        coords={"trace_x": ("trace", np.asarray(at["x"]), {"units": "m"})},
        attrs={"mute_depth": mute if mute is not None else "none", **({"trace_y": y} if y is not None else {})})
    if true_model_ds is not None:
        n = max((f.size for f in found), default=0)
        table = np.full((2, max(n, 1)), np.nan)
        for t, f in enumerate(found):
            table[t, :f.size] = f
        out["interface_depth"] = (("trace", "interface"), table, {"long_name": "true interface depth", "units": "m",
                                                                  "nan_meaning": "fewer interfaces"})
    return out


def compare_images(background_ds: xr.Dataset, geometry_ds: xr.Dataset, true_model_ds: xr.Dataset,
                   *image_dss: xr.Dataset, conditions: list[str], mute_depth: float | None = None) -> xr.Dataset:
    """The stacked images of several imaging conditions side by side, ``image`` (condition, *dims),
    with :func:`image_quality` of each over ``condition``: ``low_wavenumber_share`` (condition),
    ``peak_depth``/``peak_height`` (condition, trace, peak), and the shared ``k_low``, ``f_low``,
    ``v_max`` and true ``interface_depth`` (trace, interface). The first condition is the study's own."""
    if len(image_dss) != len(conditions) or not conditions:
        raise InputError(f"{len(image_dss)} images for the conditions {conditions}")
    each = [image_quality(ds, background_ds, geometry_ds, true_model_ds, mute_depth=mute_depth) for ds in image_dss]
    per = ["low_wavenumber_share", "peak_depth", "peak_height"]
    out = xr.concat([q[per] for q in each], dim="condition", coords="minimal", compat="override")
    out = out.assign_coords(condition=("condition", list(conditions)))
    out["image"] = xr.concat([ds["image"] for ds in image_dss], dim="condition").assign_coords(
        condition=("condition", list(conditions))).astype(np.float32)
    for name in ("k_low", "f_low", "v_max", "interface_depth"):
        if name in each[0]:
            out[name] = each[0][name]
    out.attrs.update(each[0].attrs)
    return out
