"""Quality and diversity of generated samples: k-NN precision and recall (Kynkäänniemi et al. 2019) and
the Fréchet distance in a fixed feature space (a PCA of the real data, fitted once: no downloaded
network), as the MAD loops measure them per generation."""

from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree
from scipy.spatial.distance import cdist

from strata_errors import InputError

from .common import wasserstein2_gaussian

__all__ = ["precision_recall", "frechet_distance", "PCAFeatures", "as_points"]


def as_points(x, what: str = "points", min_rows: int = 1) -> np.ndarray:
    """``x`` (an array or a torch tensor) as a finite float64 (n, features) array with n >= ``min_rows``
    (InputError naming ``what`` otherwise)."""
    x = np.asarray(x.detach().cpu().numpy() if hasattr(x, "detach") else x, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] < min_rows or x.shape[1] < 1 or not np.isfinite(x).all():
        raise InputError(f"{what} must be a finite (n, features) array with n >= {min_rows}, got shape {x.shape}")
    return x


def _points(name: str, x: np.ndarray, k: int | None = None) -> np.ndarray:
    x = as_points(x, name)
    if k is not None and x.shape[0] <= k:
        raise InputError(f"{name} has {x.shape[0]} points: the k-NN manifold with k={k} needs more than k")
    return x


def _radii(x: np.ndarray, k: int) -> np.ndarray:
    """Each point's distance to its k-th nearest other point of ``x``."""
    dist, _ = cKDTree(x).query(x, k=k + 1)  # the point itself first
    return dist[:, -1]


def _coverage(support: np.ndarray, k: int, queries: np.ndarray, chunk: int = 1024) -> float:
    """Share of ``queries`` inside the union of the balls around ``support`` with their k-NN radii
    (exact: every query against every ball, ``chunk`` queries at a time)."""
    radii = _radii(support, k)
    inside = [(cdist(q, support) <= radii).any(axis=1) for q in np.array_split(queries, -(-len(queries) // chunk))]
    return float(np.concatenate(inside).mean())


def precision_recall(real: np.ndarray, fake: np.ndarray, k: int = 3) -> tuple[float, float]:
    """``(precision, recall)`` of ``fake`` against ``real``, both (n, features): precision is the share of
    fake points inside the real manifold (the union of balls around each real point reaching its k-th
    nearest real neighbour), recall the share of real points inside the fake manifold."""
    if not isinstance(k, int | np.integer) or isinstance(k, bool) or k < 1:
        raise InputError(f"k must be an integer >= 1, got {k!r}")
    real, fake = _points("real", real, k), _points("fake", fake, k)
    if real.shape[1] != fake.shape[1]:
        raise InputError(f"real and fake have {real.shape[1]} and {fake.shape[1]} features")
    return _coverage(real, k, fake), _coverage(fake, k, real)


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """The Fréchet distance (squared W2 between the fitted Gaussians, as FID reports it) of two sample sets."""
    a, b = _points("a", a), _points("b", b)
    if a.shape[1] != b.shape[1] or min(len(a), len(b)) < 2:
        raise InputError(f"need two sets of >= 2 points with equal features, got {a.shape} and {b.shape}")
    cov = lambda x: np.atleast_2d(np.cov(x, rowvar=False))  # noqa: E731
    return float(wasserstein2_gaussian(a.mean(0), cov(a), b.mean(0), cov(b)) ** 2)


class PCAFeatures:
    """A fixed feature map: centre by the real data's mean and project on its first ``components``
    principal axes, scaled to unit variance. Fit once on the real data; apply to every generation."""

    def __init__(self, mean: np.ndarray, axes: np.ndarray, scale: np.ndarray):
        self.mean, self.axes, self.scale = (np.asarray(a, dtype=np.float64) for a in (mean, axes, scale))

    @classmethod
    def fit(cls, real: np.ndarray, components: int) -> PCAFeatures:
        real = _points("real", real)
        if not 1 <= components <= min(real.shape):
            raise InputError(f"components must be in 1..{min(real.shape)}, got {components}")
        mean = real.mean(0)
        _, s, vt = np.linalg.svd(real - mean, full_matrices=False)
        scale = s[:components] / np.sqrt(len(real) - 1)
        return cls(mean, vt[:components], np.maximum(scale, 1e-12))

    def __call__(self, x: np.ndarray) -> np.ndarray:
        x = _points("x", x)
        if x.shape[1] != self.mean.size:
            raise InputError(f"features: expected {self.mean.size} columns, got {x.shape[1]}")
        return (x - self.mean) @ self.axes.T / self.scale
