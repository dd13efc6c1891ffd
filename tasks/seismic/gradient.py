"""FWI objective and gradient, and the summary statistics of ASPIRE built from them.

The objective of one model is ``1/2 sum_shots ||F(m) - d||^2`` (plain sums over samples) and
its gradient w.r.t. ``m = 1/vp**2`` (s²/m², unpadded grid) is ``sum_shots J^T (F(m) - d)``,
exact with ``factor = 1`` (full storage) and approximated from snapshots otherwise. The damping
layer is held fixed: only ``m`` varies.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from strata_errors import InputError
from tasks.seismic.born import backpropagate, collect_if_large, forward_snapshots
from tasks.seismic.migration import migrate_shot, resolve_factor, shot_traces
from tasks.seismic.model import Model
from tasks.seismic.solver import forward, shared_model

__all__ = ["fwi_gradient", "fwi_objective", "gradient_summary", "rtm_summary"]


def fwi_objective(model: Model, geometry_ds: xr.Dataset, shot_records_ds: xr.Dataset, *,
                  threads: int | None = None) -> float:
    """Objective ``1/2 ||F(m) - d||^2`` over the shots in ``shot_records_ds`` (no gradient,
    no stored wavefield: for line searches and Taylor tests)."""
    dt = float(geometry_ds.attrs["dt"])
    wavelet = np.asarray(geometry_ds.wavelet.values, dtype=np.float64)
    value = 0.0
    for _, src, rec, data in shot_traces(geometry_ds, shot_records_ds, model.dims):
        traces, _ = forward(model, src, wavelet, rec, dt, threads=threads)
        value += 0.5 * float(np.sum((traces.astype(np.float64) - data) ** 2))
    return value


def fwi_gradient(model: Model, geometry_ds: xr.Dataset, shot_records_ds: xr.Dataset, *,
                 factor: int = 1, threads: int | None = None, edge_padded: bool = False) -> tuple[float, np.ndarray]:
    """Objective ``1/2 ||F(m) - d||^2`` over the shots in ``shot_records_ds`` and its gradient.

    Parameters
    ----------
    model : Model
        The current model (its ``m`` may be set directly; ``damp`` is kept).
    factor : int
        Snapshot interval; 1 gives the exact gradient.
    edge_padded : bool
        The gradient w.r.t. ``m`` when the absorbing layer's ``m`` is the edge extension of the
        interior (as :class:`Model` builds it from a velocity model), instead of held fixed.

    Returns
    -------
    tuple of float and np.ndarray
        The objective and its gradient w.r.t. ``m`` on the unpadded grid.
    """
    dt = float(geometry_ds.attrs["dt"])
    wavelet = np.asarray(geometry_ds.wavelet.values, dtype=np.float64)
    value, grad = 0.0, np.zeros(model.shape)
    for _, src, rec, data in shot_traces(geometry_ds, shot_records_ds, model.dims):
        state = forward_snapshots(model, src, wavelet, rec, dt, factor=factor, threads=threads)
        residual = state.traces - data
        value += 0.5 * float(np.sum(residual.astype(np.float64) ** 2))
        grad += backpropagate(model, state, rec, residual, dt, threads=threads, edge_padded=edge_padded)
        nbytes = state.wavefield_bytes
        del state
        collect_if_large(nbytes)
    return value, grad


def _samples(ds: xr.Dataset, what: str) -> list[int]:
    if ds.sizes.get("sample", 0) == 0:
        raise InputError(f"{what} has no 'sample' dimension or zero samples")
    return [int(s) for s in np.atleast_1d(ds["sample"].values)]


def _sample(ds: xr.Dataset, label: int) -> xr.Dataset:
    """The piece of ``ds`` with sample label ``label`` (position if there is no coordinate)."""
    piece = ds.sel(sample=label) if "sample" in ds.coords else ds.isel(sample=label)
    return piece.drop_vars("sample", errors="ignore")


def _summary(name: str, values: list[np.ndarray], samples: list[int], like: xr.Dataset,
             dims: tuple[str, ...], attrs: dict) -> xr.Dataset:
    coords = {"sample": ("sample", samples), **{d: like[d] for d in dims}}
    var = (("sample", *dims), np.stack(values).astype(np.float32), attrs)
    return xr.Dataset({name: var}, coords=coords)


def gradient_summary(models_ds: xr.Dataset, data_ds: xr.Dataset, geometry_ds: xr.Dataset, *,
                     space_order: int = 8, nbl: int = 40, factor: int | None = None,
                     dtype: type = np.float32, threads: int | None = None) -> xr.Dataset:
    """Per-sample FWI gradients ``J^T (F(x_hat) - y)`` for ASPIRE.

    ``models_ds`` holds the current estimates ``vp`` (sample, x, z); ``data_ds`` the observed
    ``data`` (sample, shot, receiver, time) of the same samples. Returns ``gradient``
    (sample, x, z) w.r.t. ``m`` and ``objective`` (sample) for every sample present.
    ``factor``: snapshot interval (default: Nyquist of the geometry's f_max; 1 = exact).
    """
    samples = _samples(models_ds, "models")
    missing = sorted(set(samples) - set(_samples(data_ds, "data")))
    if missing:
        raise InputError(f"samples {missing} have a model but no data")
    f = resolve_factor(geometry_ds, factor)
    grads, values = [], []
    for s in samples:
        model = shared_model(_sample(models_ds, s), geometry_ds, space_order=space_order, nbl=nbl,
                             dtype=dtype)
        value, grad = fwi_gradient(model, geometry_ds, _sample(data_ds, s), factor=f,
                                   threads=threads)
        grads.append(grad)
        values.append(value)
    dims = tuple(d for d in models_ds.vp.dims if d != "sample")
    out = _summary("gradient", grads, samples, models_ds, dims,
                   {"long_name": "FWI gradient w.r.t. m = 1/vp^2", "units": "m^2/s^2"})
    out["objective"] = ("sample", np.asarray(values),
                        {"long_name": "1/2 ||F(m) - d||^2", "units": "1"})
    out.attrs.update({"space_order": space_order, "nbl": nbl, "snapshot_factor": f})
    return out


def rtm_summary(background_ds: xr.Dataset, data_ds: xr.Dataset, geometry_ds: xr.Dataset, *,
                space_order: int = 8, nbl: int = 40, factor: int | None = None,
                dtype: type = np.float32, threads: int | None = None) -> xr.Dataset:
    """The cheapest summary: per-sample RTM images ``image`` (sample, x, z) of the observed
    ``data`` (sample, shot, receiver, time) in one fixed ``background_ds`` (x, z), each the
    stack over its shots of ``J^T (d - F(m0))``."""
    samples = _samples(data_ds, "data")
    images, f = [], None
    for s in samples:
        per_shot = migrate_shot(background_ds, geometry_ds, _sample(data_ds, s),
                                space_order=space_order, nbl=nbl, factor=factor,
                                dtype=dtype, threads=threads)
        images.append(per_shot["image"].astype(np.float64).sum("shot").values)
        f = per_shot.attrs["snapshot_factor"]
    out = _summary("image", images, samples, background_ds, background_ds.vp.dims,
                   {"long_name": "RTM image at a fixed background", "units": "1"})
    out.attrs.update({"space_order": space_order, "nbl": nbl, "snapshot_factor": f})
    return out
