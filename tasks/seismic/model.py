"""Velocity models: builders and imports (xarray), validation, and the padded devito `Model`.

A velocity model is an ``xr.Dataset`` with one variable ``vp`` in m/s on dims ``(x, z)``
(3D: ``(x, y, z)``), z pointing down, coordinates in metres on a uniform grid. Builders and
importers here are numpy/xarray only; devito is imported by :class:`Model`, which owns the
padded grid, ``m = 1/vp**2`` and the damping layer that the operators read.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from strata_errors import InputError
from tasks.seismic.stencil import check_space_order, critical_dt

__all__ = [
    "Model",
    "add_random_perturbation",
    "build_model",
    "content_hash",
    "load_model",
    "model_from_segy",
    "constant_model",
    "layered_model",
    "load_npy",
    "load_zarr",
    "model_from_array",
    "model_spacing",
    "smooth_model",
    "validate_model",
    "with_box",
    "with_circle",
]

VP_UNITS = "m/s"
_UNIT_SCALE = {"m/s": 1.0, "km/s": 1000.0}


def _dims(ndim: int) -> tuple[str, ...]:
    if ndim not in (2, 3):
        raise InputError(f"velocity model must be 2D (x, z) or 3D (x, y, z), got {ndim} dims")
    return ("x", "z") if ndim == 2 else ("x", "y", "z")


def model_from_array(
    vp: np.ndarray,
    spacing: float | Sequence[float],
    origin: Sequence[float] | None = None,
    *,
    units: str = VP_UNITS,
) -> xr.Dataset:
    """Wrap an array ``vp[x, z]`` (or ``[x, y, z]``) sampled at ``spacing`` metres as a model."""
    vp = np.asarray(vp)
    if vp.dtype.kind not in "iuf":
        raise InputError(f"velocity model values must be real numbers, got dtype {vp.dtype}")
    if units not in _UNIT_SCALE:
        raise InputError(f"velocity units must be one of {sorted(_UNIT_SCALE)}, got {units!r}")
    dims = _dims(vp.ndim)
    h = np.broadcast_to(np.asarray(spacing, dtype=float), (vp.ndim,))
    o = np.zeros(vp.ndim) if origin is None else np.asarray(origin, dtype=float)
    if np.any(h <= 0) or o.shape != (vp.ndim,):
        raise InputError(f"bad spacing {tuple(h)} or origin {tuple(o)} for a {vp.ndim}D model")
    coords = {
        d: (d, o[i] + h[i] * np.arange(vp.shape[i]), {"units": "m", "long_name": d})
        for i, d in enumerate(dims)
    }
    data = (vp.astype(np.float64) * _UNIT_SCALE[units]).astype(np.float32)
    attrs = {"units": VP_UNITS, "long_name": "P-wave velocity"}
    ds = xr.Dataset({"vp": (dims, data, attrs)}, coords=coords)
    validate_model(ds)
    return ds


def constant_model(shape: Sequence[int], spacing: float | Sequence[float], vp: float,
                   origin: Sequence[float] | None = None) -> xr.Dataset:
    """A homogeneous model of velocity ``vp`` (m/s)."""
    return model_from_array(np.full(tuple(shape), vp, dtype=np.float32), spacing, origin)


def layered_model(shape: Sequence[int], spacing: float | Sequence[float],
                  velocities: Sequence[float], depths: Sequence[float],
                  origin: Sequence[float] | None = None) -> xr.Dataset:
    """Flat layers: ``velocities[0]`` above ``depths[0]`` (m), ``velocities[i]`` from
    ``depths[i-1]`` down."""
    if len(velocities) != len(depths) + 1:
        raise InputError(f"{len(velocities)} layer velocities need {len(velocities) - 1} "
                         f"interface depths, got {len(depths)}")
    ds = constant_model(shape, spacing, velocities[0], origin)
    z = ds.z.values
    vp = ds.vp.values
    for v, depth in zip(velocities[1:], depths, strict=True):
        vp[..., z >= depth] = v
    validate_model(ds)
    return ds


def build_model(*, shape: Sequence[int], spacing: float | Sequence[float],
                velocities: Sequence[float], depths: Sequence[float] = (),
                perturbation: Mapping[str, Any] | None = None,
                circle: Mapping[str, Any] | None = None,
                origin: Sequence[float] | None = None,
                file: Mapping[str, Any] | None = None) -> xr.Dataset:
    """A model from a study's settings: flat layers (:func:`layered_model`) — or, with ``file``
    ``{"path", "units"[, "sha256"]}``, a model imported by :func:`load_model` at ``spacing`` —
    then an optional seeded random perturbation ``{"std", "correlation_length", "seed"}``
    (m/s, m; see :func:`add_random_perturbation`), then an optional circular anomaly
    ``{"center", "radius", "vp"}`` (m, m, m/s; :func:`with_circle`). Raises InputError for a
    model that is not finite and positive everywhere."""
    if file is not None:
        ds = load_model(file["path"], spacing=spacing, units=file.get("units", VP_UNITS),
                        sha256=file.get("sha256"))
    else:
        ds = layered_model(shape, spacing, velocities, depths, origin)
    if perturbation is not None and float(perturbation.get("std", 0.0)) > 0:
        ds = add_random_perturbation(ds, std=float(perturbation["std"]),
                                     correlation_lengths=perturbation["correlation_length"],
                                     seed=int(perturbation.get("seed", 0)))
    if circle is not None:
        ds = with_circle(ds, center=circle["center"], radius=float(circle["radius"]),
                         vp=float(circle["vp"]))
    return ds


def add_random_perturbation(model: xr.Dataset, *, std: float,
                            correlation_lengths: float | Sequence[float],
                            seed: int) -> xr.Dataset:
    """Add a Gaussian random field of standard deviation ``std`` (m/s), seeded.

    The field has correlation ``exp(-sum((dx_i / l_i)**2))`` with lengths ``l_i`` in metres per
    axis (x, z) or (x, y, z); it is rescaled to zero mean and exactly ``std``.
    """
    from scipy.ndimage import gaussian_filter

    h = model_spacing(model)
    lengths = np.broadcast_to(np.asarray(correlation_lengths, dtype=float), h.shape)
    if np.any(lengths <= 0) or std < 0:
        raise InputError(f"correlation lengths {tuple(lengths)} m must be > 0 and std >= 0")
    rng = np.random.default_rng(np.random.SeedSequence(seed))
    field = gaussian_filter(rng.standard_normal(model.vp.shape), sigma=lengths / h / 2,
                            mode="wrap")
    field -= field.mean()
    field *= std / max(field.std(), np.finfo(float).tiny)
    out = model.copy(deep=True)
    out["vp"].values[:] = (model.vp.values + field).astype(np.float32)
    validate_model(out)
    return out


def _check_point(model: xr.Dataset, point: Sequence[float], what: str) -> None:
    if len(point) != model.vp.ndim:
        raise InputError(f"{what} {tuple(point)} has {len(point)} coordinates; the model has dims {model.vp.dims}")


def _inside(model: xr.Dataset, mask_of_coords) -> np.ndarray:
    grids = np.meshgrid(*(model[d].values for d in model.vp.dims), indexing="ij")
    return mask_of_coords(dict(zip(model.vp.dims, grids, strict=True)))


def with_circle(model: xr.Dataset, *, center: Sequence[float], radius: float,
                vp: float) -> xr.Dataset:
    """Set ``vp`` inside a circle (sphere in 3D) of ``radius`` m around ``center`` (x[, y], z)."""
    _check_point(model, center, "circle center")
    def mask(c):
        return sum((c[d] - x0) ** 2 for d, x0 in zip(model.vp.dims, center, strict=True)) \
            <= radius**2
    out = model.copy(deep=True)
    out["vp"].values[_inside(model, mask)] = vp
    validate_model(out)
    return out


def with_box(model: xr.Dataset, *, lower: Sequence[float], upper: Sequence[float],
             vp: float) -> xr.Dataset:
    """Set ``vp`` inside the box ``lower <= (x[, y], z) <= upper`` (m)."""
    _check_point(model, lower, "box lower corner")
    _check_point(model, upper, "box upper corner")
    def mask(c):
        return np.logical_and.reduce([(c[d] >= lo) & (c[d] <= hi) for d, lo, hi
                                      in zip(model.vp.dims, lower, upper, strict=True)])
    out = model.copy(deep=True)
    out["vp"].values[_inside(model, mask)] = vp
    validate_model(out)
    return out


def smooth_model(model: xr.Dataset, sigma: float | Sequence[float], *,
                 slowness: bool = True) -> xr.Dataset:
    """Gaussian-smooth to a migration background; ``sigma`` in metres, in slowness by default."""
    from scipy.ndimage import gaussian_filter

    h = model_spacing(model)
    sig = np.broadcast_to(np.asarray(sigma, dtype=float), h.shape)
    vp = model.vp.values.astype(np.float64)
    field = 1.0 / vp if slowness else vp
    smooth = gaussian_filter(field, sigma=sig / h, mode="nearest")
    out = model.copy(deep=True)
    out["vp"].values[:] = (1.0 / smooth if slowness else smooth).astype(np.float32)
    out["vp"].attrs["smoothing_sigma_m"] = [float(s) for s in sig]
    return out


def load_npy(path: str | Path, spacing: float | Sequence[float],
             origin: Sequence[float] | None = None, *, units: str = VP_UNITS) -> xr.Dataset:
    """Import a ``.npy`` array ordered (x, z) or (x, y, z) with the given spacing (m); nothing is
    unpickled (an array of Python objects is an InputError)."""
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            magic = fh.read(6)
        vp = np.load(path, allow_pickle=False) if magic == b"\x93NUMPY" else None
    except OSError as exc:
        raise InputError(f"model file {path} cannot be read: {exc.strerror or exc}") from None
    except (ValueError, EOFError) as exc:  # objects (pickles), a damaged header, a truncated array
        raise InputError(f"model file {path} is not a numeric .npy array: {exc}") from None
    if vp is None:
        raise InputError(f"model file {path} is not a .npy array file")
    return model_from_array(vp, spacing, origin, units=units)


def model_from_segy(path: str | Path, spacing: float | Sequence[float], *,
                    units: str = VP_UNITS) -> xr.Dataset:
    """A post-stack SEG-Y velocity section: trace i is x position i, sample j is depth j; the
    grid spacing (m) is given, since such files keep no trustworthy one."""
    from .segy import read_segy

    ds = read_segy(path)
    return model_from_array(np.asarray(ds["data"].values, dtype=np.float64), spacing, units=units)


def content_hash(path: str | Path) -> str:
    """sha256 of a file, or of every file of a directory (a zarr store) in sorted order."""
    import hashlib

    path = Path(path)
    if not path.exists():
        raise InputError(f"model file {path} does not exist")
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    h = hashlib.sha256()
    for f in files:
        h.update(str(f.relative_to(path) if path.is_dir() else f.name).encode())
        with open(f, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 22), b""):
                h.update(block)
    return h.hexdigest()


def load_model(path: str | Path, *, spacing: float | Sequence[float], units: str = VP_UNITS,
               sha256: str | None = None) -> xr.Dataset:
    """Import a velocity model by extension: ``.npy`` (x, z), ``.sgy``/``.segy`` (post-stack,
    trace = x) at ``spacing``; ``.zarr`` (its own coordinates). With ``sha256``, a file whose
    content changed since the request was made is an error (the dataset key names that content)."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"model file {path} does not exist")
    if sha256 is not None and content_hash(path) != sha256:
        raise InputError(f"model file {path} changed since this run started (sha256 differs)")
    suffix = path.suffix.lower()
    if suffix == ".npy":
        return load_npy(path, spacing, units=units)
    if suffix in (".sgy", ".segy"):
        return model_from_segy(path, spacing, units=units)
    if suffix == ".zarr":
        return load_zarr(str(path))
    raise InputError(f"model file {path}: unknown format {suffix!r} (use .npy, .sgy/.segy or .zarr)")


def load_zarr(store, *, variable: str = "vp") -> xr.Dataset:
    """Import a velocity variable from a zarr store (dims x, [y,] z in any order; m/s or km/s)."""
    try:
        ds = xr.open_zarr(store, consolidated=False)
    except Exception as exc:  # whatever zarr or the filesystem says about a store that is not one
        raise InputError(f"model file {store!s} is not a zarr store: {exc}") from None
    if variable not in ds:
        raise InputError(f"zarr store {store!s} has no variable {variable!r} "
                         f"(has {sorted(ds.data_vars)})")
    da = ds[variable]
    dims = _dims(da.ndim)
    if set(da.dims) != set(dims):
        raise InputError(f"variable {variable!r} has dims {da.dims}, expected {dims}")
    da = da.transpose(*dims)
    h = [float(np.diff(da[d].values[:2])[0]) if da.sizes[d] > 1 else 1.0 for d in dims]
    return model_from_array(da.values, h, [float(da[d].values[0]) for d in dims],
                            units=da.attrs.get("units", VP_UNITS))


def model_spacing(model: xr.Dataset) -> np.ndarray:
    """Grid spacing (m) per axis of the model's dims, checked uniform and positive."""
    h = []
    for d in model.vp.dims:
        c = np.asarray(model[d].values, dtype=float)
        step = np.diff(c)
        if c.size < 2 or step[0] <= 0 or not np.allclose(step, step[0], rtol=1e-6):
            raise InputError(f"velocity model coordinate {d!r} must be uniform, increasing "
                             f"and have >= 2 points")
        h.append(float(step[0]))
    return np.array(h)


def _where(model: xr.Dataset, bad: np.ndarray) -> str:
    idx = np.unravel_index(int(np.flatnonzero(bad)[0]), bad.shape)
    return ", ".join(f"{d}={model[d].values[i]:g} m" for d, i in zip(model.vp.dims, idx,
                                                                     strict=True))


def validate_model(model: xr.Dataset) -> None:
    """Raise InputError unless ``model`` is a finite, positive ``vp`` on uniform (x[, y], z)."""
    if "vp" not in model:
        raise InputError(f"velocity model has no variable 'vp' (has {sorted(model.data_vars)})")
    dims = _dims(model.vp.ndim)
    if model.vp.dims != dims:
        raise InputError(f"velocity model 'vp' has dims {model.vp.dims}, expected {dims}")
    if model.vp.attrs.get("units", VP_UNITS) != VP_UNITS:
        raise InputError(f"velocity model 'vp' must be in m/s, not {model.vp.attrs['units']!r}")
    model_spacing(model)
    vp = np.asarray(model.vp.values)
    for what, bad in (("NaN", np.isnan(vp)), ("infinite", np.isinf(vp)),
                      ("non-positive", vp <= 0)):
        if bad.any():
            raise InputError(f"velocity model 'vp' has {int(bad.sum())} {what} values "
                             f"(first at {_where(model, bad)})")


def damping_profiles(vp: np.ndarray, nbl: int, spacing: Sequence[float],
                     reflection: float = 1e-3) -> tuple[np.ndarray, ...]:
    """The absorbing layer's coefficient ``damp`` (s/m²) as one 1D profile per axis of the
    padded grid; ``damp = sum_axis profile_axis``, zero inside the model.

    ``m u_tt + damp u_t = lap u`` damps at the rate ``damp * vp**2`` (1/s). Each side's ramp
    ``1.5 ln(1/R) (pos - sin(2 pi pos) / 2 pi) / (nbl h)`` is divided by the mean velocity of
    that face of the model, so the rate is ``ramp * vp`` where ``vp`` is near the face's mean.
    Fixed per model (it does not follow later changes of ``m``) and separable, so an operator
    can read it from 1D arrays instead of a full grid.
    """
    vp = np.asarray(vp, dtype=np.float64)
    out = []
    pos = np.arange(nbl, 0, -1) / max(nbl, 1)  # 1 at the outer edge
    ramp = pos - np.sin(2 * np.pi * pos) / (2 * np.pi)
    for axis, (n, h) in enumerate(zip(vp.shape, spacing, strict=True)):
        prof = np.zeros(n + 2 * nbl)
        if nbl:
            scale = 1.5 * np.log(1.0 / reflection) / (nbl * h)
            low = float(np.take(vp, 0, axis=axis).mean())
            high = float(np.take(vp, n - 1, axis=axis).mean())
            prof[:nbl] = scale * ramp / low
            prof[n + nbl:] = scale * ramp[::-1] / high
        out.append(prof)
    return tuple(out)


class Model:
    """One velocity model on a padded devito grid, for one space order.

    Owns the grid (``nbl`` damping points added on every side), ``m = 1/vp**2`` (s²/m²) and
    the absorbing layer's ``damp`` (s/m², so that ``m u_tt + damp u_t = lap u`` damps at rate
    ``damp*vp**2``). ``damp`` is separable (:func:`damping_profiles`): operators read it as one
    1D Function per axis (``damp_axes``) or, built on first use, as a full-grid Function
    (``damp``). ``m`` may be changed in place (``m.data``); ``damp`` stays as it was built.
    """

    def __init__(self, model: xr.Dataset, *, space_order: int = 8, nbl: int = 40,
                 dtype: type = np.float32) -> None:
        from devito import Function, Grid

        validate_model(model)
        check_space_order(space_order)
        if nbl < 0:
            raise InputError(f"damping layer width nbl must be >= 0, got {nbl}")
        self.dataset = model
        self.space_order, self.nbl, self.dtype = int(space_order), int(nbl), np.dtype(dtype)
        self.dims: tuple[str, ...] = model.vp.dims
        self.spacing = tuple(float(h) for h in model_spacing(model))
        self.origin = tuple(float(model[d].values[0]) for d in self.dims)
        self.shape = model.vp.shape
        self.vp = np.asarray(model.vp.values, dtype=np.float64)
        self.vp_min, self.vp_max = float(self.vp.min()), float(self.vp.max())
        shape_pad = tuple(n + 2 * self.nbl for n in self.shape)
        self.grid = Grid(shape=shape_pad, dtype=self.dtype.type,
                         extent=tuple(h * (n - 1) for h, n in zip(self.spacing, shape_pad,
                                                                  strict=True)),
                         origin=tuple(o - self.nbl * h for o, h in zip(self.origin,
                                                                      self.spacing,
                                                                      strict=True)))
        self.m = Function(name="m", grid=self.grid, space_order=self.space_order)
        slowness2 = 1.0 / np.square(np.asarray(model.vp.values, dtype=self.dtype))
        self.m.data[:] = np.pad(slowness2, self.nbl, mode="edge")
        self.damp_profiles = damping_profiles(self.vp, self.nbl, self.spacing)
        self._damp = None
        self._damp_axes = None

    @property
    def damp_axes(self) -> tuple:
        """``damp`` as one 1D Function per grid dimension, named ``damp0``, ``damp1``, ..."""
        from devito import Function

        if self._damp_axes is None:
            funcs = []
            for i, (dim, prof) in enumerate(zip(self.grid.dimensions, self.damp_profiles, strict=True)):
                f = Function(name=f"damp{i}", dimensions=(dim,), shape=(len(prof),), space_order=0,
                             dtype=self.dtype.type)
                f.data[:] = prof
                funcs.append(f)
            self._damp_axes = tuple(funcs)
        return self._damp_axes

    @property
    def damp(self):
        """``damp`` on the full padded grid (a Function named ``damp``), built on first use."""
        from devito import Function

        if self._damp is None:
            self._damp = Function(name="damp", grid=self.grid, space_order=self.space_order)
            self._damp.data[:] = self._damp_grid()
        return self._damp

    def _damp_grid(self) -> np.ndarray:
        ndim = len(self.damp_profiles)
        return sum(p.reshape([-1 if a == i else 1 for a in range(ndim)])
                   for i, p in enumerate(self.damp_profiles))

    def set_damping(self, profiles: Sequence[np.ndarray]) -> None:
        """Replace the absorbing layer by these 1D profiles (s/m², one per axis of the padded grid)."""
        profiles = tuple(np.asarray(p, dtype=np.float64) for p in profiles)
        if [p.shape for p in profiles] != [(n,) for n in self.grid.shape]:
            raise InputError(f"damping profiles must have lengths {list(self.grid.shape)}, "
                             f"got {[p.shape for p in profiles]}")
        self.damp_profiles = profiles
        if self._damp_axes is not None:
            for f, p in zip(self._damp_axes, profiles, strict=True):
                f.data[:] = p
        if self._damp is not None:
            self._damp.data[:] = self._damp_grid()

    @property
    def critical_dt(self) -> float:
        """Largest stable time step (s) for this model and space order."""
        return critical_dt(self.vp_max, self.spacing, self.space_order)

    @property
    def cache_key(self) -> tuple:
        """What a compiled operator depends on (spacing is baked into the generated code)."""
        from devito import configuration

        return (self.grid.shape, self.spacing, self.space_order, self.nbl, self.dtype.str,
                str(configuration["language"]), str(configuration["platform"]))
