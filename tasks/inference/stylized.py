"""The stylized linear-Gaussian inverse problem, whose posterior is known, and posterior metrics.

Prior ``x ~ N(mu0, G0)`` in R^d, data ``y = A x + eps`` in R^m with ``eps ~ N(0, Gn)`` (``Gn`` need
not be white). The posterior is ``N(mu_post, G_post)`` with

    G_post  = (Aᵀ Gn⁻¹ A + G0⁻¹)⁻¹                         (precision form)
            = G0 − G0 Aᵀ (A G0 Aᵀ + Gn)⁻¹ A G0             (gain form)
    mu_post = mu0 + G0 Aᵀ (A G0 Aᵀ + Gn)⁻¹ (y − A mu0)     (gain form)
            = G_post (Aᵀ Gn⁻¹ y + G0⁻¹ mu0)                 (precision form)

Arrays only (numpy); a leading batch of ``y`` (or of estimates) is allowed wherever it says ``(..., m)``.
Randomness comes from ``numpy.random.SeedSequence`` so the same seed gives the same bytes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy import linalg

from strata_errors import InputError

__all__ = ["LinearGaussian", "make_problem", "sample_pairs", "analytic_posterior", "summary", "sample_gaussian",
           "mean_error", "cov_error", "gaussian_kl", "coverage", "nominal_coverage", "interval_ranks",
           "error_std_corr"]


@dataclass(frozen=True)
class LinearGaussian:
    """``y = A x + eps``, ``x ~ N(mu0, G0)``, ``eps ~ N(0, Gn)``."""

    A: np.ndarray  # (m, d)
    mu0: np.ndarray  # (d,)
    G0: np.ndarray  # (d, d), symmetric positive definite
    Gn: np.ndarray  # (m, m), symmetric positive definite

    @property
    def dims(self) -> tuple[int, int]:
        """``(d, m)``: the sizes of ``x`` and ``y``."""
        return int(self.A.shape[1]), int(self.A.shape[0])

    def posterior(self, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """:func:`analytic_posterior` of ``y`` under this problem."""
        return analytic_posterior(y, self.A, self.mu0, self.G0, self.Gn)


def _rng(seed: int, *more: int) -> np.random.Generator:
    if not all(isinstance(v, int | np.integer) and not isinstance(v, bool) and v >= 0 for v in (seed, *more)):
        raise InputError(f"seeds must be integers >= 0, got {(seed, *more)!r}")
    return np.random.default_rng(np.random.SeedSequence([int(seed), *map(int, more)]))


def _spd(rng: np.random.Generator, n: int, scale: float, spread: float) -> np.ndarray:
    """A random symmetric positive definite matrix: a random rotation of eigenvalues in
    ``scale² · [1/spread, 1]`` (log-uniform)."""
    q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    eig = scale**2 * np.exp(rng.uniform(-np.log(spread), 0.0, n))
    return (q * eig) @ q.T


def make_problem(d: int, m: int, *, seed: int, prior_scale: float = 1.0, noise_scale: float = 0.3,
                 noise_correlation: float = 0.5, spread: float = 4.0) -> LinearGaussian:
    """A seeded random problem: ``A`` with N(0, 1/d) entries, ``mu0`` ~ N(0, prior_scale²), ``G0`` a random
    SPD matrix with eigenvalues in ``prior_scale² · [1/spread, 1]`` and non-white noise
    ``Gn[i, j] = noise_scale² · noise_correlation^|i − j|`` (``noise_correlation = 0``: white)."""
    if d < 1 or m < 1:
        raise InputError(f"make_problem: need d >= 1 and m >= 1, got {d}, {m}")
    if not (prior_scale > 0 and noise_scale > 0 and spread >= 1 and 0 <= noise_correlation < 1):
        raise InputError("make_problem: need prior_scale > 0, noise_scale > 0, spread >= 1, "
                         f"0 <= noise_correlation < 1, got {prior_scale}, {noise_scale}, {spread}, "
                         f"{noise_correlation}")
    rng = _rng(seed)
    A = rng.standard_normal((m, d)) / np.sqrt(d)
    mu0 = prior_scale * rng.standard_normal(d)
    G0 = _spd(rng, d, prior_scale, spread)
    lag = np.abs(np.subtract.outer(np.arange(m), np.arange(m)))
    Gn = noise_scale**2 * noise_correlation**lag
    return LinearGaussian(A, mu0, G0, Gn)


def sample_gaussian(mu: np.ndarray, cov: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` draws of ``N(mu, cov)``, shape ``(n, *mu.shape)``; ``mu`` is ``(..., d)``, ``cov`` ``(d, d)`` or
    ``(..., d, d)`` broadcast with it."""
    mu, cov = np.asarray(mu, float), np.asarray(cov, float)
    L = np.linalg.cholesky(cov)
    eps = rng.standard_normal((n, *mu.shape))
    return mu + np.einsum("...ij,...j->...i", L, eps)


def sample_pairs(problem: LinearGaussian, n: int, *, seed: int, index: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` pairs ``x ~ N(mu0, G0)``, ``y = A x + eps``: arrays ``(n, d)`` and ``(n, m)``, from
    ``SeedSequence([seed, index])``."""
    if n < 1:
        raise InputError(f"sample_pairs: n must be >= 1, got {n}")
    rng = _rng(seed, index)
    x = sample_gaussian(problem.mu0, problem.G0, n, rng)
    eps = sample_gaussian(np.zeros(problem.A.shape[0]), problem.Gn, n, rng)
    return x, x @ problem.A.T + eps


def _check(y: np.ndarray, A: np.ndarray, mu0: np.ndarray, G0: np.ndarray, Gn: np.ndarray) -> tuple[np.ndarray, ...]:
    y, A, mu0, G0, Gn = (np.asarray(v, float) for v in (y, A, mu0, G0, Gn))
    if A.ndim != 2:
        raise InputError(f"A must be a matrix (m, d), got shape {A.shape}")
    m, d = A.shape
    if y.shape[-1:] != (m,) or mu0.shape != (d,) or G0.shape != (d, d) or Gn.shape != (m, m):
        raise InputError(f"shapes do not fit A {A.shape}: y {y.shape}, mu0 {mu0.shape}, G0 {G0.shape}, "
                         f"Gn {Gn.shape}")
    return y, A, mu0, G0, Gn


def _sym(a: np.ndarray) -> np.ndarray:
    return 0.5 * (a + a.T)


def analytic_posterior(y: np.ndarray, A: np.ndarray, mu0: np.ndarray, G0: np.ndarray, Gn: np.ndarray, *,
                       form: Literal["default", "gain", "precision"] = "default") -> tuple[np.ndarray, np.ndarray]:
    """The posterior ``(mu_post (..., d), G_post (d, d))`` of ``x`` given ``y (..., m)``.

    ``default``: ``G_post`` in precision form, ``mu_post`` in gain form (as in the module docstring);
    ``gain`` / ``precision``: both in that form (the same numbers up to rounding; for tests)."""
    y, A, mu0, G0, Gn = _check(y, A, mu0, G0, Gn)
    if form not in ("default", "gain", "precision"):
        raise InputError(f"analytic_posterior: form must be default, gain or precision, got {form!r}")
    S = linalg.cho_factor(A @ G0 @ A.T + Gn)  # the covariance of y
    gain_cov = _sym(G0 - G0 @ A.T @ linalg.cho_solve(S, A @ G0))
    Gn_f, G0_f = linalg.cho_factor(Gn), linalg.cho_factor(G0)
    precision = _sym(A.T @ linalg.cho_solve(Gn_f, A) + linalg.cho_solve(G0_f, np.eye(len(mu0))))
    precision_cov = _sym(linalg.cho_solve(linalg.cho_factor(precision), np.eye(len(mu0))))
    if form == "precision":
        rhs = linalg.cho_solve(Gn_f, y.reshape(-1, y.shape[-1]).T).T @ A + linalg.cho_solve(G0_f, mu0)
        return (rhs @ precision_cov).reshape(*y.shape[:-1], len(mu0)), precision_cov
    resid = (y - A @ mu0).reshape(-1, y.shape[-1])
    mean = mu0 + linalg.cho_solve(S, resid.T).T @ (G0 @ A.T).T
    return mean.reshape(*y.shape[:-1], len(mu0)), (gain_cov if form == "gain" else precision_cov)


def summary(xhat: np.ndarray, y: np.ndarray, A: np.ndarray, Gn: np.ndarray) -> np.ndarray:
    """The gradient of the data misfit ``½‖A xhat − y‖²_{Gn⁻¹}`` at ``xhat``: ``Aᵀ Gn⁻¹ (A xhat − y)``,
    shape ``(..., d)`` for ``xhat (..., d)`` and ``y (..., m)``."""
    xhat, y, A, Gn = (np.asarray(v, float) for v in (xhat, y, A, Gn))
    r = xhat @ A.T - y
    flat = r.reshape(-1, r.shape[-1])
    return (linalg.cho_solve(linalg.cho_factor(Gn), flat.T).T @ A).reshape(*r.shape[:-1], A.shape[1])


# -- metrics ------------------------------------------------------------------------------------------


def mean_error(mean: np.ndarray, truth: np.ndarray, scale: np.ndarray | None = None) -> float:
    """How far an estimated mean is from the true one. ``scale`` None: the relative error
    ``‖mean − truth‖ / ‖truth‖`` over all entries; otherwise the RMS of ``(mean − truth) / scale``
    (e.g. ``scale`` = the true posterior standard deviations: the error in posterior std units)."""
    mean, truth = np.asarray(mean, float), np.asarray(truth, float)
    if scale is None:
        return float(np.linalg.norm(mean - truth) / np.linalg.norm(truth))
    return float(np.sqrt(np.mean(((mean - truth) / np.asarray(scale, float)) ** 2)))


def cov_error(cov: np.ndarray, truth: np.ndarray) -> float:
    """The relative Frobenius error ``‖cov − truth‖_F / ‖truth‖_F`` of covariances ``(..., d, d)``, the
    norms taken over all entries."""
    cov, truth = np.asarray(cov, float), np.asarray(truth, float)
    return float(np.linalg.norm(cov - truth) / np.linalg.norm(np.broadcast_to(truth, cov.shape)))


def gaussian_kl(mu_p: np.ndarray, cov_p: np.ndarray, mu_q: np.ndarray, cov_q: np.ndarray) -> np.ndarray:
    """``KL(N(mu_p, cov_p) ‖ N(mu_q, cov_q))`` in nats, batched over leading dims (``(...)``):
    ``½ [tr(cov_q⁻¹ cov_p) + δᵀ cov_q⁻¹ δ − d + ln det cov_q − ln det cov_p]``, ``δ = mu_q − mu_p``."""
    mu_p, cov_p, mu_q, cov_q = (np.asarray(v, float) for v in (mu_p, cov_p, mu_q, cov_q))
    d = mu_p.shape[-1]
    delta = (mu_q - mu_p)[..., None]
    trace = np.trace(np.linalg.solve(cov_q, cov_p), axis1=-2, axis2=-1)
    quad = (delta * np.linalg.solve(cov_q, delta)).sum((-2, -1))
    sign_q, logdet_q = np.linalg.slogdet(cov_q)
    sign_p, logdet_p = np.linalg.slogdet(cov_p)
    if np.any(sign_q <= 0) or np.any(sign_p <= 0):
        raise InputError("gaussian_kl: the covariances must be positive definite")
    kl = 0.5 * (trace + quad - d + logdet_q - logdet_p)
    return np.maximum(kl, 0.0)  # rounding can make KL(p, p) a tiny negative number


def interval_ranks(n: int, level: float) -> tuple[int, int]:
    """The 1-based ranks (i, j) of the order statistics that bound the central ``level`` interval of ``n``
    draws: i = max(1, ⌊(n + 1)(1 − level)/2⌋), j = n + 1 − i. For a calibrated posterior (the truth one more
    draw of the same distribution) the truth lies in [X₍ᵢ₎, X₍ⱼ₎] with probability exactly (j − i)/(n + 1),
    whatever the distribution: :func:`nominal_coverage`."""
    if not 0.0 < level < 1.0:
        raise InputError(f"coverage: level must be in (0, 1), got {level}")
    if n < 2:
        raise InputError(f"coverage needs at least 2 draws, got {n}")
    i = max(1, int(np.floor((n + 1) * (1 - level) / 2 + 1e-9)))
    return i, n + 1 - i


def nominal_coverage(level: float, n: int) -> float:
    """The coverage a calibrated posterior reaches with the interval :func:`coverage` takes from ``n`` draws:
    (j − i)/(n + 1) — 0.907 for the 90 % interval of 128 draws, 0.882 of 16 (at most the named level plus
    2/(n + 1))."""
    i, j = interval_ranks(n, level)
    return float((j - i) / (n + 1))


def coverage(samples: np.ndarray, truth: np.ndarray, level: float = 0.9) -> float:
    """The share of true values inside the central ``level`` interval of their marginal samples:
    ``samples (n, ..., d)`` drawn for each case, ``truth (..., d)``. The interval is bounded by order
    statistics (:func:`interval_ranks`), so a calibrated posterior reaches :func:`nominal_coverage` exactly."""
    samples, truth = np.asarray(samples, float), np.asarray(truth, float)
    if samples.shape[1:] != truth.shape:
        raise InputError(f"coverage: samples {samples.shape} must be (n, *truth.shape), truth {truth.shape}")
    i, j = interval_ranks(len(samples), level)
    ordered = np.sort(samples, axis=0)
    return float(np.mean((truth >= ordered[i - 1]) & (truth <= ordered[j - 1])))


def error_std_corr(mean: np.ndarray, std: np.ndarray, truth: np.ndarray) -> float:
    """Pearson correlation, over all entries, of the absolute error ``|mean − truth|`` and the predicted
    standard deviation ``std``: positive when the uncertainty is larger where the error is."""
    err = np.abs(np.asarray(mean, float) - np.asarray(truth, float)).ravel()
    std = np.broadcast_to(np.asarray(std, float), np.shape(mean)).ravel()
    if err.std() == 0 or std.std() == 0:
        raise InputError("error_std_corr: the errors or the standard deviations are constant")
    return float(np.corrcoef(err, std)[0, 1])
