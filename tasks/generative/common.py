"""The leaves of :mod:`tasks.generative` (numpy only; they import nothing of the package): the loop types every
self-consuming loop shares and the Wasserstein-2 distance between Gaussians."""

from __future__ import annotations

import numpy as np

from strata_errors import InputError

__all__ = ["LOOPS", "sqrtm_psd", "wasserstein2_gaussian"]

LOOPS = ("fully_synthetic", "synthetic_augmentation", "fresh_data")


def sqrtm_psd(cov: np.ndarray) -> np.ndarray:
    """Symmetric square root of symmetric PSD matrices (..., d, d) via eigh (negatives -> 0)."""
    w, v = np.linalg.eigh(cov)
    return (v * np.sqrt(np.clip(w, 0, None))[..., None, :]) @ np.swapaxes(v, -1, -2)


def wasserstein2_gaussian(mu1: np.ndarray, cov1: np.ndarray, mu2: np.ndarray,
                          cov2: np.ndarray) -> np.ndarray:
    """Wasserstein-2 distance (not squared) between N(mu1, cov1) and N(mu2, cov2).

    ``W2^2 = |mu1 - mu2|^2 + tr(cov1 + cov2 - 2 (cov2^1/2 cov1 cov2^1/2)^1/2)``, batched and
    broadcast over leading dims: mu (..., d), cov (..., d, d) symmetric PSD. Returns shape (...).
    """
    mu1, mu2, cov1, cov2 = (np.asarray(a, dtype=np.float64) for a in (mu1, mu2, cov1, cov2))
    d = mu1.shape[-1] if mu1.ndim else 0
    for name, a, want in (("mu2", mu2, (d,)), ("cov1", cov1, (d, d)), ("cov2", cov2, (d, d))):
        ok = d > 0 and a.shape[max(a.ndim - len(want), 0):] == want
        if not ok:
            raise InputError(f"{name} has shape {a.shape}, expected (..., {', '.join(map(str, want))})")
    r2 = sqrtm_psd(cov2)
    m = r2 @ cov1 @ r2
    eig = np.linalg.eigvalsh((m + np.swapaxes(m, -1, -2)) / 2)
    tr = np.trace(cov1, axis1=-2, axis2=-1) + np.trace(cov2, axis1=-2, axis2=-1)
    sq = ((mu1 - mu2) ** 2).sum(-1) + tr - 2 * np.sqrt(np.clip(eig, 0, None)).sum(-1)
    return np.sqrt(np.clip(sq, 0, None))
