"""Least-squares RTM: preconditioned CGLS on the Born normal equations, as map and reduce steps.

LSRTM minimises ``1/2 ||J x - r0||^2`` over the image ``x`` (s²/m², the model grid), with ``J``
the Born operator of every shot stacked (:func:`tasks.seismic.born.born`) at the background
``m0`` and ``r0`` the data residual ``d - F(m0)`` (or ``d``). It runs CGLS on ``A = J P`` with
the right preconditioner ``P = mute(z) / sqrt(illum + epsilon * max(illum))`` (``illum``: the
summed source illumination), ``x = P y``. Per iteration, with ``s = P^T J^T r``:

``q = J P p``; ``alpha = gamma / ||q||^2``; ``y += alpha p``; ``s -= alpha P J^T q``;
``||r||^2 -= alpha gamma``; ``gamma' = ||s||^2``; ``p = s + (gamma' / gamma) p``.

The data residual ``r`` is never held: ``||r||^2`` follows from the recurrence (exact, since
``<r, q> = <s, p> = gamma``). A flow runs the steps

1. :func:`lsrtm_start` per slice of shots (map): ``J_s^T r0_s``, illumination, ``||r0_s||^2``;
2. :func:`lsrtm_setup` on their concatenation (reduce): the iteration-0 state;
3. per iteration, :func:`lsrtm_apply` per slice of shots (map: per shot a Born run, which also
   propagates the background, then ``J^T`` of it: the background forward again with every step stored,
   and the adjoint) then :func:`lsrtm_update` on the concatenation (reduce): the next state.

Every state is a self-contained dataset (the iteration, the shots, ``cg_y``, ``cg_s``, ``cg_p``
for ``y``, ``s``, ``p`` (prefixed: ``y`` is a dimension of 3D models), ``P``, ``gamma``, the
residual history), so a flow stores each one and resumes at the last stored.
:func:`lsrtm_update` checks that an apply result was computed from the very state it is given
(iteration, shots, and a digest of ``p`` and ``P``). :func:`lsrtm_images` gathers states for a
report. Inner products are plain sums over grid points (those of the dot tests of ``J``).
Everything is dimension-generic: ``(x, z)`` or ``(x, y, z)``, the mute acting along ``z``.
"""

from __future__ import annotations

import hashlib
import math

import numpy as np
import xarray as xr

from strata_errors import InputError
from tasks.seismic.born import backpropagate, born, collect_if_large, forward_snapshots
from tasks.seismic.geometry import shot_positions
from tasks.seismic.migration import mute_weights, shot_traces, with_shot_dim
from tasks.seismic.solver import shared_model

__all__ = ["lsrtm_apply", "lsrtm_images", "lsrtm_setup", "lsrtm_start", "lsrtm_update"]

_FIELDS = ("cg_y", "cg_s", "cg_p", "preconditioner")
_STATE = (*_FIELDS, "image", "gamma", "residual_norm2", "residual_norm")


def _dot(a: np.ndarray, b: np.ndarray) -> float:
    """``<a, b>`` in float64, exactly rounded (``math.fsum``): BLAS and numpy's pairwise sums round
    differently with the array's alignment and the thread count, and a stored norm must not differ
    between a serial run and a run on two workers."""
    prod = np.asarray(a, dtype=np.float64).ravel() * np.asarray(b, dtype=np.float64).ravel()
    return math.fsum(prod.tolist())


def _labels(ds: xr.Dataset, what: str) -> list[int]:
    if "shot" not in ds.coords or ds.sizes.get("shot", 0) == 0:
        raise InputError(f"{what} has no shots (a 'shot' dimension with at least one shot)")
    labels = [int(s) for s in np.atleast_1d(ds["shot"].values)]
    if len(set(labels)) != len(labels):
        dup = sorted({s for s in labels if labels.count(s) > 1})
        raise InputError(f"{what} has duplicated shots {dup} (a piece concatenated twice?)")
    return labels


def _require(ds: xr.Dataset, names: tuple[str, ...], what: str) -> None:
    missing = [n for n in names if n not in ds]
    if missing:
        raise InputError(f"{what} lacks {missing}")


def _state_shots(state: xr.Dataset) -> list[int]:
    return [int(s) for s in np.atleast_1d(state.attrs["shots"])]


def _image_dims(state: xr.Dataset) -> tuple[str, ...]:
    return tuple(state["cg_p"].dims)


def _check_grid(dims: tuple[str, ...], a: xr.Dataset, b: xr.Dataset, what: str) -> None:
    """Raise unless ``a`` and ``b`` have the same dims ``dims`` with equal coordinate values."""
    for d in dims:
        if d not in b.coords or d not in a.coords:
            raise InputError(f"{what}: grid dimension {d!r} is missing "
                             f"(dims {dims} against {tuple(b.sizes)})")
        x, y = np.asarray(a[d].values, np.float64), np.asarray(b[d].values, np.float64)
        tol = 1e-9 * max(1.0, float(np.abs(x).max(initial=0.0)))
        if x.shape != y.shape or not np.allclose(x, y, rtol=0.0, atol=tol):
            raise InputError(f"{what}: grids differ along {d!r} ({len(x)} points from "
                             f"{x[0]:g} to {x[-1]:g} m against {len(y)} from {y[0]:g} to "
                             f"{y[-1]:g} m)")


def _digest(state: xr.Dataset) -> str:
    """What identifies a state for its apply step: its iteration, ``p`` and ``P`` (sha256)."""
    dims = _image_dims(state)
    h = hashlib.sha256(repr((int(state.attrs["iteration"]), dims)).encode())
    for name in ("cg_p", "preconditioner"):
        h.update(np.ascontiguousarray(state[name].transpose(*dims).values, dtype=np.float64))
    return h.hexdigest()[:32]


def _coords(model_ds: xr.Dataset, dims: tuple[str, ...], labels: list[int]) -> dict:
    return {"shot": ("shot", np.asarray(labels, dtype=np.int64), {"long_name": "shot index"}),
            **{d: model_ds[d] for d in dims}}


def lsrtm_start(background_ds: xr.Dataset, geometry_ds: xr.Dataset, shot_records_ds: xr.Dataset,
                *, space_order: int = 8, nbl: int = 40, subtract_background: bool = True,
                dtype: type = np.float32, threads: int | None = None) -> xr.Dataset:
    """The right-hand side of LSRTM for every shot of ``shot_records_ds`` (a slice of a survey).

    One forward run (every time step stored) and one adjoint run per shot in the background.

    Parameters
    ----------
    background_ds : xr.Dataset
        Background model ``vp`` (m/s); the Born operator ``J`` is taken at it.
    geometry_ds : xr.Dataset
        The survey's geometry (or a slice of it holding the records' shots).
    shot_records_ds : xr.Dataset
        ``data`` (shot, receiver, time), as :func:`tasks.seismic.migration.migrate_shot` reads.
    subtract_background : bool
        Invert ``r0 = d - F(m0)`` (removes the direct wave) instead of ``r0 = d``.
    dtype : type
        Floating type of the wave solvers; ``gradient`` and ``illumination`` are stored in it.

    Returns
    -------
    xr.Dataset
        ``gradient`` (shot, *dims) ``= J_s^T r0_s``, ``illumination`` (shot, *dims)
        ``= sum_t u^2`` and ``residual_norm2`` (shot,) float64 ``= ||r0_s||^2``.
    """
    geometry_ds = with_shot_dim(geometry_ds)
    model = shared_model(background_ds, geometry_ds, space_order=space_order, nbl=nbl, dtype=dtype)
    dt = float(geometry_ds.attrs["dt"])
    wavelet = np.asarray(geometry_ds.wavelet.values, dtype=np.float64)
    labels, grads, illums, norms = [], [], [], []
    for label, src, rec, data in shot_traces(geometry_ds, shot_records_ds, model.dims):
        state = forward_snapshots(model, src, wavelet, rec, dt, factor=1, threads=threads)
        residual = data - state.traces if subtract_background else data
        residual = np.asarray(residual, dtype=model.dtype)        # what J^T reads
        grads.append(backpropagate(model, state, rec, residual, dt, condition="born",
                                   threads=threads))
        illums.append(np.asarray(state.illumination))
        norms.append(_dot(residual, residual))
        labels.append(label)
        nbytes = state.wavefield_bytes
        del state
        collect_if_large(nbytes)
    if not labels:
        raise InputError("no shot records to start LSRTM from (zero shots)")
    dims = ("shot", *model.dims)
    return xr.Dataset(
        {"gradient": (dims, np.stack(grads), {"long_name": "J^T r0 per shot (Born adjoint)",
                                              "units": "m^2/s^2"}),
         "illumination": (dims, np.stack(illums), {"long_name": "source illumination sum_t u^2",
                                                   "units": "1"}),
         "residual_norm2": ("shot", np.asarray(norms, dtype=np.float64),
                            {"long_name": "squared norm of the data residual r0", "units": "1"})},
        coords=_coords(background_ds, model.dims, labels),
        attrs={"space_order": int(space_order), "nbl": int(nbl),
               "subtract_background": int(subtract_background), "dtype": np.dtype(dtype).name})


def _state(dims: tuple[str, ...], coords: dict, fields: dict[str, np.ndarray],
           history: list[float], residual_norm2: float, gamma: float, attrs: dict) -> xr.Dataset:
    iteration = len(history) - 1
    image = (fields["preconditioner"] * fields["cg_y"]).astype(np.float32)
    data = {"image": (dims, image, {"long_name": "LSRTM image x = P y", "units": "s^2/m^2"})}
    data.update({n: (dims, np.asarray(fields[n], dtype=np.float64)) for n in _FIELDS})
    data["residual_norm"] = ("iteration", np.asarray(history, dtype=np.float64),
                             {"long_name": "data residual norm ||J x - r0|| (CGLS recurrence)"})
    data["residual_norm2"] = ((), np.float64(residual_norm2), {"long_name": "||r||^2 now"})
    data["gamma"] = ((), np.float64(gamma), {"long_name": "CGLS gamma = ||s||^2"})
    coords = {**coords, "iteration": ("iteration", np.arange(iteration + 1, dtype=np.int64))}
    return xr.Dataset(data, coords=coords, attrs={**attrs, "iteration": iteration})


def lsrtm_setup(start_ds: xr.Dataset, *, mute_depth: float | None = None, mute_taper: float = 0.0,
                epsilon: float = 1e-3) -> xr.Dataset:
    """The iteration-0 CGLS state from the :func:`lsrtm_start` results of every shot.

    Parameters
    ----------
    start_ds : xr.Dataset
        :func:`lsrtm_start` of all the shots (its pieces concatenated along ``shot``).
    mute_depth, mute_taper : float, optional
        The image is zero above ``mute_depth`` m, tapered to full weight at ``mute_depth +
        mute_taper`` m (:func:`tasks.seismic.migration.mute_weights`); None: no mute.
    epsilon : float
        Stabilisation of ``P = mute / sqrt(illum + epsilon * max(illum))``, > 0.

    Returns
    -------
    xr.Dataset
        ``image`` (*dims, float32, zero), ``cg_y``, ``cg_s``, ``cg_p``, ``preconditioner`` (*dims,
        float64), ``residual_norm`` (iteration,) ``= [||r0||]``, 0-d ``residual_norm2`` and
        ``gamma``; attrs ``iteration = 0`` and ``shots`` (the shot labels every iteration needs).
    """
    if not epsilon > 0:
        raise InputError(f"illumination stabilisation epsilon must be > 0, got {epsilon}")
    labels = _labels(start_ds, "the LSRTM start dataset")
    _require(start_ds, ("gradient", "illumination", "residual_norm2"), "the LSRTM start dataset")
    start_ds = start_ds.sortby("shot")
    dims = tuple(d for d in start_ds["gradient"].dims if d != "shot")
    grad = start_ds["gradient"].astype(np.float64).sum("shot").transpose(*dims).values
    illum = start_ds["illumination"].astype(np.float64).sum("shot").transpose(*dims).values
    r2 = math.fsum(start_ds["residual_norm2"].values.astype(np.float64).tolist())
    if not (np.all(np.isfinite(grad)) and np.all(np.isfinite(illum)) and np.isfinite(r2)):
        raise InputError("the LSRTM start dataset has non-finite values")
    if not illum.max() > 0:
        raise InputError("the summed source illumination is zero everywhere")
    weight = np.ones(illum.shape)
    if mute_depth is not None:
        if "z" not in dims:
            raise InputError(f"a mute needs a 'z' dimension, the image has {dims}")
        w = mute_weights(start_ds["z"].values, float(mute_depth), float(mute_taper))
        weight = weight * w.reshape([-1 if d == "z" else 1 for d in dims])
    precond = weight / np.sqrt(np.maximum(illum, 0.0) + epsilon * illum.max())
    s = precond * grad
    fields = {"cg_y": np.zeros(illum.shape), "cg_s": s, "cg_p": s.copy(),
              "preconditioner": precond}
    attrs = {"algorithm": "CGLS, right preconditioner P = mute / sqrt(illum + eps max illum)",
             "shots": labels, "epsilon": float(epsilon), "mute_taper": float(mute_taper),
             "alpha": 0.0, "beta": 0.0, "stopped": 0}
    if mute_depth is not None:
        attrs["mute_depth"] = float(mute_depth)
    coords = {d: start_ds[d] for d in dims}
    return _state(dims, coords, fields, [float(np.sqrt(r2))], r2, _dot(s, s), attrs)


def lsrtm_apply(state_ds: xr.Dataset, background_ds: xr.Dataset, geometry_ds: xr.Dataset, *,
                space_order: int = 8, nbl: int = 40, dtype: type = np.float32,
                threads: int | None = None) -> xr.Dataset:
    """The normal operator on the search direction, per shot of ``geometry_ds`` (a slice).

    Per shot: one Born run ``q_s = J_s (P p)`` and one forward (every step stored) and adjoint
    run for ``J_s^T q_s``. Use the same background, ``space_order``, ``nbl`` and ``dtype`` as
    :func:`lsrtm_start`.

    Parameters
    ----------
    state_ds : xr.Dataset
        The current state (:func:`lsrtm_setup` or :func:`lsrtm_update`).
    geometry_ds : xr.Dataset
        The geometry of the shots to run (a slice; its ``shot`` dimension may be selected away).

    Returns
    -------
    xr.Dataset
        ``normal`` (shot, *dims) ``= J_s^T q_s`` (in ``dtype``) and ``q_norm2`` (shot,) float64
        ``= ||q_s||^2``; attrs ``iteration`` and ``state_digest`` of the state.
    """
    _require(state_ds, _STATE, "the LSRTM state")
    geometry_ds = with_shot_dim(geometry_ds)
    labels = _labels(geometry_ds, "the geometry")
    shots = _state_shots(state_ds)
    extra = [s for s in labels if s not in shots]
    if extra:
        raise InputError(f"shots {extra} of the geometry are not shots of the LSRTM state "
                         f"({len(shots)} shots, {shots[0]}..{shots[-1]})")
    model = shared_model(background_ds, geometry_ds, space_order=space_order, nbl=nbl, dtype=dtype)
    dims = _image_dims(state_ds)
    if sorted(dims) != sorted(model.dims):
        raise InputError(f"the LSRTM state has dims {dims}, the background model {model.dims}")
    _check_grid(model.dims, state_ds, background_ds, "LSRTM state against the background model")
    direction = (state_ds["preconditioner"] * state_ds["cg_p"]).transpose(*model.dims).values
    dt = float(geometry_ds.attrs["dt"])
    wavelet = np.asarray(geometry_ds.wavelet.values, dtype=np.float64)
    normals, norms = [], []
    for k in range(len(labels)):
        src, rec = shot_positions(geometry_ds, k, model.dims)
        q = born(model, direction, src, wavelet, rec, dt, threads=threads)
        fwd = forward_snapshots(model, src, wavelet, rec, dt, factor=1, threads=threads)
        normals.append(backpropagate(model, fwd, rec, q, dt, condition="born", threads=threads))
        q64 = q.astype(np.float64)
        norms.append(_dot(q64, q64))
        nbytes = fwd.wavefield_bytes
        del fwd
        collect_if_large(nbytes)
    out_dims = ("shot", *model.dims)
    return xr.Dataset(
        {"normal": (out_dims, np.stack(normals), {"long_name": "J^T J P p per shot",
                                                  "units": "1"}),
         "q_norm2": ("shot", np.asarray(norms, dtype=np.float64),
                     {"long_name": "||J P p||^2 per shot", "units": "1"})},
        coords=_coords(background_ds, model.dims, labels),
        attrs={"iteration": int(state_ds.attrs["iteration"]), "state_digest": _digest(state_ds),
               "space_order": int(space_order), "nbl": int(nbl), "dtype": np.dtype(dtype).name})


def lsrtm_update(state_ds: xr.Dataset, apply_ds: xr.Dataset) -> xr.Dataset:
    """The next CGLS state from a state and the :func:`lsrtm_apply` results of all its shots.

    With ``gamma = 0`` (zero data, or converged) or ``||q||^2 = 0`` the step is ``alpha = 0``:
    the state is kept (attr ``stopped = 1``) and only the iteration and history advance.

    Returns
    -------
    xr.Dataset
        The state of iteration ``k + 1``: ``image = P y`` (float32), ``cg_y``, ``cg_s``, ``cg_p``,
        ``preconditioner``, ``gamma``, ``residual_norm2`` and ``residual_norm`` extended by
        ``sqrt(max(||r||^2 - alpha gamma, 0))``; attrs ``alpha`` and ``beta`` of the step.

    Raises
    ------
    InputError
        If ``apply_ds`` was not computed from ``state_ds`` (iteration, digest), does not hold
        every shot of the state exactly once, or is on another grid.
    """
    _require(state_ds, _STATE, "the LSRTM state")
    _require(apply_ds, ("normal", "q_norm2"), "the LSRTM apply step")
    iteration = int(state_ds.attrs["iteration"])
    if "iteration" not in apply_ds.attrs or int(apply_ds.attrs["iteration"]) != iteration:
        raise InputError(f"the apply step is of iteration {apply_ds.attrs.get('iteration')}, "
                         f"the LSRTM state of iteration {iteration}")
    if apply_ds.attrs.get("state_digest") != _digest(state_ds):
        raise InputError(f"the apply step of iteration {iteration} was computed from another "
                         "LSRTM state (its p or preconditioner differ)")
    shots, got = _state_shots(state_ds), _labels(apply_ds, "the apply step")
    if sorted(got) != sorted(shots):
        missing = sorted(set(shots) - set(got))
        extra = sorted(set(got) - set(shots))
        raise InputError(f"the apply step of iteration {iteration} must hold every shot of the "
                         f"state once: missing {missing}, not in the state {extra}")
    dims = _image_dims(state_ds)
    normal_dims = tuple(d for d in apply_ds["normal"].dims if d != "shot")
    if sorted(normal_dims) != sorted(dims):
        raise InputError(f"the apply step has dims {normal_dims}, the LSRTM state {dims}")
    _check_grid(dims, state_ds, apply_ds, "apply step against the LSRTM state")
    apply_ds = apply_ds.sortby("shot")
    normal = apply_ds["normal"].astype(np.float64).sum("shot").transpose(*dims).values
    qq = math.fsum(apply_ds["q_norm2"].values.astype(np.float64).tolist())
    if not (np.all(np.isfinite(normal)) and np.isfinite(qq)):
        raise InputError(f"the apply step of iteration {iteration} has non-finite values")
    f = {n: np.asarray(state_ds[n].transpose(*dims).values, dtype=np.float64) for n in _FIELDS}
    gamma = float(state_ds["gamma"])
    r2 = float(state_ds["residual_norm2"])
    alpha = beta = 0.0
    if gamma > 0 and qq > 0:
        alpha = gamma / qq
        f["cg_y"] = f["cg_y"] + alpha * f["cg_p"]
        f["cg_s"] = f["cg_s"] - alpha * f["preconditioner"] * normal
        r2 = max(r2 - alpha * gamma, 0.0)
        gamma_next = _dot(f["cg_s"], f["cg_s"])
        beta = gamma_next / gamma
        f["cg_p"] = f["cg_s"] + beta * f["cg_p"]
        gamma = gamma_next
    history = [float(v) for v in state_ds["residual_norm"].values] + [float(np.sqrt(r2))]
    attrs = {**state_ds.attrs, "alpha": alpha, "beta": beta, "stopped": int(alpha == 0.0)}
    attrs.pop("iteration")
    coords = {d: state_ds[d] for d in dims}
    return _state(dims, coords, f, history, r2, gamma, attrs)


def lsrtm_images(*states: xr.Dataset) -> xr.Dataset:
    """The images and residuals of LSRTM states (of one run), in the order given.

    Returns
    -------
    xr.Dataset
        ``image`` (iteration, *dims) float32, ``residual_norm`` (iteration,) and
        ``relative_residual`` (iteration,) ``= ||r_k|| / ||r0||`` (0 when ``r0 = 0``).
    """
    if not states:
        raise InputError("no LSRTM states to gather")
    dims = tuple(states[0]["image"].dims)
    r0 = float(states[0]["residual_norm"].values[0])
    for st in states[1:]:
        if sorted(st["image"].dims) != sorted(dims):
            raise InputError(f"LSRTM states have dims {dims} and {tuple(st['image'].dims)}")
        _check_grid(dims, states[0], st, "LSRTM states")
        if float(st["residual_norm"].values[0]) != r0:
            raise InputError("LSRTM states of different runs (their initial residuals differ)")
    iterations = np.asarray([int(st.attrs["iteration"]) for st in states], dtype=np.int64)
    norms = np.asarray([float(st["residual_norm"].values[-1]) for st in states])
    images = np.stack([st["image"].transpose(*dims).values.astype(np.float32) for st in states])
    relative = norms / r0 if r0 > 0 else np.zeros_like(norms)
    return xr.Dataset(
        {"image": (("iteration", *dims), images, {"long_name": "LSRTM image",
                                                  "units": "s^2/m^2"}),
         "residual_norm": ("iteration", norms, {"long_name": "data residual norm"}),
         "relative_residual": ("iteration", relative, {"long_name": "||r_k|| / ||r_0||"})},
        coords={"iteration": iterations, **{d: states[0][d] for d in dims}},
        attrs={"shots": list(states[0].attrs.get("shots", [])), "n_states": len(states)})
