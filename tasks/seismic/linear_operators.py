"""Linearized and adjoint acoustic operators: free functions that build devito Operators.

The forward scheme of :mod:`tasks.seismic.operators` is, per time step ``n``,
``(P + D) u[n+1] - (2P + L) u[n] + (P - D) u[n-1] = q[n]`` with ``P = m/dt**2``,
``D = damp/(2 dt)`` and ``L`` the (symmetric) Laplacian. Its exact transpose steps backward:
``(P + D) v[n-1] = (2P + L) v[n] - (P - D) v[n+1] + r[n]``, which is
``acoustic_stencil(..., forward=False)`` (the damping term's adjoint is ``damp * v.dt.T``).
Sources and receivers sit where ``damp = 0``, so injecting ``r dt**2/m`` equals
``(P + D)**-1 r`` there and injection is the exact transpose of interpolation.

The Born source of ``dm`` is ``-dm * u.dt2`` (the derivative of ``P`` in the scheme above); its
adjoint, the gradient, is ``-sum_n u[n] v.dt2[n]`` (summation by parts, exact for
``u[0] = v[nt-1] = v[nt] = 0``). With snapshots every ``factor`` steps the sum is taken on the
snapshot times only and multiplied by ``factor``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from tasks.seismic.operators import acoustic_stencil, point_set, wavefield

if TYPE_CHECKING:
    from devito import ConditionalDimension, Function, Operator, TimeFunction

    from tasks.seismic.model import Model

__all__ = [
    "CONDITIONS",
    "adjoint_operator",
    "born_operator",
    "gradient_operator",
    "image_function",
    "snapshot_dimension",
    "snapshot_field",
    "snapshot_forward_operator",
    "snapshot_order",
]

CONDITIONS = ("born", "crosscorrelation", "isic")
"""Imaging conditions of :func:`gradient_operator`. ``isic`` is the inverse-scattering
(energy-norm) condition ``I = sum_t w (m u_t v_t - grad u . grad v)`` (Whitmore & Crawley 2012;
Op 't Root et al. 2012), summed by parts in time so that ``u`` may be stored every ``factor`` steps
and the time derivative falls on the full-rate adjoint field: ``I = -sum_t w (m u v_tt + grad u .
grad v)``. The weight is ``w = 1/m = vp**2``, so its first term is exactly the ``born`` condition
and the image keeps the Born image's units; JUDI's ``isic`` weighs by ``dt`` (constant density),
which differs from this one by the smooth factor ``m dt``. For waves travelling the same way at a
point (the source wavefield and its own back-scattered or diving energy: the low-wavenumber RTM
artifact) ``m u_t v_t ≈ grad u . grad v`` and the two terms cancel; for reflections they add."""


def _dummy_points(model: Model, name: str):
    return point_set(model, name, np.zeros((1, model.grid.dim)), 1)


def image_function(model: Model, name: str = "grad") -> Function:
    """A zeroed scalar field on the padded grid (gradient, image, illumination, ``dm``)."""
    from devito import Function

    return Function(name=name, grid=model.grid, space_order=0)


def snapshot_dimension(model: Model, factor: int) -> ConditionalDimension:
    """The time dimension sampled every ``factor`` steps (``factor = 1``: every step)."""
    from devito import ConditionalDimension

    return ConditionalDimension(name="tsub", parent=model.grid.time_dim, factor=int(factor))


def snapshot_field(model: Model, factor: int, nsnaps: int, space_order: int = 0) -> TimeFunction:
    """``nsnaps`` stored snapshots of ``u``, one every ``factor`` steps, named ``usave``
    (``space_order > 0``: with the halo that spatial derivatives of the snapshots need)."""
    from devito import TimeFunction

    return TimeFunction(name="usave", grid=model.grid, time_order=0, space_order=int(space_order),
                        save=int(nsnaps), time_dim=snapshot_dimension(model, factor))


def snapshot_order(model: Model, condition: str) -> int:
    """Space order of the snapshots a ``condition`` needs: the model's for ``isic`` (it takes
    their gradient), else 0 (no halo)."""
    return model.space_order if condition == "isic" else 0


def snapshot_forward_operator(model: Model, factor: int, space_order: int = 0) -> Operator:
    """Forward modelling that also stores ``usave`` (of ``space_order``) every ``factor`` steps
    and accumulates the source illumination ``illum = sum_n u[n]**2`` at every step."""
    from devito import Eq, Inc, Operator

    u = wavefield(model)
    usave = snapshot_field(model, factor, 1, space_order)
    illum = image_function(model, "illum")
    src, rec = _dummy_points(model, "src"), _dummy_points(model, "rec")
    dt = model.grid.stepping_dim.spacing
    eqs = acoustic_stencil(model, u)
    eqs += src.inject(field=u.forward, expr=src * dt**2 / model.m)
    eqs += rec.interpolate(expr=u)
    eqs += [Eq(usave, u), Inc(illum, u * u)]
    return Operator(eqs, subs=model.grid.spacing_map, name="ForwardSnapshots")


def adjoint_operator(model: Model) -> Operator:
    """Adjoint modelling: inject ``rec`` into ``v`` backward in time, record ``v`` at ``srca``."""
    from devito import Operator

    v = wavefield(model, name="v")
    rec, srca = _dummy_points(model, "rec"), _dummy_points(model, "srca")
    dt = model.grid.stepping_dim.spacing
    eqs = acoustic_stencil(model, v, forward=False)
    eqs += rec.inject(field=v.backward, expr=rec * dt**2 / model.m)
    eqs += srca.interpolate(expr=v)
    return Operator(eqs, subs=model.grid.spacing_map, name="Adjoint")


def born_operator(model: Model) -> Operator:
    """Born modelling: background ``u`` from ``src``, scattered ``du`` from ``-dm u.dt2``,
    ``du`` recorded at ``rec``."""
    from devito import Eq, Operator, solve

    u, du = wavefield(model), wavefield(model, name="du")
    dm = image_function(model, "dm")
    src, rec = _dummy_points(model, "src"), _dummy_points(model, "rec")
    dt = model.grid.stepping_dim.spacing
    eqs = acoustic_stencil(model, u)
    eqs += src.inject(field=u.forward, expr=src * dt**2 / model.m)
    pde = model.m * du.dt2 - du.laplace + model.damp * du.dt + dm * u.dt2
    eqs += [Eq(du.forward, solve(pde, du.forward))]
    eqs += rec.interpolate(expr=du)
    return Operator(eqs, subs=model.grid.spacing_map, name="Born")


def gradient_operator(model: Model, factor: int, condition: str = "born",
                      snapshot_space_order: int | None = None) -> Operator:
    """Back-propagate ``rec`` in ``v`` and correlate with the snapshots ``usave``.

    ``condition="born"``: ``grad -= factor * usave * v.dt2`` (the exact adjoint of Born
    modelling for ``factor = 1``); ``"crosscorrelation"``: ``grad += factor * usave * v``;
    ``"isic"``: ``grad -= factor * (usave * v.dt2 + grad(usave) . grad(v) / m)``, the
    inverse-scattering imaging condition (see :data:`CONDITIONS`), whose snapshots need a halo
    (``usave`` of space order ``model.space_order``, :func:`snapshot_order`).
    """
    from devito import Inc, Operator

    if condition not in CONDITIONS:
        raise ValueError(f"imaging condition must be one of {CONDITIONS}, got {condition!r}")
    v = wavefield(model, name="v")
    order = snapshot_order(model, condition) if snapshot_space_order is None else int(snapshot_space_order)
    usave = snapshot_field(model, factor, 1, order)
    grad = image_function(model, "grad")
    rec = _dummy_points(model, "rec")
    dt = model.grid.stepping_dim.spacing
    eqs = acoustic_stencil(model, v, forward=False)
    eqs += rec.inject(field=v.backward, expr=rec * dt**2 / model.m)
    if condition == "born":
        term = -usave * v.dt2
    elif condition == "crosscorrelation":
        term = usave * v
    else:
        inner = sum(usave.diff(d) * v.diff(d) for d in model.grid.dimensions)
        term = -(usave * v.dt2 + inner / model.m)
    eqs += [Inc(grad, int(factor) * term, implicit_dims=(usave.time_dim,))]
    return Operator(eqs, subs=model.grid.spacing_map, name="Gradient")
