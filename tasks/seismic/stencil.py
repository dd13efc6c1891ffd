"""Facts about the centred finite-difference stencil: weights, stability limit, dispersion.

Numpy only (no devito), so geometry can choose a time step without compiling anything.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from functools import cache
from math import factorial

import numpy as np

from strata_errors import InputError

__all__ = [
    "DispersionWarning",
    "MIN_POINTS_PER_WAVELENGTH",
    "check_dispersion",
    "check_space_order",
    "critical_dt",
    "laplacian_weights",
    "required_points_per_wavelength",
]

SPACE_ORDERS = range(4, 17, 2)
PHASE_TOLERANCE = 0.01  # relative phase-velocity error of the spatial stencil at f_max
MIN_POINTS_PER_WAVELENGTH = 2.0  # the grid's Nyquist limit: no stencil carries a shorter wavelength


class DispersionWarning(UserWarning):
    """The grid has fewer points per wavelength at f_max than the space order needs."""


def check_space_order(space_order: int) -> None:
    """Raise InputError unless ``space_order`` is even and within 4..16."""
    if space_order not in SPACE_ORDERS:
        raise InputError(f"space order must be an even number from 4 to 16, got {space_order}")


def laplacian_weights(space_order: int) -> np.ndarray:
    """Weights ``w[0..p]`` of the centred 2nd derivative of order ``space_order = 2p`` (h = 1)."""
    p = space_order // 2
    w = np.zeros(p + 1)
    for k in range(1, p + 1):
        w[k] = 2 * (-1) ** (k + 1) * factorial(p) ** 2 / (k**2 * factorial(p - k)
                                                           * factorial(p + k))
    w[0] = -2 * w[1:].sum()
    return w


def critical_dt(vp_max: float, spacing: Sequence[float], space_order: int) -> float:
    """Exact von Neumann limit (s) of the leapfrog scheme with this stencil.

    A plane wave at the Nyquist wavenumber on every axis is the fastest mode; the scheme is
    stable iff ``vp_max**2 dt**2 sum_d(S / h_d**2) <= 4`` with ``S = sum(|w|)``.
    """
    check_space_order(space_order)
    w = laplacian_weights(space_order)
    s = abs(w[0]) + 2 * np.abs(w[1:]).sum()
    h = np.asarray(spacing, dtype=float)
    return float(2.0 / (vp_max * np.sqrt(s * np.sum(1.0 / h**2))))


@cache
def required_points_per_wavelength(space_order: int,
                                   tolerance: float = PHASE_TOLERANCE) -> float:
    """Points per wavelength at which the stencil's phase velocity is ``tolerance`` too slow.

    About 5.3 at order 4, 3.4 at order 8 and 2.7 at order 16 for a 1% tolerance.
    """
    check_space_order(space_order)
    w = laplacian_weights(space_order)
    kh = np.linspace(1e-4, np.pi, 100_000)
    k = np.arange(1, w.size)
    symbol = -w[0] - 2 * (w[1:, None] * np.cos(k[:, None] * kh)).sum(axis=0)
    error = 1.0 - np.sqrt(np.maximum(symbol, 0.0)) / kh
    first = int(np.argmax(error > tolerance))
    return float(2 * np.pi / kh[first])


def check_dispersion(vp_min: float, spacing: Sequence[float], f_max: float,
                     space_order: int) -> float:
    """Warn (DispersionWarning) if the grid is too coarse at ``f_max``; return points/wavelength.

    Below ``MIN_POINTS_PER_WAVELENGTH`` (the grid's Nyquist limit) the grid cannot carry ``f_max`` at all:
    that is an InputError, not a warning."""
    ppw = vp_min / (f_max * max(spacing))
    need = required_points_per_wavelength(space_order)
    if ppw < MIN_POINTS_PER_WAVELENGTH:
        raise InputError(f"{ppw:.2f} points per wavelength at f_max={f_max:.3g} Hz (vp_min={vp_min:.6g} m/s, "
                         f"h={max(spacing):g} m): below the grid's limit of {MIN_POINTS_PER_WAVELENGTH:g}, no "
                         f"stencil carries it (space order {space_order} needs >= {need:.2f}); refine the grid "
                         f"or lower the frequency")
    if ppw < need:
        warnings.warn(f"{ppw:.2f} points per wavelength at f_max={f_max:.3g} Hz "
                      f"(vp_min={vp_min:.6g} m/s, h={max(spacing):g} m): space order "
                      f"{space_order} needs >= {need:.2f} for <1% phase error; refine the "
                      f"grid or lower the frequency", DispersionWarning, stacklevel=2)
    return ppw
