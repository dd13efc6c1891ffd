"""Simple baselines an amortized posterior must beat, on the same held-out cases and the same pairs.

- ``rmse_prior_mean``: predict the mean of the training models for every case.
- ``rmse_linear``: ridge regression from the principal components of the condition (the CNF's input,
  [summary, estimate], each feature z-scored over the training pairs) to the principal components of
  the model; the numbers of components of both and the ridge penalty chosen by 5-fold cross-validation
  on the training pairs (the mean squared error of the reconstructed model).

On principal-component scores Z = U S the ridge normal equations are diagonal, so every penalty of a fold
costs one SVD of that fold's inputs and one of its targets.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from strata_errors import InputError

__all__ = ["ridge_pca_fit", "baselines"]

_ALPHAS = np.logspace(-4, 4, 17)  # ridge penalties, relative to the mean squared singular value of the fold
_FOLDS = 5


def _components(limit: int) -> list[int]:
    """Candidate component counts up to ``limit``: 1, 2, 4, … and the limit itself."""
    out = [c for c in (1, 2, 4, 8, 16, 32, 64, 128, 256) if c < limit]
    return [*out, limit]


class _Fold:
    """The SVDs of one training subset: z-scored inputs, centred targets."""

    def __init__(self, c: np.ndarray, x: np.ndarray, max_in: int, max_out: int):
        self.c_mean, sd = c.mean(0), c.std(0)
        self.c_scale = np.where(sd > 1e-12, sd, 1.0)
        self.x_mean = x.mean(0)
        cz = (c - self.c_mean) / self.c_scale
        u, s, vt = np.linalg.svd(cz, full_matrices=False)
        self.u, self.s, self.vt = u[:, :max_in], s[:max_in], vt[:max_in]
        _, _, wt = np.linalg.svd(x - self.x_mean, full_matrices=False)
        self.wt = wt[:max_out]  # target principal directions (rows)
        self.utx = self.u.T @ ((x - self.x_mean) @ self.wt.T)  # Uᵀ T: input directions × target scores

    def coef(self, n_in: int, alpha: float) -> np.ndarray:
        """Ridge coefficients ``(n_in, max_out)`` from the leading ``n_in`` input scores Z = U S to every kept
        target score: (S² + λ)⁻¹ S Uᵀ T, with λ = ``alpha`` × the mean squared singular value."""
        s = self.s[:n_in]
        lam = alpha * float(np.mean(self.s**2))
        return (s / (s**2 + lam))[:, None] * self.utx[:n_in]

    def scores(self, c: np.ndarray) -> np.ndarray:
        """Principal-component scores of new inputs (all kept components; = U S for the fitted rows)."""
        return ((c - self.c_mean) / self.c_scale) @ self.vt.T

    def predict(self, c: np.ndarray, n_in: int, n_out: int, alpha: float, z: np.ndarray | None = None
                ) -> np.ndarray:
        """Models predicted for conditions ``c`` (or their ``z`` = :meth:`scores`) with the leading
        components and penalty ``alpha``."""
        z = self.scores(c) if z is None else z
        return self.x_mean + (z[:, :n_in] @ self.coef(n_in, alpha)[:, :n_out]) @ self.wt[:n_out]


def ridge_pca_fit(c: np.ndarray, x: np.ndarray, *, seed: int = 0) -> tuple[_Fold, tuple[int, int, float], float]:
    """Choose (input components, output components, penalty) by 5-fold cross-validation on ``(c, x)``
    (rows are pairs) and refit on all rows. Returns the fit, the choice and its cross-validated MSE."""
    c, x = np.asarray(c, float).reshape(len(c), -1), np.asarray(x, float).reshape(len(x), -1)
    n = len(c)
    if n < 2 * _FOLDS:
        raise InputError(f"the linear baseline needs at least {2 * _FOLDS} training pairs, got {n}")
    order = np.random.default_rng(seed).permutation(n)
    parts = np.array_split(order, _FOLDS)
    max_in = min(c.shape[1], n - len(max(parts, key=len)) - 1)
    max_out = min(x.shape[1], max_in)
    grid_in, grid_out = _components(max_in), _components(max_out)
    err = np.zeros((len(grid_in), len(grid_out), len(_ALPHAS)))
    for part in parts:
        train = np.setdiff1d(order, part)
        fit = _Fold(c[train], x[train], max_in, max_out)
        z = fit.scores(c[part])
        r = x[part] - fit.x_mean
        t = r @ fit.wt.T  # the held-out targets' scores; the directions are orthonormal, so the squared error
        rest = (r**2).sum() - np.cumsum((t**2).sum(0))  # of a prediction in the first b of them is its error
        for i, a in enumerate(grid_in):  # there plus the targets' energy outside them
            for k, alpha in enumerate(_ALPHAS):
                pred = z[:, :a] @ fit.coef(a, alpha)
                sq = np.cumsum(((pred - t) ** 2).sum(0))
                for j, b in enumerate(grid_out):
                    err[i, j, k] += sq[b - 1] + rest[b - 1]
    i, j, k = np.unravel_index(np.argmin(err), err.shape)
    choice = (grid_in[i], grid_out[j], float(_ALPHAS[k]))
    return _Fold(c, x, max_in, max_out), choice, float(err[i, j, k] / x.size)


def baselines(truth: xr.Dataset, summaries: xr.Dataset, estimates: xr.Dataset, test_summaries: xr.Dataset,
              test_estimates: xr.Dataset, test_truth: xr.Dataset, *, var: str) -> xr.Dataset:
    """Per held-out case (the samples of ``test_summaries``): ``rmse_prior_mean`` and ``rmse_linear`` (RMS
    over the model's entries, as the posterior's ``rmse``), the linear map fitted on the training pairs
    (the samples of ``summaries``)."""
    from .aspire import condition

    train = np.asarray(summaries["sample"].values)
    cases = np.asarray(test_summaries["sample"].values)
    x = np.asarray(truth[var].sel(sample=train).values, float)
    xt = np.asarray(test_truth[var].sel(sample=cases).values, float)
    c = condition(summaries, estimates, var)
    ct = condition(test_summaries, test_estimates, var)
    fit, (n_in, n_out, alpha), cv = ridge_pca_fit(c, x)
    pred = fit.predict(ct.reshape(len(ct), -1), n_in, n_out, alpha).reshape(xt.shape)

    def rms(err: np.ndarray) -> np.ndarray:
        return np.sqrt((err**2).reshape(len(err), -1).mean(1))

    units = dict(truth[var].attrs)
    ds = xr.Dataset({
        "rmse_prior_mean": ("case", rms(x.mean(0) - xt), {**units, "long_name": "RMS error of the training mean"}),
        "rmse_linear": ("case", rms(pred - xt), {**units, "long_name": "RMS error of ridge regression on PCA"}),
    }, coords={"case": ("case", cases.astype(np.int64))})
    ds.attrs.update({"role": "per_case_metrics", "linear_components_in": int(n_in), "linear_components_out":
                     int(n_out), "linear_alpha": alpha, "linear_cv_mse": cv})
    return ds
