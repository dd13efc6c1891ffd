"""Constant-density acoustic operators: free functions that build Eqs and return Operators.

The wave equation is ``m u_tt + damp u_t - lap u = q`` (``m = 1/vp**2``), 2nd order in time,
``model.space_order`` in space. Point sources inject ``src * dt**2 / m`` into ``u(t + dt)``
and receivers interpolate ``u(t)``, both with the same (multi)linear weights, so that the
operator pair is reciprocal. Functions are named ``u``, ``m``, ``damp``, ``src``, ``rec``: a
compiled operator is reused by passing new objects under these names to ``apply``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from devito import Eq, Operator, SparseTimeFunction, TimeFunction

    from tasks.seismic.model import Model

__all__ = ["acoustic_stencil", "forward_operator", "point_set", "wavefield"]


def wavefield(model: Model, *, name: str = "u", save: int | None = None) -> TimeFunction:
    """A wavefield on the model's padded grid (3 time buffers unless ``save`` steps)."""
    from devito import TimeFunction

    return TimeFunction(name=name, grid=model.grid, time_order=2,
                        space_order=model.space_order, save=save)


def point_set(model: Model, name: str, positions: np.ndarray, nt: int,
              data: np.ndarray | None = None) -> SparseTimeFunction:
    """Sources or receivers at ``positions`` (npoint, dim) in metres, ``nt`` time samples."""
    from devito import SparseTimeFunction

    pts = SparseTimeFunction(name=name, grid=model.grid, npoint=len(positions), nt=nt)
    pts.coordinates.data[:] = np.asarray(positions, dtype=model.dtype)
    if data is not None:
        pts.data[:] = np.asarray(data, dtype=model.dtype).reshape(nt, -1)
    return pts


def acoustic_stencil(model: Model, u: TimeFunction, *, forward: bool = True) -> list[Eq]:
    """The update of ``u`` one step forward (or backward, for adjoint runs) in time."""
    from devito import Eq, solve

    if forward:
        pde = model.m * u.dt2 - u.laplace + model.damp * u.dt
        return [Eq(u.forward, solve(pde, u.forward))]
    pde = model.m * u.dt2 - u.laplace + model.damp * u.dt.T
    return [Eq(u.backward, solve(pde, u.backward))]


def forward_operator(model: Model, *, save: int | None = None) -> Operator:
    """Forward modelling: inject ``src`` into ``u``, record ``u`` at ``rec``."""
    from devito import Operator

    u = wavefield(model, save=save)
    src = point_set(model, "src", np.zeros((1, model.grid.dim)), 1)
    rec = point_set(model, "rec", np.zeros((1, model.grid.dim)), 1)
    dt = model.grid.stepping_dim.spacing
    eqs = acoustic_stencil(model, u)
    eqs += src.inject(field=u.forward, expr=src * dt**2 / model.m)
    eqs += rec.interpolate(expr=u)
    return Operator(eqs, subs=model.grid.spacing_map, name="Forward")
