"""Linearized modelling runs: forward with snapshots, adjoint, Born (J dm), back-propagation.

Every run reuses compiled operators through :func:`tasks.seismic.solver.compiled_operator`.
Arrays of traces are ``(time, point)``; fields such as ``dm`` and images are on the model's
unpadded ``(x, z)`` grid. The forward wavefield is held as snapshots every ``factor`` steps
(``factor = 1``: full storage, the exact gradient); :func:`snapshot_factor` picks the factor
from the Nyquist rate of the wavelet's ``f_max`` (≈ 2.75 f0 for a Ricker), not of ``f0``.
Exact checkpointing (pyrevolve with devito's ``CheckpointOperator``) is not used: pyrevolve
is not installed in the project's environment; ``factor = 1`` is the exact alternative.
"""

from __future__ import annotations

import gc
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from strata_errors import InputError
from tasks.seismic.linear_operators import (
    CONDITIONS,
    adjoint_operator,
    born_operator,
    gradient_operator,
    image_function,
    snapshot_field,
    snapshot_forward_operator,
    snapshot_order,
)
from tasks.seismic.operators import point_set, wavefield
from tasks.seismic.solver import compiled_operator, thread_args

if TYPE_CHECKING:
    from devito import TimeFunction

    from tasks.seismic.model import Model

__all__ = [
    "ForwardState",
    "adjoint",
    "backpropagate",
    "born",
    "collect_if_large",
    "forward_snapshots",
    "interior",
    "pad",
    "snapshot_factor",
]


@dataclass
class ForwardState:
    """What a forward run leaves for back-propagation.

    Attributes
    ----------
    traces : np.ndarray
        Modelled data ``(time, receiver)``.
    usave : TimeFunction
        Snapshots of ``u`` every ``factor`` steps on the padded grid.
    factor : int
        Snapshot interval in time steps.
    illumination : np.ndarray
        Source illumination ``sum_n u[n]**2`` on the unpadded grid.
    """

    traces: np.ndarray
    usave: TimeFunction
    factor: int
    illumination: np.ndarray

    @property
    def wavefield_bytes(self) -> int:
        """Bytes held by the stored snapshots (with the halo ``isic`` needs)."""
        return int(self.usave.data_with_halo.nbytes)


COLLECT_BYTES = 64 * 2**20


def collect_if_large(nbytes: int) -> None:
    """Run the garbage collector after dropping snapshots of ``nbytes`` bytes, if they are large.

    Devito's functions sit in reference cycles, so a dropped :class:`ForwardState`'s snapshots stay
    allocated until the collector runs: shot after shot, a 3-D migration grew to 4.4 GB where one
    shot's needs 0.45 GB. A collection costs ≈70 ms in a worker holding Prefect and Dask, so only
    snapshots above ``COLLECT_BYTES`` (whose shots take far longer) are worth one."""
    if nbytes > COLLECT_BYTES:
        gc.collect()


def snapshot_factor(f_max: float, dt: float) -> int:
    """Largest snapshot interval (steps of ``dt`` s) that samples ``f_max`` Hz at Nyquist."""
    if not (f_max > 0 and dt > 0):
        raise InputError(f"snapshot factor needs f_max > 0 Hz and dt > 0 s, got {f_max}, {dt}")
    return max(1, int(np.floor(1.0 / (2.0 * f_max * dt) * (1 + 1e-9))))


def interior(model: Model, field: np.ndarray) -> np.ndarray:
    """The unpadded part of a padded-grid array."""
    n = model.nbl
    return np.asarray(field)[tuple(slice(n, n + s) for s in model.shape)]


def fold_padding(model: Model, field: np.ndarray) -> np.ndarray:
    """The adjoint of edge padding (how :class:`Model` extends ``m`` into the absorbing layer): the
    unpadded part of a padded-grid array with each pad slab summed onto the edge it copies. A gradient
    on the padded grid folded so is the gradient w.r.t. the unpadded ``m`` when the layer follows it."""
    out = np.asarray(field, dtype=np.float64)
    n = model.nbl
    for axis in range(out.ndim):
        out = np.moveaxis(out, axis, 0)
        inner = out[n:out.shape[0] - n].copy()
        inner[0] += out[:n].sum(axis=0)
        inner[-1] += out[out.shape[0] - n:].sum(axis=0)
        out = np.moveaxis(inner, 0, axis)
    return out


def pad(model: Model, field: np.ndarray) -> np.ndarray:
    """An unpadded-grid array embedded in zeros on the padded grid."""
    field = np.asarray(field)
    if field.shape != tuple(model.shape):
        raise InputError(f"field has shape {field.shape}, the model {tuple(model.shape)}")
    return np.pad(field, model.nbl)


def _sources(model: Model, positions: np.ndarray, wavelet: np.ndarray):
    w = np.asarray(wavelet)
    w = np.repeat(w[:, None], len(positions), axis=1) if w.ndim == 1 else w
    return point_set(model, "src", positions, w.shape[0], w)


def forward_snapshots(model: Model, src_positions: np.ndarray, wavelet: np.ndarray,
                      rec_positions: np.ndarray, dt: float, *, factor: int = 1,
                      condition: str = "born", threads: int | None = None) -> ForwardState:
    """Forward run keeping snapshots every ``factor`` steps and the source illumination.

    ``wavelet`` is ``(time,)`` (every source) or ``(time, source)``. ``condition``: the imaging
    condition the snapshots will serve (``isic`` keeps a halo for their gradient).
    """
    factor = int(factor)
    if factor < 1:
        raise InputError(f"snapshot factor must be >= 1, got {factor}")
    if condition not in CONDITIONS:
        raise InputError(f"imaging condition must be one of {', '.join(CONDITIONS)}, got {condition!r}")
    src = _sources(model, src_positions, wavelet)
    nt = src.data.shape[0]
    rec = point_set(model, "rec", rec_positions, nt)
    order = snapshot_order(model, condition)
    usave = snapshot_field(model, factor, (nt - 1) // factor + 1, order)
    illum = image_function(model, "illum")
    op = compiled_operator(f"forward_snapshots_{factor}_so{order}", model,
                           lambda mod: snapshot_forward_operator(mod, factor, order))
    op.apply(u=wavefield(model), usave=usave, illum=illum, m=model.m, damp=model.damp,
             src=src, rec=rec, dt=model.dtype.type(dt), time_M=nt - 1, **thread_args(op, threads))
    return ForwardState(np.array(rec.data), usave, factor, interior(model, illum.data))


def adjoint(model: Model, rec_positions: np.ndarray, data: np.ndarray,
            src_positions: np.ndarray, dt: float, *,
            threads: int | None = None) -> np.ndarray:
    """Adjoint modelling ``F^T d``: traces ``(time, source)`` from receiver data ``(time, rec)``."""
    data = np.asarray(data)
    nt = data.shape[0]
    rec = point_set(model, "rec", rec_positions, nt, data)
    srca = point_set(model, "srca", src_positions, nt)
    op = compiled_operator("adjoint", model, adjoint_operator)
    op.apply(v=wavefield(model, name="v"), m=model.m, damp=model.damp, rec=rec, srca=srca,
             dt=model.dtype.type(dt), time_m=1, time_M=nt - 1, **thread_args(op, threads))
    return np.array(srca.data)


def born(model: Model, dm: np.ndarray, src_positions: np.ndarray, wavelet: np.ndarray,
         rec_positions: np.ndarray, dt: float, *, threads: int | None = None) -> np.ndarray:
    """Born modelling ``J dm``: traces ``(time, receiver)`` of the perturbation ``dm`` (s²/m²,
    unpadded grid) scattering the background wavefield of ``model``."""
    src = _sources(model, src_positions, wavelet)
    nt = src.data.shape[0]
    rec = point_set(model, "rec", rec_positions, nt)
    dmf = image_function(model, "dm")
    dmf.data[:] = pad(model, dm)
    op = compiled_operator("born", model, born_operator)
    op.apply(u=wavefield(model), du=wavefield(model, name="du"), dm=dmf, m=model.m,
             damp=model.damp, src=src, rec=rec, dt=model.dtype.type(dt), time_M=nt - 1,
             **thread_args(op, threads))
    return np.array(rec.data)


def backpropagate(model: Model, state: ForwardState, rec_positions: np.ndarray,
                  data: np.ndarray, dt: float, *, condition: str = "born",
                  threads: int | None = None, edge_padded: bool = False) -> np.ndarray:
    """Back-propagate receiver ``data`` (time, receiver) and apply the imaging condition.

    With ``condition="born"`` and ``state.factor == 1`` this is exactly ``J^T data`` (the FWI
    gradient when ``data`` is the residual ``F(m) - d``); with a larger factor it is its
    snapshot approximation. ``"crosscorrelation"`` gives ``sum_n u v`` instead. Returns the
    unpadded image (``edge_padded``: with the absorbing layer's part folded onto the edges, see
    :func:`fold_padding`).
    """
    data = np.asarray(data)
    nt = data.shape[0]
    rec = point_set(model, "rec", rec_positions, nt, data)
    grad = image_function(model, "grad")
    factor = state.factor
    if condition not in CONDITIONS:
        raise InputError(f"imaging condition must be one of {', '.join(CONDITIONS)}, got {condition!r}")
    order = state.usave.space_order
    if order < snapshot_order(model, condition):
        raise InputError(f"the {condition!r} condition needs snapshots with a halo: run "
                         f"forward_snapshots(..., condition={condition!r})")
    # compiled for the snapshots' own halo: an operator built for another reads the wrong memory, silently
    op = compiled_operator(f"gradient_{factor}_{condition}_so{order}", model,
                           lambda mod: gradient_operator(mod, factor, condition, order))
    op.apply(v=wavefield(model, name="v"), usave=state.usave, grad=grad, m=model.m,
             damp=model.damp, rec=rec, dt=model.dtype.type(dt), time_m=1, time_M=nt - 1,
             **thread_args(op, threads))
    return fold_padding(model, grad.data) if edge_padded else interior(model, grad.data)
