"""Shot simulation: a facade that memoizes compiled operators per process.

Compiling an operator costs ≈1.5 s, more than a small shot, so operators are built once per
(operator, padded shape, spacing, space order, nbl, dtype, devito language/platform) and
reused with each model's ``m`` and damping profiles and each shot's sources, receivers and wavefield.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import numpy as np
import xarray as xr

from strata_errors import InputError
from tasks.seismic.geometry import shot_positions, validate_geometry
from tasks.seismic.model import Model, model_spacing
from tasks.seismic.operators import forward_operator, point_set, wavefield
from tasks.seismic.stencil import check_dispersion

if TYPE_CHECKING:
    from devito import Operator, TimeFunction

__all__ = ["add_noise", "clear_operator_cache", "forward", "simulate_shot", "simulate_shots", "survey_shots"]

_OPERATORS: dict[tuple, Operator] = {}


def _operator(name: str, model: Model, build: Callable[[Model], Operator]) -> Operator:
    key = (name, *model.cache_key)
    if key not in _OPERATORS:
        _OPERATORS[key] = build(model)
    return _OPERATORS[key]


def clear_operator_cache() -> None:
    """Forget every compiled operator (and shared Model) of this process."""
    _OPERATORS.clear()
    _MODELS.clear()
    _WORKSPACE.key, _WORKSPACE.objects = None, ()


def _threads(op: Operator, threads: int | None) -> dict:
    """``nthreads`` for ``apply`` (devito otherwise keeps OMP_NUM_THREADS of the first build)."""
    if threads is None or "nthreads" not in {p.name for p in op.parameters}:
        return {}
    return {"nthreads": int(threads)}


class _Workspace(threading.local):
    """Per thread: the last wavefield and point sets of forward(), reused by the next call on
    the same Model with the same sizes (creating devito objects costs ~20 ms a shot, and
    devito's symbol cache then runs gc.collect: slow in a worker holding Prefect and Dask)."""

    key: tuple | None = None
    objects: tuple = ()


_WORKSPACE = _Workspace()


def _forward_objects(model: Model, nt: int, nsrc: int, nrec: int) -> tuple:
    key = (id(model), nt, nsrc, nrec)
    if _WORKSPACE.key == key and _WORKSPACE.objects[0] is model:
        _, src, rec, u = _WORKSPACE.objects
        u.data[:] = 0.0
        return src, rec, u
    src = point_set(model, "src", np.zeros((nsrc, model.grid.dim)), nt)
    rec = point_set(model, "rec", np.zeros((nrec, model.grid.dim)), nt)
    u = wavefield(model, buffers=2)
    _WORKSPACE.key, _WORKSPACE.objects = key, (model, src, rec, u)
    return src, rec, u


def forward(model: Model, src_positions: np.ndarray, wavelet: np.ndarray,
            rec_positions: np.ndarray, dt: float, *,
            threads: int | None = None) -> tuple[np.ndarray, TimeFunction]:
    """One forward run: traces (time, receiver) sampled every ``dt`` and the last wavefield
    (reused by the next call in this thread: copy it to keep it).

    ``threads``: OpenMP threads for this run (with ``DEVITO_LANGUAGE=openmp``).
    """
    nt = len(wavelet)
    src_positions, rec_positions = np.atleast_2d(src_positions), np.atleast_2d(rec_positions)
    src, rec, u = _forward_objects(model, nt, len(src_positions), len(rec_positions))
    src.coordinates.data[:] = np.asarray(src_positions, dtype=model.dtype)
    src.data[:] = np.asarray(wavelet, dtype=model.dtype)[:, None]
    rec.coordinates.data[:] = np.asarray(rec_positions, dtype=model.dtype)
    op = _operator("forward", model, forward_operator)
    damp = {f.name: f for f in model.damp_axes}
    # time_m=1: the first update is u(2 dt), as devito's default for the three-buffer operators
    # (born, adjoint, devito's own solver), so that every operator injects the same samples
    op.apply(u=u, m=model.m, src=src, rec=rec, dt=model.dtype.type(dt), time_M=nt - 1,
             time_m=1, **damp, **_threads(op, threads))
    return np.array(rec.data), u


def add_noise(data: np.ndarray, snr_db: float, rng: np.random.Generator) -> np.ndarray:
    """``data`` plus white Gaussian noise at ``snr_db`` (10 log10 of mean-square ratio)."""
    power = float(np.mean(np.square(data, dtype=np.float64)))
    sigma = np.sqrt(power / 10.0 ** (snr_db / 10.0))
    return (data + sigma * rng.standard_normal(data.shape)).astype(data.dtype)


def _records(model: Model, geometry: xr.Dataset, positions: Sequence[int], labels: Sequence[int],
             noise_snr_db: float | None, seed: int, threads: int | None) -> xr.Dataset:
    """Shot records ``data`` (shot, receiver, time) of the shots at ``positions`` of ``geometry``,
    labelled (coordinate and noise seed) ``labels``; built once, not concatenated per shot."""
    dt = float(geometry.attrs["dt"])
    wavelet = geometry.wavelet.values
    data = np.empty((len(positions), geometry.sizes["receiver"], len(wavelet)), dtype=np.float32)
    srcs, recs = [], []
    for i, (shot, label) in enumerate(zip(positions, labels, strict=True)):
        src, rec = shot_positions(geometry, int(shot), model.dims)
        traces, _ = forward(model, src, wavelet, rec, dt, threads=threads)
        data[i] = traces.T  # (receiver, time), one copy
        if noise_snr_db is not None:
            rng = np.random.default_rng(np.random.SeedSequence([seed, int(label)]))
            data[i] = add_noise(data[i], noise_snr_db, rng)
        srcs.append(src[0])
        recs.append(rec)
    src_xy, rec_xy = np.stack(srcs), np.stack(recs)
    gv = geometry.variables  # Variables, not DataArrays: no alignment work per piece
    coords: dict = {"shot": xr.Variable("shot", np.asarray(labels, dtype=np.int64), {"long_name": "shot index"}),
                    "receiver": gv["receiver"], "time": gv["time"]}
    for i, d in enumerate(model.dims):
        coords[f"src_{d}"] = xr.Variable("shot", src_xy[:, i], {"units": "m"})
        coords[f"rec_{d}"] = xr.Variable(("shot", "receiver"), rec_xy[:, :, i], {"units": "m"})
    attrs = {"long_name": "pressure", "units": "1"}
    return xr.Dataset({"data": xr.Variable(("shot", "receiver", "time"), data, attrs)}, coords=coords)


# The Models built from read-only velocity arrays (a worker's cached inputs), so that the
# pieces of a survey on one worker pad the model and fill m once, not once per piece (0.3 s on
# a 4001² model). Keyed by the array object itself, held here so that its id is not reused.
_MODELS: OrderedDict[tuple, tuple[np.ndarray, Model]] = OrderedDict()
_MODELS_KEPT = 2


def _model(model_ds: xr.Dataset, geometry: xr.Dataset, space_order: int, nbl: int,
           dtype: type) -> Model:
    """The Model of ``model_ds``, after checking ``geometry`` against it (shared between calls
    when its ``vp`` is a read-only array, and then not validated again: callers must not
    modify it)."""
    vp = model_ds.variables["vp"].values
    shared = isinstance(vp, np.ndarray) and not vp.flags.writeable
    key = hit = None
    if shared:
        axes = []
        for d in model_ds.vp.dims:  # origin, step and length per axis (uniformity checked on a miss)
            c = np.asarray(model_ds.variables[d].values)
            axes.append((float(c[0]), float(c[1] - c[0]) if c.size > 1 else 0.0, c.size))
        key = (id(vp), *axes, int(space_order), int(nbl), np.dtype(dtype).str)
        hit = _MODELS.get(key)
    if hit is not None and hit[0] is vp:
        _MODELS.move_to_end(key)
        model = hit[1]
        validate_geometry(model_ds, geometry, space_order, vp_max=model.vp_max, spacing=model.spacing)
        check_dispersion(model.vp_min, model.spacing, float(geometry.attrs["f_max"]), space_order)
        return model
    validate_geometry(model_ds, geometry, space_order)
    check_dispersion(float(model_ds.vp.min()), model_spacing(model_ds),
                     float(geometry.attrs["f_max"]), space_order)
    model = Model(model_ds, space_order=space_order, nbl=nbl, dtype=dtype)
    if shared:
        _MODELS[key] = (vp, model)  # the array held here, so that its id is not reused
        while len(_MODELS) > _MODELS_KEPT:
            _MODELS.popitem(last=False)
    return model


def _attrs(geometry: xr.Dataset, space_order: int, nbl: int,
           noise_snr_db: float | None, seed: int) -> dict:
    attrs = {"dt": float(geometry.attrs["dt"]), "space_order": space_order, "nbl": nbl,
             "seed": seed}
    if noise_snr_db is not None:
        attrs["noise_snr_db"] = float(noise_snr_db)
    return attrs


def simulate_shot(model_ds: xr.Dataset, geometry_ds: xr.Dataset, shot_index: int, *,
                  space_order: int = 8, nbl: int = 40, noise_snr_db: float | None = None,
                  seed: int = 0, dtype: type = np.float32,
                  threads: int | None = None) -> xr.Dataset:
    """Shot record ``data`` (receiver, time) of one shot; noise seeded by (seed, shot_index)."""
    model = _model(model_ds, geometry_ds, space_order, nbl, dtype)
    ds = _records(model, geometry_ds, [int(shot_index)], [int(shot_index)], noise_snr_db, seed,
                  threads).isel(shot=0)
    ds.attrs.update(_attrs(geometry_ds, space_order, nbl, noise_snr_db, seed))
    return ds


def simulate_shots(model_ds: xr.Dataset, geometry_ds: xr.Dataset, shots: Sequence[int], *,
                   space_order: int = 8, nbl: int = 40, noise_snr_db: float | None = None,
                   seed: int = 0, dtype: type = np.float32,
                  threads: int | None = None) -> xr.Dataset:
    """Shot records ``data`` (shot, receiver, time) of the given shots, one model build."""
    shots = [int(s) for s in shots]
    if not shots:
        raise InputError("no shots to simulate (empty shot list)")
    model = _model(model_ds, geometry_ds, space_order, nbl, dtype)
    ds = _records(model, geometry_ds, shots, shots, noise_snr_db, seed, threads)
    ds.attrs.update(_attrs(geometry_ds, space_order, nbl, noise_snr_db, seed))
    return ds


def survey_shots(model_ds: xr.Dataset, geometry_ds: xr.Dataset, *, space_order: int = 8,
                 nbl: int = 40, noise_snr_db: float | None = None, seed: int = 0,
                 dtype: type = np.float32, threads: int | None = None) -> xr.Dataset:
    """Shot records ``data`` (shot, receiver, time) of every shot present in ``geometry_ds``.

    ``geometry_ds`` may be a slice of a survey's geometry (e.g. one piece of a mapped step):
    each result keeps the geometry's ``shot`` coordinate value, and its noise is seeded by
    ``SeedSequence([seed, shot])`` with that value, so a shot's record does not depend on how
    the survey is split into pieces.
    """
    if geometry_ds.sizes.get("shot", 0) == 0:
        raise InputError("no shots to simulate (the geometry has zero shots)")
    labels = [int(s) for s in np.asarray(geometry_ds["shot"].values)]
    model = _model(model_ds, geometry_ds, space_order, nbl, dtype)
    ds = _records(model, geometry_ds, range(len(labels)), labels, noise_snr_db, seed, threads)
    ds.attrs.update(_attrs(geometry_ds, space_order, nbl, noise_snr_db, seed))
    return ds
