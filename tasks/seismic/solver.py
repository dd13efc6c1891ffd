"""Shot simulation, and the per-process caches every modelling run shares.

Compiling an operator costs ≈1.5 s, more than a small shot, so operators are built once per
(operator, padded shape, spacing, space order, nbl, dtype, devito language/platform) and
reused with each model's ``m`` and damping profiles and each shot's sources, receivers and wavefield.
Building a :class:`~tasks.seismic.model.Model` (padding, ``m``, damping) costs ≈0.3 s on a 4001²
grid, so the pieces of a survey on one worker build it once.

The other modelling modules (:mod:`tasks.seismic.born`, :mod:`tasks.seismic.migration`,
:mod:`tasks.seismic.gradient`) use these caches through :func:`compiled_operator`,
:func:`thread_args` and :func:`shared_model`; :func:`clear_operator_cache` empties all of them.
"""

from __future__ import annotations

import hashlib
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

__all__ = [
    "add_noise",
    "clear_operator_cache",
    "compiled_operator",
    "forward",
    "shared_model",
    "simulate_shot",
    "simulate_shots",
    "survey_shots",
    "thread_args",
]

_OPERATORS: dict[tuple, Operator] = {}


def compiled_operator(name: str, model: Model, build: Callable[[Model], Operator]) -> Operator:
    """The operator ``build(model)``, compiled once per process and reused.

    Memoized by ``(name, *model.cache_key)``: one operator serves every :class:`Model` of the
    same padded shape, spacing, space order, nbl, dtype and devito language/platform. So
    ``name`` must name everything else that ``build`` bakes into the code (e.g.
    ``f"gradient_{factor}_{condition}"``), and callers pass the model's own functions (``m``,
    ``damp``, ...) to ``apply`` explicitly, never relying on the ones it was built with.
    """
    key = (name, *model.cache_key)
    op = _OPERATORS.get(key)
    if op is None:
        op = _OPERATORS[key] = build(model)
    return op


def thread_args(op: Operator, threads: int | None) -> dict:
    """The keyword arguments that run ``op.apply`` on ``threads`` OpenMP threads, with sparse-point
    injection on one thread.

    ``{"nthreads": threads}`` (none when ``threads`` is None: devito keeps the ``OMP_NUM_THREADS``
    seen when the shared operator was built), and ``{"nthreads_nonaffine": 1}`` when ``op`` has
    that parameter (an OpenMP build). Injection adds into the wavefield with ``omp atomic``: two
    receivers off the grid points (e.g. a spacing whose reciprocal float32 does not hold exactly,
    15 m or 30 m) add into one point in thread order, and the last bits of a run would differ from
    the next. Its cost is that of a few hundred points per time step. Pass them to every ``apply``.
    """
    names = {p.name for p in op.parameters}
    args = {"nthreads_nonaffine": 1} if "nthreads_nonaffine" in names else {}
    if threads is not None and "nthreads" in names:
        args["nthreads"] = int(threads)
    return args


def clear_operator_cache() -> None:
    """Forget every compiled operator, shared :class:`Model` and reused wavefield of this process."""
    _OPERATORS.clear()
    with _MODELS_LOCK:
        _MODELS.clear()
    _WORKSPACE.key, _WORKSPACE.objects = None, ()


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
    op = compiled_operator("forward", model, forward_operator)
    damp = {f.name: f for f in model.damp_axes}
    # time_m=1: the first update is u(2 dt), as devito's default for the three-buffer operators
    # (born, adjoint, devito's own solver), so that every operator injects the same samples
    op.apply(u=u, m=model.m, src=src, rec=rec, dt=model.dtype.type(dt), time_M=nt - 1,
             time_m=1, **damp, **thread_args(op, threads))
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


# The Models shared by the calls of this process, so that the pieces of a survey on one worker
# pad the model and fill m once, not once per piece. Keyed by content (see _content_key), so an
# edited or different array never gets a Model built from other values; the last two are kept.
_MODELS: OrderedDict[tuple, Model] = OrderedDict()
_MODELS_KEPT = 2
_MODELS_LOCK = threading.Lock()


def _content_key(model_ds: xr.Dataset) -> bytes | None:
    """sha256 of everything of ``model_ds`` that :class:`Model` and ``validate_model`` read: the
    dims, shape, dtype, units and bytes of ``vp`` and the values of its coordinates (None for a
    ``vp`` that has no plain numeric bytes to hash; such a model is not shared). Costs ≈0.4 ms on
    a 401² float32 model, ≈35 ms on 4001² (sha256 with SHA-NI, ≈1.9 GB/s; blake2b is ≈1.5x slower)."""
    var = model_ds.variables["vp"]
    vp = np.asarray(var.values)
    if vp.dtype.kind not in "biuf":
        return None
    h = hashlib.sha256(repr((var.dims, vp.shape, vp.dtype.str, var.attrs.get("units"))).encode())
    for d in var.dims:
        h.update(np.ascontiguousarray(model_ds[d].values, dtype=np.float64))
    h.update(np.ascontiguousarray(vp))
    return h.digest()


def shared_model(model_ds: xr.Dataset, geometry_ds: xr.Dataset, *, space_order: int = 8,
                 nbl: int = 40, dtype: type = np.float32) -> Model:
    """The :class:`Model` of ``model_ds``, cached per process by the content of ``vp`` and its
    grid, after checking ``geometry_ds`` against it.

    Two calls with equal velocities and coordinates (the same or distinct arrays, writeable or
    not) and equal ``space_order``, ``nbl`` and ``dtype`` get the same Model; a changed value,
    coordinate or setting gets a new one. The key is a sha256 of ``vp``'s bytes and its
    coordinates, computed on every call (≈35 ms on a 4001² float32 model, against ≈0.3 s to
    build one); the last two Models are kept.

    Every call validates: on a miss the model fully (``validate_model``), and on every call that
    ``geometry_ds``'s positions are inside it, its ``dt`` is below the CFL limit and its
    ``f_max`` is resolved by the grid (dispersion), a hit using the cached velocity range and
    spacing instead of scanning ``vp`` again.

    The Model is shared: do not change its ``m`` or damping (build a :class:`Model` directly
    for one to change). Its ``dataset`` is the one of the call that built it.

    Raises
    ------
    InputError
        If the model or the geometry is invalid (positions outside it, ``dt`` above the CFL, fewer
        than 2 points per wavelength at ``f_max``).

    Warns
    -----
    DispersionWarning
        If the grid is too coarse for the geometry's ``f_max``.
    """
    content = _content_key(model_ds)
    key = None if content is None else (content, int(space_order), int(nbl), np.dtype(dtype).str)
    with _MODELS_LOCK:
        model = None if key is None else _MODELS.get(key)
        if model is not None:
            _MODELS.move_to_end(key)
    f_max = float(geometry_ds.attrs["f_max"])
    if model is not None:
        validate_geometry(model_ds, geometry_ds, space_order, vp_max=model.vp_max, spacing=model.spacing)
        check_dispersion(model.vp_min, model.spacing, f_max, space_order)
        return model
    validate_geometry(model_ds, geometry_ds, space_order)
    check_dispersion(float(model_ds.vp.min()), model_spacing(model_ds), f_max, space_order)
    model = Model(model_ds, space_order=space_order, nbl=nbl, dtype=dtype)
    if key is not None:
        with _MODELS_LOCK:
            _MODELS[key] = model
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
    model = shared_model(model_ds, geometry_ds, space_order=space_order, nbl=nbl, dtype=dtype)
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
    model = shared_model(model_ds, geometry_ds, space_order=space_order, nbl=nbl, dtype=dtype)
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
    model = shared_model(model_ds, geometry_ds, space_order=space_order, nbl=nbl, dtype=dtype)
    ds = _records(model, geometry_ds, range(len(labels)), labels, noise_snr_db, seed, threads)
    ds.attrs.update(_attrs(geometry_ds, space_order, nbl, noise_snr_db, seed))
    return ds
