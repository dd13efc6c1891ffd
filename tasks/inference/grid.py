"""Posteriors of two-dimensional unknowns by quadrature on a regular grid, and what is measured with them.

A grid is ``n × n`` points over ``[-extent, extent]²`` (the ``ij`` layout of ``numpy.meshgrid``: axis 0 is
the first coordinate). A log-density on the grid is normalized so that ``Σ exp(log p) · cell = 1``: the
midpoint rule, exact to many digits for smooth densities whose width is a few cells or more, and the
densities here are compared on the same grid, so the rule's error cancels to first order.

Arrays only (numpy); a leading batch of cases is allowed wherever it says ``(..., G)`` (G = n² points).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import logsumexp

from strata_errors import InputError

__all__ = ["Grid", "make_grid", "normalize", "log_posterior", "moments", "kl", "gaussian_log_density"]


@dataclass(frozen=True)
class Grid:
    """``axis`` (n,): the coordinate values along each axis; ``points`` (n², 2); ``cell``: the area of a cell."""

    axis: np.ndarray

    @property
    def n(self) -> int:
        return len(self.axis)

    @property
    def cell(self) -> float:
        return float((self.axis[1] - self.axis[0]) ** 2)

    @property
    def points(self) -> np.ndarray:
        a, b = np.meshgrid(self.axis, self.axis, indexing="ij")
        return np.stack([a.ravel(), b.ravel()], -1)


def make_grid(points: int, extent: float) -> Grid:
    """``points`` per axis (odd, so that 0 is a grid point) evenly over ``[-extent, extent]``."""
    if not isinstance(points, int | np.integer) or points < 3 or points % 2 == 0:
        raise InputError(f"grid points per axis must be an odd integer >= 3, got {points!r}")
    if not (np.isfinite(extent) and extent > 0):
        raise InputError(f"grid extent must be a positive number, got {extent!r}")
    return Grid(np.linspace(-float(extent), float(extent), int(points)))


def normalize(log_unnormalized: np.ndarray, grid: Grid) -> np.ndarray:
    """The log-density ``(..., G)`` whose midpoint-rule integral over the grid is 1."""
    log_unnormalized = np.asarray(log_unnormalized, float)
    return log_unnormalized - logsumexp(log_unnormalized, axis=-1, keepdims=True) - np.log(grid.cell)


def log_posterior(grid: Grid, y: np.ndarray, predicted: np.ndarray, noise_std: float,
                  project: np.ndarray | None = None) -> np.ndarray:
    """The normalized log posterior ``(..., G)`` of x under the prior N(0, I) and data ``y (..., M) = F(x)
    + ε``, ε ~ N(0, noise_std² I); ``predicted`` (G, M): F at every grid point (computed once by the caller
    for any number of cases).

    ``project`` (..., M, r), orthonormal columns: condition on the projection Qᵀ y of the data instead of y
    itself (Qᵀ y ~ N(Qᵀ F(x), σ² I)): the posterior given a linear function H y of the data, Q a basis of
    the row space of H."""
    y = np.asarray(y, float)
    pts = grid.points
    pred = np.asarray(predicted, float)  # (G, M)
    if pred.shape != (len(pts), y.shape[-1]):
        raise InputError(f"predicted data {pred.shape} must be (grid points {len(pts)}, data values {y.shape[-1]})")
    resid = y[..., None, :] - pred  # (..., G, M)
    if project is not None:
        resid = resid @ np.asarray(project, float)  # (..., G, r)
    log_lik = -0.5 * (resid**2).sum(-1) / noise_std**2
    log_prior = -0.5 * (pts**2).sum(-1)
    return normalize(log_lik + log_prior, grid)


def moments(log_density: np.ndarray, grid: Grid) -> tuple[np.ndarray, np.ndarray]:
    """The mean ``(..., 2)`` and covariance ``(..., 2, 2)`` of normalized log-densities ``(..., G)``."""
    w = np.exp(np.asarray(log_density, float)) * grid.cell
    pts = grid.points
    mean = w @ pts
    centred = pts - mean[..., None, :]  # (..., G, 2)
    cov = np.einsum("...g,...gi,...gj->...ij", w, centred, centred)
    return mean, cov


def kl(log_p: np.ndarray, log_q: np.ndarray, grid: Grid) -> np.ndarray:
    """KL(p ‖ q) in nats ``(...)`` of log-densities on the grid ``(..., G)``: Σ p (log p − log q) · cell.
    ``q`` is renormalized on the grid first (a density fitted elsewhere may hold a little mass outside it);
    points where p is below 1e-300 contribute nothing."""
    log_p, log_q = np.asarray(log_p, float), np.asarray(log_q, float)
    log_q = normalize(log_q, grid)
    p = np.exp(log_p)
    terms = np.where(p > 1e-300, p * (log_p - log_q), 0.0)
    return np.maximum(terms.sum(-1) * grid.cell, 0.0)


def gaussian_log_density(points: np.ndarray, mean: np.ndarray, cov: np.ndarray) -> np.ndarray:
    """log N(points; mean, cov) ``(..., G)`` for ``points (G, d)``, ``mean (..., d)``, ``cov (..., d, d)``."""
    mean, cov = np.asarray(mean, float), np.asarray(cov, float)
    d = mean.shape[-1]
    diff = np.asarray(points, float) - mean[..., None, :]
    chol = np.linalg.cholesky(cov)
    sol = np.linalg.solve(chol[..., None, :, :], diff[..., None])[..., 0]
    logdet = 2 * np.log(np.diagonal(chol, axis1=-2, axis2=-1)).sum(-1)
    return -0.5 * ((sol**2).sum(-1) + logdet[..., None] + d * np.log(2 * np.pi))
