"""Reverse-time migration as map then reduce: per-shot images, then a stacked image.

:func:`migrate_shot` images every shot of a (sliced) survey into ``image`` (shot, x, z) with the
source illumination beside it; :func:`stack_images` sums them into ``image`` (x, z), optionally
divided by the summed illumination and muted above a depth. The per-shot image is
``J^T (d - F(m0))`` in the background ``m0`` (``condition="born"``; the negative FWI gradient of
``1/2 ||F(m) - d||^2`` w.r.t. ``m = 1/vp**2``) or the zero-lag cross-correlation ``sum_t u v``.
Subtracting the modelled background data removes the direct wave for free (it is recorded by
the same forward run); :func:`direct_wave_mute` is the data-domain alternative.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

import numpy as np
import xarray as xr

from strata_errors import InputError
from tasks.seismic.born import backpropagate, collect_if_large, forward_snapshots, snapshot_factor
from tasks.seismic.geometry import shot_positions
from tasks.seismic.model import Model
from tasks.seismic.solver import shared_model
from tasks.seismic.wavelet import max_frequency

__all__ = ["direct_wave_mute", "migrate_shot", "mute_shallow", "mute_weights", "offset_weights", "resolve_factor",
           "shot_traces", "stack_images", "with_shot_dim"]


def resolve_factor(geometry: xr.Dataset, factor: int | None) -> int:
    """``factor``, or (None) the snapshot interval at the Nyquist rate of the geometry's f_max."""
    if factor is not None:
        return int(factor)
    dt = float(geometry.attrs["dt"])
    f_max = geometry.attrs.get("f_max") or max_frequency(geometry.wavelet.values, dt)
    return snapshot_factor(float(f_max), dt)


def with_shot_dim(ds: xr.Dataset) -> xr.Dataset:
    """``ds`` with a ``shot`` dimension (restored if it was selected away, e.g. ``isel(shot=0)``)."""
    if "shot" in ds.dims or "shot" not in ds.coords:
        return ds
    per_shot = [n for n in ds.variables if str(n).startswith(("src_", "rec_")) or n == "data"]
    out = ds.drop_vars(["shot", *per_shot]).assign_coords(shot=("shot", [int(ds["shot"])]))
    for n in per_shot:
        v = ds[n].variable
        var = xr.Variable(("shot", *v.dims), np.asarray(v.values)[None], v.attrs)
        out = out.assign_coords({n: var}) if n in ds.coords else out.assign({n: var})
    return out


def shot_traces(geometry: xr.Dataset, records: xr.Dataset,
                dims: tuple[str, ...]) -> Iterator[tuple[int, np.ndarray, np.ndarray, np.ndarray]]:
    """``(shot label, source (1, dim), receivers (receiver, dim), data (time, receiver))`` for
    every shot present in ``records``, its positions found in ``geometry`` by shot label."""
    geometry, records = with_shot_dim(geometry), with_shot_dim(records)
    labels = [int(s) for s in np.atleast_1d(geometry["shot"].values)]
    nt = geometry.sizes["time"]
    data = records["data"].transpose("shot", "receiver", "time")
    for k, label in enumerate(int(s) for s in np.atleast_1d(records["shot"].values)):
        if label not in labels:
            raise InputError(f"shot {label} of the records is not in the geometry "
                             f"(shots {labels[0]}..{labels[-1]})")
        src, rec = shot_positions(geometry, labels.index(label), dims)
        traces = np.asarray(data.values[k], dtype=np.float64).T
        if traces.shape != (nt, len(rec)):
            raise InputError(f"shot {label} has data of shape (time, receiver) = "
                             f"{traces.shape}, the geometry expects {(nt, len(rec))}")
        yield label, src, rec, traces


def direct_wave_mute(data: np.ndarray, src: np.ndarray, rec: np.ndarray, times: np.ndarray,
                     velocity: float, delay: float, taper: float = 0.0) -> np.ndarray:
    """Zero ``data`` (time, receiver) before ``offset / velocity + delay`` s, with a cosine
    taper of ``taper`` s after it (``delay`` ≈ the wavelet's length, e.g. 1.5/f0 for a Ricker)."""
    offset = np.linalg.norm(np.asarray(rec) - np.asarray(src).reshape(1, -1), axis=1)
    start = offset / velocity + delay                       # (receiver,)
    return data * _ramp(np.asarray(times)[:, None] - start[None, :], taper)


def _ramp(past: np.ndarray, taper: float) -> np.ndarray:
    """0 where ``past < 0``, 1 from ``past >= taper``, ``sin²(π/2 · past / taper)`` between (a hard step
    at 0 when ``taper <= 0``): every mute of this module."""
    past = np.asarray(past, dtype=np.float64)
    if taper <= 0:
        return (past >= 0).astype(np.float64)
    return np.sin(0.5 * np.pi * np.clip(past / taper, 0.0, 1.0)) ** 2


def offset_weights(src: np.ndarray, rec: np.ndarray, max_offset: float | None,
                   taper: float = 0.0) -> np.ndarray:
    """Weights (receiver,) of an offset mute: 1 up to ``max_offset - taper`` m from the source, a
    cosine ramp to 0 at ``max_offset`` m, 0 beyond (None: all ones). Far offsets past the critical
    angle of a shallow interface record head waves and wide-angle reflections, which migrate as a comb
    of artifacts above it."""
    offset = np.linalg.norm(np.asarray(rec) - np.asarray(src).reshape(1, -1), axis=1)
    if max_offset is None:
        return np.ones_like(offset)
    return _ramp(max_offset - offset, taper)


def mute_weights(z: np.ndarray, depth: float, taper: float = 0.0) -> np.ndarray:
    """Weights (len(z),) of a top mute: 0 above ``depth`` m, 1 below ``depth + taper`` m and a
    cosine ramp ``sin²(π/2 · (z − depth) / taper)`` between them (``taper = 0``: a hard edge)."""
    return _ramp(np.asarray(z, dtype=np.float64) - depth, taper)


def mute_shallow(image: xr.DataArray, depth: float, taper: float = 0.0) -> xr.DataArray:
    """``image`` zero above ``depth`` m, tapered to full weight at ``depth + taper`` m
    (:func:`mute_weights`)."""
    w = xr.DataArray(mute_weights(image["z"].values, depth, taper), dims=("z",),
                     coords={"z": image["z"]})
    return image * w


def _image(model: Model, src: np.ndarray, rec: np.ndarray, data: np.ndarray, wavelet, dt: float,
           factor: int, condition: str, subtract_background: bool, offsets: tuple[float | None, float],
           threads: int | None) -> tuple[np.ndarray, np.ndarray]:
    state = forward_snapshots(model, src, wavelet, rec, dt, factor=factor, condition=condition,
                              threads=threads)
    residual = data - state.traces if subtract_background else data
    if offsets[0] is not None:
        residual = residual * offset_weights(src, rec, *offsets)[None, :]
    img = backpropagate(model, state, rec, residual, dt, condition=condition, threads=threads)
    illumination, nbytes = state.illumination, state.wavefield_bytes
    del state
    collect_if_large(nbytes)
    return img, illumination


def migrate_shot(model_ds: xr.Dataset, geometry_ds: xr.Dataset, shot_records_ds: xr.Dataset,
                 *, space_order: int = 8, nbl: int = 40, factor: int | None = None,
                 condition: str = "born", subtract_background: bool = True,
                 mute: Mapping[str, float] | None = None, max_offset: float | None = None,
                 offset_taper: float = 0.0, dtype: type = np.float32,
                 threads: int | None = None) -> xr.Dataset:
    """RTM images ``image`` and source illumination ``illumination`` (shot, x, z) of every shot
    in ``shot_records_ds`` (a slice of a survey's records) in the background ``model_ds``.

    Parameters
    ----------
    factor : int, optional
        Snapshot interval in time steps; default: Nyquist of the geometry's ``f_max``. 1 keeps
        every step (exact ``J^T``, more memory).
    condition : {"born", "crosscorrelation", "isic"}
        Imaging condition, see :data:`tasks.seismic.linear_operators.CONDITIONS`.
    subtract_background : bool
        Migrate ``d - F(m0)`` (removes the direct wave) instead of ``d``.
    mute : dict, optional
        ``{"velocity", "delay"[, "taper"]}`` for :func:`direct_wave_mute` on the data first.
    max_offset, offset_taper : float, optional
        Migrate only source-receiver offsets up to ``max_offset`` m, tapered over the last
        ``offset_taper`` m (:func:`offset_weights`, on what is migrated: after the subtraction).
    """
    geometry_ds = with_shot_dim(geometry_ds)
    model = shared_model(model_ds, geometry_ds, space_order=space_order, nbl=nbl, dtype=dtype)
    f = resolve_factor(geometry_ds, factor)
    dt = float(geometry_ds.attrs["dt"])
    wavelet = np.asarray(geometry_ds.wavelet.values, dtype=np.float64)
    labels, images, illums = [], [], []
    for label, src, rec, data in shot_traces(geometry_ds, shot_records_ds, model.dims):
        if mute is not None:
            data = direct_wave_mute(data, src, rec, geometry_ds.time.values, **mute)
        img, ill = _image(model, src, rec, data, wavelet, dt, f, condition,
                          subtract_background, (max_offset, offset_taper), threads)
        labels.append(label)
        images.append(img.astype(np.float32))
        illums.append(ill.astype(np.float32))
    dims = ("shot", *model.dims)
    coords = {"shot": ("shot", labels, {"long_name": "shot index"}),
              **{d: model_ds[d] for d in model.dims}}
    return xr.Dataset(
        {"image": (dims, np.stack(images), {"long_name": f"RTM image ({condition})",
                                            "units": "1"}),
         "illumination": (dims, np.stack(illums), {"long_name": "source illumination "
                                                   "sum_t u^2", "units": "1"})},
        coords=coords,
        attrs={"space_order": space_order, "nbl": nbl, "snapshot_factor": f,
               "condition": condition, "subtract_background": int(subtract_background),
               **({"max_offset": float(max_offset), "offset_taper": float(offset_taper)}
                  if max_offset is not None else {})})


def stack_images(per_shot_ds: xr.Dataset, *, normalize: bool = False, epsilon: float = 1e-3,
                 mute_depth: float | None = None, mute_taper: float = 0.0) -> xr.Dataset:
    """Stack per-shot images into ``image`` (x, z) (+ ``illumination``, the summed one).

    ``normalize``: divide by ``illumination + epsilon * max(illumination)`` (source-side
    illumination compensation). ``mute_depth``: zero the image above this depth (m), tapered to
    full weight over the next ``mute_taper`` m (:func:`mute_weights`).
    """
    if per_shot_ds.sizes.get("shot", 0) == 0:
        raise InputError("no per-shot images to stack (zero shots)")
    image = per_shot_ds["image"].astype(np.float64).sum("shot")
    illum = per_shot_ds["illumination"].astype(np.float64).sum("shot") \
        if "illumination" in per_shot_ds else None
    if normalize:
        if illum is None:
            raise InputError("illumination normalisation needs an 'illumination' variable")
        image = image / (illum + epsilon * float(illum.max()))
    if mute_depth is not None:
        image = mute_shallow(image, mute_depth, mute_taper)
    out = xr.Dataset({"image": image.astype(np.float32).assign_attrs(
        long_name="stacked RTM image", units="1")}, attrs=dict(per_shot_ds.attrs))
    if illum is not None:
        out["illumination"] = illum.astype(np.float32).assign_attrs(
            per_shot_ds["illumination"].attrs)
    out.attrs.update({"n_shots": int(per_shot_ds.sizes["shot"]), "normalized": int(normalize)})
    if mute_depth is not None:
        out.attrs["mute_depth"] = float(mute_depth)
        out.attrs["mute_taper"] = float(mute_taper)
    return out
