"""Constant-density acoustic operators: free functions that build Eqs and return Operators.

The wave equation is ``m u_tt + damp u_t - lap u = q`` (``m = 1/vp**2``), 2nd order in time,
``model.space_order`` in space. Point sources inject ``src * dt**2 / m`` into ``u(t + dt)``
and receivers interpolate ``u(t)``, both with the same (multi)linear weights, so that the
operator pair is reciprocal. Functions are named ``u``, ``m``, ``damp`` (``damp0``,
``damp1``, ... per axis), ``src``, ``rec``: a compiled operator is reused by passing new
objects under these names to ``apply``.

The survey's forward operator is the same scheme written for memory traffic, since at survey
sizes a time step streams the grid through memory: two wavefield buffers instead of three
(``u(t+dt)`` overwrites ``u(t-dt)`` in place, point by point) and the damping read from 1D
profiles, so one update reads ``u(t)``, ``u(t-dt)``, ``m`` and writes one value (16 B in
float32, no write-allocate) where the textbook three-buffer form with a full ``damp`` grid
moves 24 B.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from devito import Eq, Operator, SparseTimeFunction, TimeFunction

    from tasks.seismic.model import Model

__all__ = ["acoustic_stencil", "forward_operator", "leapfrog_in_place", "point_set", "wavefield"]


def wavefield(model: Model, *, name: str = "u", save: int | None = None,
              buffers: int = 3) -> TimeFunction:
    """A wavefield on the model's padded grid: ``buffers`` time levels (3, or 2 for
    :func:`forward_operator`), or ``save`` stored steps."""
    from devito import TimeFunction

    if buffers not in (2, 3):
        raise ValueError(f"buffers must be 2 or 3, got {buffers}")
    return TimeFunction(name=name, grid=model.grid, time_order=buffers - 1,
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


def leapfrog_in_place(model: Model, u: TimeFunction) -> list[Eq]:
    """``u(t+dt)`` from ``u(t)`` and ``u(t-dt)`` with two buffers: ``u.forward`` holds
    ``u(t-dt)`` when read and ``u(t+dt)`` once written (the same point, so no hazard).

    The update of :func:`acoustic_stencil` (devito's ``u.dt`` is the one-sided
    ``(u+ - u)/dt``): ``m (u+ - 2u + u-)/dt² + damp (u+ - u)/dt = lap u`` solved for ``u+``,
    with ``damp`` summed from the model's 1D profiles.
    """
    from devito import Eq

    dt = model.grid.stepping_dim.spacing
    m = model.m
    ddt = sum(model.damp_axes) * dt
    return [Eq(u.forward, ((2 * m + ddt) * u - m * u.forward + dt**2 * u.laplace) / (m + ddt))]


def forward_operator(model: Model) -> Operator:
    """Forward modelling on two buffers: inject ``src`` into ``u``, record ``u`` at ``rec``."""
    from devito import Operator

    u = wavefield(model, buffers=2)
    src = point_set(model, "src", np.zeros((1, model.grid.dim)), 1)
    rec = point_set(model, "rec", np.zeros((1, model.grid.dim)), 1)
    dt = model.grid.stepping_dim.spacing
    eqs = leapfrog_in_place(model, u)
    eqs += src.inject(field=u.forward, expr=src * dt**2 / model.m)
    eqs += rec.interpolate(expr=u)
    return Operator(eqs, subs=model.grid.spacing_map, name="Forward")
