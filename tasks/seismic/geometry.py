"""Acquisition geometry: source/receiver positions, time axis, time step and source wavelet.

A geometry is an ``xr.Dataset`` with dims ``shot``, ``receiver``, ``time``; coordinates
``src_x, [src_y,] src_z`` (shot) and ``rec_x, [rec_y,] rec_z`` (shot, receiver) in metres,
``time`` in seconds; variable ``wavelet`` (time); attrs ``dt`` (s), ``space_order`` (the one dt
was checked against), ``f_max`` (Hz), ``kind`` and, for a Ricker source, ``f0`` (Hz).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import xarray as xr

from strata_errors import InputError
from tasks.seismic.model import model_spacing, validate_model
from tasks.seismic.stencil import check_dispersion, critical_dt
from tasks.seismic.wavelet import max_frequency, resample_wavelet, ricker

__all__ = [
    "LAYOUTS",
    "acquisition",
    "areal_geometry",
    "areal_positions",
    "choose_dt",
    "crosswell_geometry",
    "make_geometry",
    "ocean_bottom_geometry",
    "ring_geometry",
    "ring_positions",
    "seafloor_depth",
    "shot_positions",
    "surface_geometry",
    "time_axis",
    "validate_geometry",
]

DEFAULT_CFL_FRACTION = 0.9


def _round_down(x: float, digits: int = 3) -> float:
    scale = 10.0 ** (np.floor(np.log10(x)) - digits + 1)
    return float(np.floor(x / scale * (1 + 1e-12)) * scale)


def choose_dt(model: xr.Dataset, space_order: int, dt: float | None = None, *,
              vp_max: float | None = None, spacing: Sequence[float] | None = None) -> float:
    """The user's ``dt`` checked against the CFL limit, or 90% of the limit (3 digits).
    ``vp_max``, ``spacing``: the model's maximum velocity and grid spacing, when already known."""
    vp_max = float(model.vp.max()) if vp_max is None else float(vp_max)
    spacing = model_spacing(model) if spacing is None else spacing
    limit = critical_dt(vp_max, spacing, space_order)
    if dt is None:
        return _round_down(DEFAULT_CFL_FRACTION * limit)
    if not dt > 0:
        raise InputError(f"time step dt must be > 0 s, got {dt}")
    if dt > limit:
        raise InputError(f"time step dt={dt:.6g} s is above the CFL limit {limit:.6g} s "
                         f"(vp_max={vp_max:g} m/s, "
                         f"h={min(spacing):g} m, space order {space_order})")
    return float(dt)


def time_axis(record_length: float, dt: float) -> np.ndarray:
    """Times 0, dt, ... up to the first sample at or after ``record_length`` (s)."""
    if not record_length > 0:
        raise InputError(f"record length must be > 0 s, got {record_length}")
    nt = int(np.ceil(record_length / dt - 1e-9)) + 1
    return dt * np.arange(nt)


def _check_inside(model: xr.Dataset, pos: np.ndarray, what: str) -> None:
    dims = model.vp.dims
    lo = np.array([float(model.variables[d].values[0]) for d in dims])
    hi = np.array([float(model.variables[d].values[-1]) for d in dims])
    tol = 1e-9 * (hi - lo).max()
    flat = pos.reshape(-1, len(dims))
    bad = ~np.all(np.isfinite(flat) & (flat >= lo - tol) & (flat <= hi + tol), axis=1)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        label = f"{what} {i}" if pos.ndim == 2 else \
            f"{what} {i % pos.shape[1]} of shot {i // pos.shape[1]}"
        at = ", ".join(f"{d}={v:g} m" for d, v in zip(dims, flat[i], strict=True))
        box = ", ".join(f"{d} in [{a:g}, {b:g}] m" for d, a, b in zip(dims, lo, hi, strict=True))
        raise InputError(f"{label} at {at} is outside the model ({box}); "
                         f"{int(bad.sum())} position(s) outside")


def _positions(geometry: xr.Dataset, dims: Sequence[str],
               shot: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Sources (shot, dim) and receivers (shot, receiver, dim) in metres, or those of one
    ``shot`` alone, read from the variables (a DataArray transpose per coordinate costs ~0.5 ms)."""
    at = slice(None) if shot is None else slice(shot, shot + 1)
    src = np.stack([np.asarray(geometry.variables[f"src_{d}"].values[at]) for d in dims], axis=-1)
    rec = np.stack([np.asarray(geometry.variables[f"rec_{d}"].transpose("shot", "receiver")[at].values)
                    for d in dims], axis=-1)
    return src, rec


def validate_geometry(model: xr.Dataset, geometry: xr.Dataset, space_order: int, *,
                      vp_max: float | None = None, spacing: Sequence[float] | None = None) -> None:
    """Raise InputError unless every position is inside ``model`` and dt is below its CFL.
    ``vp_max`` (and ``spacing``): given when ``model`` has been validated already (its
    velocities are then not scanned again: three passes over a 4001² model cost ~60 ms a shot)."""
    if vp_max is None:
        validate_model(model)
    if geometry.sizes.get("shot", 0) == 0:
        raise InputError("geometry has zero shots")
    if geometry.sizes.get("receiver", 0) == 0:
        raise InputError("geometry has zero receivers")
    dims = model.vp.dims
    missing = [f"{p}_{d}" for p in ("src", "rec") for d in dims if f"{p}_{d}" not in geometry]
    if missing:
        raise InputError(f"geometry lacks coordinates {missing} for a {len(dims)}D model")
    src, rec = _positions(geometry, dims)
    _check_inside(model, src, "source")
    _check_inside(model, rec, "receiver")
    choose_dt(model, space_order, float(geometry.attrs["dt"]), vp_max=vp_max, spacing=spacing)


def make_geometry(model: xr.Dataset, sources: np.ndarray, receivers: np.ndarray, *,
                  record_length: float, space_order: int = 8, f0: float | None = None,
                  wavelet: np.ndarray | None = None, wavelet_dt: float | None = None,
                  dt: float | None = None, kind: str = "custom") -> xr.Dataset:
    """Geometry from positions: ``sources`` (shot, dim), ``receivers`` (receiver, dim) or
    (shot, receiver, dim), in the model's axis order; a Ricker of peak ``f0`` Hz or a user
    ``wavelet`` sampled every ``wavelet_dt`` s (default: the time step)."""
    validate_model(model)
    dims = model.vp.dims
    src = np.asarray(sources, dtype=np.float64)
    rec = np.asarray(receivers, dtype=np.float64)
    if src.ndim != 2 or src.shape[-1] != len(dims):
        raise InputError(f"sources must have shape (shot, {len(dims)}), got {src.shape}")
    if src.shape[0] == 0:
        raise InputError("geometry has zero shots")
    if rec.ndim == 2:
        rec = np.broadcast_to(rec, (src.shape[0], *rec.shape))
    if rec.ndim != 3 or rec.shape[0] != src.shape[0] or rec.shape[-1] != len(dims):
        raise InputError(f"receivers must have shape (receiver, {len(dims)}) or "
                         f"({src.shape[0]}, receiver, {len(dims)}), got {rec.shape}")
    if rec.shape[1] == 0:
        raise InputError("geometry has zero receivers")
    _check_inside(model, src, "source")
    _check_inside(model, rec, "receiver")
    dt = choose_dt(model, space_order, dt)
    t = time_axis(record_length, dt)
    if (f0 is None) == (wavelet is None):
        raise InputError("give exactly one of a Ricker peak frequency f0 or a user wavelet")
    w = ricker(f0, t) if wavelet is None else \
        resample_wavelet(wavelet, dt if wavelet_dt is None else wavelet_dt, t)
    f_max = max_frequency(w, dt)
    check_dispersion(float(model.vp.min()), model_spacing(model), f_max, space_order)
    m = {"units": "m"}
    coords = {"shot": np.arange(src.shape[0]), "receiver": np.arange(rec.shape[1]),
              "time": ("time", t, {"units": "s", "long_name": "time"})}
    for i, d in enumerate(dims):
        coords[f"src_{d}"] = ("shot", src[:, i], {**m, "long_name": f"source {d}"})
        coords[f"rec_{d}"] = (("shot", "receiver"), rec[..., i],
                              {**m, "long_name": f"receiver {d}"})
    attrs = {"dt": dt, "space_order": int(space_order), "f_max": f_max, "kind": kind,
             "record_length": float(record_length)}
    if f0 is not None:
        attrs["f0"] = float(f0)
    wav = ("time", w.astype(np.float32), {"long_name": "source wavelet", "units": "1"})
    return xr.Dataset({"wavelet": wav}, coords=coords, attrs=attrs)


def _line(first: float, spacing: float, count: int, what: str) -> np.ndarray:
    if count < 1:
        raise InputError(f"geometry has zero {what} (count={count})")
    return first + spacing * np.arange(count)


def _place(model: xr.Dataset, along: np.ndarray, axis: str, fixed: dict[str, float]):
    """Positions (n, dim) varying along ``axis``; other axes fixed (y defaults to the centre)."""
    out = []
    for d in model.vp.dims:
        if d == axis:
            out.append(along)
        else:
            v = fixed.get(d)
            v = float(model[d].values[[0, -1]].mean()) if v is None else v
            out.append(np.full(along.shape, v))
    return np.stack(out, axis=-1)


def surface_geometry(model: xr.Dataset, *, n_shots: int, shot_spacing: float,
                     n_receivers: int, receiver_spacing: float, source_depth: float = 0.0,
                     receiver_depth: float = 0.0, first_shot_x: float | None = None,
                     first_receiver_x: float | None = None, y: float | None = None,
                     **timing) -> xr.Dataset:
    """Sources and a fixed receiver spread along x at given depths (3D: a line at ``y``)."""
    return _two_lines(model, "x", n_shots, shot_spacing, first_shot_x, n_receivers, receiver_spacing,
                      first_receiver_x, {"z": source_depth, "y": y}, {"z": receiver_depth, "y": y},
                      kind=timing.pop("kind", "surface"), **timing)


def _two_lines(model: xr.Dataset, axis: str, n_shots: int, shot_spacing: float, first_shot: float | None,
               n_receivers: int, receiver_spacing: float, first_receiver: float | None,
               src_at: dict[str, float | None], rec_at: dict[str, float | None], *, kind: str,
               **timing) -> xr.Dataset:
    """Sources and receivers on two straight lines along ``axis`` (from the model's first node by
    default), at the fixed other coordinates ``src_at`` / ``rec_at``."""
    start = float(model[axis].values[0])
    s = _line(start if first_shot is None else first_shot, shot_spacing, n_shots, "shots")
    r = _line(start if first_receiver is None else first_receiver, receiver_spacing, n_receivers, "receivers")
    return make_geometry(model, _place(model, s, axis, src_at), _place(model, r, axis, rec_at), kind=kind,
                         **timing)


def seafloor_depth(model: xr.Dataset, x: np.ndarray, y: float | None = None) -> np.ndarray:
    """Depth (m) of the first node below the water layer (vp differs from the top by > 1%)."""
    vp = model.vp
    if "y" in vp.dims:
        vp = vp.sel(y=float(model.y.values[[0, -1]].mean()) if y is None else y,
                    method="nearest")
    cols = vp.sel(x=x, method="nearest").values            # (n, nz)
    below = np.abs(cols - cols[:, :1]) > 0.01 * cols[:, :1]
    if not below.any(axis=1).all():
        i = int(np.flatnonzero(~below.any(axis=1))[0])
        raise InputError(f"no seafloor found under receiver {i} at x={x[i]:g} m "
                         f"(vp never departs from the water velocity {cols[i, 0]:g} m/s)")
    return model.z.values[np.argmax(below, axis=1)]


def ocean_bottom_geometry(model: xr.Dataset, *, n_shots: int, shot_spacing: float,
                          n_receivers: int, receiver_spacing: float,
                          source_depth: float = 0.0, seafloor: float | None = None,
                          first_shot_x: float | None = None,
                          first_receiver_x: float | None = None, y: float | None = None,
                          **timing) -> xr.Dataset:
    """Near-surface sources, receivers on the seafloor (given depth, or found in the model)."""
    x0 = float(model.x.values[0])
    rx = _line(x0 if first_receiver_x is None else first_receiver_x, receiver_spacing,
               n_receivers, "receivers")
    geo = surface_geometry(model, n_shots=n_shots, shot_spacing=shot_spacing,
                           n_receivers=n_receivers, receiver_spacing=receiver_spacing,
                           source_depth=source_depth, receiver_depth=0.0,
                           first_shot_x=first_shot_x, first_receiver_x=rx[0], y=y,
                           kind="ocean_bottom", **timing)
    rz = np.full(rx.shape, seafloor) if seafloor is not None else seafloor_depth(model, rx, y)
    geo["rec_z"] = (("shot", "receiver"), np.broadcast_to(rz, geo.rec_z.shape).copy(),
                    geo.rec_z.attrs)
    geo = geo.set_coords("rec_z")
    _check_inside(model, np.stack([geo[f"rec_{d}"].values for d in model.vp.dims], -1),
                  "receiver")
    return geo


def crosswell_geometry(model: xr.Dataset, *, source_well_x: float, receiver_well_x: float,
                       n_shots: int, shot_spacing: float, n_receivers: int,
                       receiver_spacing: float, first_shot_z: float | None = None,
                       first_receiver_z: float | None = None, y: float | None = None,
                       **timing) -> xr.Dataset:
    """Sources down one vertical well, receivers down another."""
    return _two_lines(model, "z", n_shots, shot_spacing, first_shot_z, n_receivers, receiver_spacing,
                      first_receiver_z, {"x": source_well_x, "y": y}, {"x": receiver_well_x, "y": y},
                      kind="crosswell", **timing)


def ring_positions(model: xr.Dataset, count: int, inset: float, offset: float = 0.0) -> np.ndarray:
    """``count`` positions (n, 2) in (x, z) m, evenly spaced by arc length along the rectangle ``inset`` m
    inside the edges of a 2D ``model``, clockwise (x right, z down: along the top to the right first) from the
    top side's centre, shifted by ``offset`` spacings. The set is symmetric under x → mirror(x) for any count
    when ``offset`` is 0 or 0.5."""
    if model.vp.dims != ("x", "z"):
        raise InputError(f"the ring layout is for 2D (x, z) models, got dims {model.vp.dims}")
    if count < 1:
        raise InputError(f"ring layout: count must be >= 1, got {count}")
    (x0, x1), (z0, z1) = model.x.values[[0, -1]], model.z.values[[0, -1]]
    lo_x, hi_x, lo_z, hi_z = x0 + inset, x1 - inset, z0 + inset, z1 - inset
    if not (inset >= 0 and lo_x < hi_x and lo_z < hi_z):
        raise InputError(f"ring inset {inset:g} m must be >= 0 and leave a rectangle inside the "
                         f"{x1 - x0:g} m x {z1 - z0:g} m model")
    width = hi_x - lo_x
    corners = np.array([[lo_x + width / 2, lo_z], [hi_x, lo_z], [hi_x, hi_z], [lo_x, hi_z], [lo_x, lo_z],
                        [lo_x + width / 2, lo_z]])
    legs = np.linalg.norm(np.diff(corners, axis=0), axis=1)
    ends = np.concatenate([[0.0], np.cumsum(legs)])
    t = ((np.arange(count) + offset) * ends[-1] / count) % ends[-1]
    leg = np.clip(np.searchsorted(ends, t, side="right") - 1, 0, len(legs) - 1)
    share = ((t - ends[leg]) / legs[leg])[:, None]
    return corners[leg] + share * (corners[leg + 1] - corners[leg])


def ring_geometry(model: xr.Dataset, *, n_shots: int, n_receivers: int, inset: float, **timing) -> xr.Dataset:
    """Transmission all around a 2D model (the ASPIRE paper's ring, on a rectangle): ``n_shots`` sources and
    ``n_receivers`` receivers evenly spaced along the rectangle ``inset`` m inside the model's edges
    (:func:`ring_positions`), the sources from the top side's centre, the receivers half a receiver spacing
    on (so none sits on a source when the counts divide each other). Mirror-symmetric in x about the model's
    centre, so a prior symmetric in x allows mirror augmentation."""
    src = ring_positions(model, n_shots, inset)
    rec = ring_positions(model, n_receivers, inset, offset=0.5)
    return make_geometry(model, src, rec, kind=timing.pop("kind", "ring"), **timing)


def _check_3d(model: xr.Dataset) -> None:
    if model.vp.dims != ("x", "y", "z"):
        raise InputError(f"the areal layout is for 3D (x, y, z) models, got dims {model.vp.dims}: give the model "
                         f"a 3-value shape (x, y, z) or use another layout")


def areal_positions(model: xr.Dataset, *, nx: int, ny: int, spacing_x: float, spacing_y: float,
                    first_x: float | None, first_y: float | None, depth: float, what: str) -> np.ndarray:
    """Positions (nx * ny, 3) in (x, y, z) m of an ``nx`` × ``ny`` grid at ``depth`` on a 3D ``model``,
    from (``first_x``, ``first_y``) (default: the model's first x and y nodes), x fastest
    (point ``i_y * nx + i_x``)."""
    _check_3d(model)
    x = _line(float(model.x.values[0]) if first_x is None else first_x, spacing_x, nx, what)
    y = _line(float(model.y.values[0]) if first_y is None else first_y, spacing_y, ny, what)
    gy, gx = np.meshgrid(y, x, indexing="ij")  # (ny, nx): x fastest once flattened
    return np.stack([gx.ravel(), gy.ravel(), np.full(gx.size, float(depth))], axis=-1)


def areal_geometry(model: xr.Dataset, *, n_shots: int, shot_spacing: float, n_shots_y: int,
                   n_receivers: int, receiver_spacing: float, n_receivers_y: int,
                   shot_spacing_y: float | None = None, receiver_spacing_y: float | None = None,
                   source_depth: float = 0.0, receiver_depth: float = 0.0,
                   first_shot_x: float | None = None, first_shot_y: float | None = None,
                   first_receiver_x: float | None = None, first_receiver_y: float | None = None,
                   **timing) -> xr.Dataset:
    """3D: ``n_shots`` × ``n_shots_y`` sources on a grid at ``source_depth``, each shot recorded by a
    fixed ``n_receivers`` × ``n_receivers_y`` receiver grid at ``receiver_depth`` (:func:`areal_positions`:
    x fastest; the y spacings default to the x ones, the first positions to the model's first nodes)."""
    src = areal_positions(model, nx=n_shots, ny=n_shots_y, spacing_x=shot_spacing,
                          spacing_y=shot_spacing if shot_spacing_y is None else shot_spacing_y,
                          first_x=first_shot_x, first_y=first_shot_y, depth=source_depth, what="shots")
    rec = areal_positions(model, nx=n_receivers, ny=n_receivers_y, spacing_x=receiver_spacing,
                          spacing_y=receiver_spacing if receiver_spacing_y is None else receiver_spacing_y,
                          first_x=first_receiver_x, first_y=first_receiver_y, depth=receiver_depth,
                          what="receivers")
    return make_geometry(model, src, rec, kind=timing.pop("kind", "areal"), **timing)


LAYOUTS = ("surface", "ocean_bottom", "crosswell", "ring", "areal")


def acquisition(model: xr.Dataset, *, layout: str = "surface", n_shots: int, shot_spacing: float,
                n_receivers: int, receiver_spacing: float, source_depth: float = 0.0,
                receiver_depth: float = 0.0, first_shot_x: float | None = None,
                first_receiver_x: float | None = None, seafloor: float | None = None,
                source_well_x: float | None = None, receiver_well_x: float | None = None,
                first_shot_z: float | None = None, first_receiver_z: float | None = None,
                ring_inset: float | None = None, n_shots_y: int | None = None,
                shot_spacing_y: float | None = None, first_shot_y: float | None = None,
                n_receivers_y: int | None = None, receiver_spacing_y: float | None = None,
                first_receiver_y: float | None = None, **timing) -> xr.Dataset:
    """The geometry a study's settings describe: ``layout`` picks :func:`surface_geometry`,
    :func:`ocean_bottom_geometry` (receivers on ``seafloor``, or on the seafloor found in the
    model), :func:`crosswell_geometry` (spacings run down the wells), :func:`ring_geometry`
    (``ring_inset`` m inside the edges; the counts set the spacings) or, on a 3D model,
    :func:`areal_geometry` (grids of ``n_shots`` × ``n_shots_y`` sources and ``n_receivers`` ×
    ``n_receivers_y`` receivers); settings that the layout does not use are ignored."""
    lines = {"n_shots": n_shots, "shot_spacing": shot_spacing, "n_receivers": n_receivers,
             "receiver_spacing": receiver_spacing}
    if layout == "surface":
        return surface_geometry(model, **lines, source_depth=source_depth, receiver_depth=receiver_depth,
                                first_shot_x=first_shot_x, first_receiver_x=first_receiver_x, **timing)
    if layout == "ocean_bottom":
        return ocean_bottom_geometry(model, **lines, source_depth=source_depth, seafloor=seafloor,
                                     first_shot_x=first_shot_x, first_receiver_x=first_receiver_x, **timing)
    if layout == "crosswell":
        if source_well_x is None or receiver_well_x is None:
            raise InputError("crosswell layout needs source_well_x and receiver_well_x (m)")
        return crosswell_geometry(model, **lines, source_well_x=source_well_x, receiver_well_x=receiver_well_x,
                                  first_shot_z=first_shot_z, first_receiver_z=first_receiver_z, **timing)
    if layout == "ring":
        if ring_inset is None:
            raise InputError("ring layout needs ring_inset (m inside the model's edges)")
        return ring_geometry(model, n_shots=n_shots, n_receivers=n_receivers, inset=ring_inset, **timing)
    if layout == "areal":
        _check_3d(model)
        if n_shots_y is None or n_receivers_y is None:
            raise InputError("areal layout needs n_shots_y and n_receivers_y (source and receiver lines along y)")
        return areal_geometry(model, **lines, n_shots_y=n_shots_y, n_receivers_y=n_receivers_y,
                              shot_spacing_y=shot_spacing_y, receiver_spacing_y=receiver_spacing_y,
                              source_depth=source_depth, receiver_depth=receiver_depth,
                              first_shot_x=first_shot_x, first_shot_y=first_shot_y,
                              first_receiver_x=first_receiver_x, first_receiver_y=first_receiver_y, **timing)
    raise InputError(f"geometry layout {layout!r} is not one of {', '.join(LAYOUTS)}")


def shot_positions(geometry: xr.Dataset, shot: int,
                   dims: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Source (1, dim) and receiver (receiver, dim) positions of one shot, in metres."""
    n = geometry.sizes["shot"]
    if not 0 <= shot < n:
        raise InputError(f"shot index {shot} is out of range (geometry has {n} shots)")
    src, rec = _positions(geometry, dims, shot)
    return src.astype(np.float64), rec[0].astype(np.float64)
