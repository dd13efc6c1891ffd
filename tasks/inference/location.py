"""Source location from travel times: a 2-D inverse problem whose exact posterior is computed by quadrature.

x ∈ R² (km) with prior N(0, I); M receivers r_j on a circle of radius ``radius`` km around the origin; the
medium's velocity v (km/s); data y_j = ‖x − r_j‖ / v + ε_j, ε ~ N(0, σ²) (s). The ASPIRE summary at an
estimate x̂ is the gradient of the log-likelihood there, s = J(x̂)ᵀ (y − F(x̂)) / σ², J = ∂F/∂x.

Conditioning on the summaries s¹…sᵏ taken at the estimates x̂⁰…x̂ᵏ⁻¹ (each a function of the earlier
summaries) is conditioning on H y with H the stacked J(x̂ʲ)ᵀ: the best posterior an iteration-k CNF can
reach is the posterior given the projection of y onto the row space of H (:func:`ideal_metrics`).

Datasets: ``problem`` — ``receivers`` (receiver, axis) in km, attrs ``noise_std`` (s) and ``velocity``
(km/s); cases — ``x`` (sample, axis), ``y`` (sample, receiver); estimates and summaries follow
:mod:`tasks.inference.aspire` (``x`` and ``gradient`` (sample, axis)); ``reference_posterior`` — the exact
posterior of every held-out case on a grid: ``log_density`` (case, gx, gy), ``mean`` (case, axis), ``cov``
(case, axis, axis_).
"""

from __future__ import annotations

import numpy as np
import torch
import xarray as xr

from strata_errors import InputError
from tasks.nn.checkpoint import from_dataset
from tasks.nn.training import seeded_torch

from . import grid as G
from .aspire import SUMMARY, condition

__all__ = ["problem_dataset", "forward", "jacobian", "draw_cases", "prior_estimates", "summaries",
           "reference_posterior", "grid_metrics", "ideal_metrics"]

_VAR = "x"
_AXES = ["x", "y"]
_KM = {"units": "km"}


def _sample_coord(samples: np.ndarray) -> tuple:
    return ("sample", np.asarray(samples, dtype=np.int64), {"long_name": "sample index"})


def problem_dataset(*, receivers: int = 8, radius: float = 1.0, velocity: float = 1.0,
                    noise_std: float = 0.1) -> xr.Dataset:
    """``receivers`` evenly on a circle of ``radius`` km (the first on the positive x axis)."""
    if receivers < 2:
        raise InputError(f"location problem: need at least 2 receivers, got {receivers}")
    if not (radius > 0 and velocity > 0 and noise_std > 0):
        raise InputError("location problem: radius, velocity and noise_std must be > 0, got "
                         f"{radius}, {velocity}, {noise_std}")
    angle = 2 * np.pi * np.arange(receivers) / receivers
    pos = radius * np.stack([np.cos(angle), np.sin(angle)], -1)
    return xr.Dataset({"receivers": (("receiver", "axis"), pos, {**_KM, "long_name": "receiver position"})},
                      coords={"receiver": np.arange(receivers), "axis": _AXES},
                      attrs={"noise_std": float(noise_std), "velocity": float(velocity), "noise_std_units": "s",
                             "velocity_units": "km/s", "radius": float(radius)})


def _parts(problem: xr.Dataset) -> tuple[np.ndarray, float, float]:
    if "receivers" not in problem or not {"noise_std", "velocity"} <= set(problem.attrs):
        raise InputError("not a location problem dataset: needs receivers and attrs noise_std, velocity")
    return np.asarray(problem["receivers"].values, float), float(problem.attrs["velocity"]), \
        float(problem.attrs["noise_std"])


def forward(x: np.ndarray, receivers: np.ndarray, velocity: float) -> np.ndarray:
    """Travel times ``(..., M)`` from sources ``x (..., 2)`` to every receiver."""
    return np.linalg.norm(np.asarray(x, float)[..., None, :] - receivers, axis=-1) / velocity


def jacobian(x: np.ndarray, receivers: np.ndarray, velocity: float) -> np.ndarray:
    """∂F/∂x ``(..., M, 2)``: the unit vectors from each receiver to x, over the velocity (0 at a receiver)."""
    diff = np.asarray(x, float)[..., None, :] - receivers
    dist = np.linalg.norm(diff, axis=-1, keepdims=True)
    return np.divide(diff, velocity * dist, out=np.zeros_like(diff), where=dist > 0)


def draw_cases(problem: xr.Dataset, *, samples: np.ndarray, seed: int) -> xr.Dataset:
    """``x ~ N(0, I)`` and ``y = F(x) + ε`` for each sample label, label i from ``SeedSequence([seed, i])``."""
    samples = np.atleast_1d(np.asarray(samples, dtype=np.int64))
    if samples.size == 0 or samples.min() < 0:
        raise InputError("draw_cases: sample labels must be a non-empty set of integers >= 0")
    rec, v, sigma = _parts(problem)
    xs, ys = [], []
    for i in samples:
        rng = np.random.default_rng(np.random.SeedSequence([int(seed), int(i)]))
        x = rng.standard_normal(2)
        xs.append(x)
        ys.append(forward(x, rec, v) + sigma * rng.standard_normal(len(rec)))
    return xr.Dataset({
        _VAR: (("sample", "axis"), np.asarray(xs, np.float32), {**_KM, "long_name": "true source position"}),
        "y": (("sample", "receiver"), np.asarray(ys, np.float32), {"units": "s", "long_name": "observed travel time"}),
    }, coords={"sample": _sample_coord(samples), "axis": _AXES})


def prior_estimates(cases: xr.Dataset) -> xr.Dataset:
    """x̂⁰ = 0 (the prior mean) for each sample of ``cases``."""
    n = cases.sizes["sample"]
    return xr.Dataset({_VAR: (("sample", "axis"), np.zeros((n, 2), np.float32), {**_KM, "long_name": "estimate"})},
                      coords={"sample": cases["sample"], "axis": _AXES})


def summaries(estimates: xr.Dataset, cases: xr.Dataset, problem: xr.Dataset) -> xr.Dataset:
    """``gradient`` = J(x̂)ᵀ (y − F(x̂)) / σ² of each sample (the log-likelihood's gradient at the estimate)."""
    rec, v, sigma = _parts(problem)
    samples = estimates["sample"].values
    missing = np.setdiff1d(samples, cases["sample"].values)
    if missing.size:
        raise InputError(f"summaries: samples {missing[:5].tolist()} have an estimate but no observation")
    xhat = np.asarray(estimates[_VAR].values, float)
    y = np.asarray(cases["y"].sel(sample=samples).values, float)
    g = np.einsum("smi,sm->si", jacobian(xhat, rec, v), y - forward(xhat, rec, v)) / sigma**2
    return xr.Dataset({SUMMARY: (("sample", "axis"), g.astype(np.float32),
                                 {"units": "1/km", "long_name": "log-likelihood gradient at the estimate"})},
                      coords={"sample": estimates["sample"], "axis": _AXES})


def _grid_of(reference: xr.Dataset) -> G.Grid:
    axis = np.asarray(reference["gx"].values, float)
    return G.Grid(axis)


def reference_posterior(held_out: xr.Dataset, problem: xr.Dataset, *, points: int = 241,
                        extent: float = 4.0) -> xr.Dataset:
    """The exact posterior of every case of ``held_out`` on a ``points``² grid over ±``extent`` km."""
    rec, v, sigma = _parts(problem)
    grid = G.make_grid(points, extent)
    y = np.asarray(held_out["y"].values, float)
    pred = forward(grid.points, rec, v)
    logp = np.stack([G.log_posterior(grid, yi, pred, sigma) for yi in y])
    mean, cov = G.moments(logp, grid)
    n = grid.n
    coords = {"case": ("case", held_out["sample"].values.astype(np.int64), {"long_name": "held-out sample"}),
              "gx": ("gx", grid.axis, _KM), "gy": ("gy", grid.axis, _KM), "axis": _AXES, "axis_": _AXES}
    return xr.Dataset({
        "log_density": (("case", "gx", "gy"), logp.reshape(-1, n, n),
                        {"units": "log(1/km²)", "long_name": "exact log posterior density"}),
        "mean": (("case", "axis"), mean, {**_KM, "long_name": "exact posterior mean"}),
        "cov": (("case", "axis", "axis_"), cov, {"units": "km²", "long_name": "exact posterior covariance"}),
    }, coords=coords, attrs={"extent": float(extent), "points": int(points)})


def _flat(reference: xr.Dataset, cases: np.ndarray) -> np.ndarray:
    logp = reference["log_density"].sel(case=cases).values
    return np.asarray(logp, float).reshape(len(cases), -1)


def _per_case(cases: np.ndarray, values: dict[str, tuple[np.ndarray, dict]]) -> xr.Dataset:
    ds = xr.Dataset({k: ("case", np.asarray(v, float), attrs) for k, (v, attrs) in values.items()},
                    coords={"case": ("case", np.asarray(cases, np.int64))})
    ds.attrs["role"] = "per_case_metrics"
    return ds


def _mean_error(mean: np.ndarray, reference: xr.Dataset, cases: np.ndarray) -> np.ndarray:
    """‖μ̂ − μ_exact‖² / tr Σ_exact per case (aggregated as the root of its mean)."""
    mu = np.asarray(reference["mean"].sel(case=cases).values, float)
    tr = np.trace(np.asarray(reference["cov"].sel(case=cases).values, float), axis1=-2, axis2=-1)
    return ((mean - mu) ** 2).sum(-1) / tr


_KL_ATTRS = {"units": "nats", "long_name": "KL(exact posterior || CNF) by quadrature on the grid"}
_ME_ATTRS = {"long_name": "sqrt(mean |mean - exact mean|^2 / tr exact cov)", "aggregate": "rms"}


def grid_metrics(checkpoint: xr.Dataset, summaries: xr.Dataset, estimates: xr.Dataset, reference: xr.Dataset,
                 posterior: xr.Dataset) -> xr.Dataset:
    """Per held-out case: ``kl_grid`` = KL(exact ‖ CNF) from the CNF's log-density at every grid point (the
    CNF conditioned on the case's [summary, estimate]), and ``mean_error`` of the posterior mean of
    ``posterior``'s draws against the exact mean, in units of the exact posterior's spread."""
    cases = np.asarray(posterior["case"].values)
    c = condition(summaries, estimates, _VAR, cases)
    grid = _grid_of(reference)
    pts = torch.from_numpy(grid.points)
    logp = _flat(reference, cases)
    kls = np.empty(len(cases))
    with seeded_torch(0, 0, threads=1):
        module = from_dataset(checkpoint).module
        with torch.no_grad():
            for i in range(len(cases)):
                ci = torch.from_numpy(c[i]).to(module.dtype).expand(len(pts), -1)
                logq = module.log_prob(pts.to(module.dtype), ci).double().numpy()
                kls[i] = G.kl(logp[i], logq, grid)[()]
    mean = np.asarray(posterior["draws"].values, float).mean(1)
    return _per_case(cases, {"kl_grid": (kls, _KL_ATTRS), "mean_error": (_mean_error(mean, reference, cases),
                                                                         _ME_ATTRS)})


def ideal_metrics(problem: xr.Dataset, held_out: xr.Dataset, reference: xr.Dataset,
                  *estimates: xr.Dataset) -> xr.Dataset:
    """The best an iteration can do, per held-out case: the posterior given the summaries taken at
    ``estimates`` (x̂⁰…x̂ᵏ⁻¹ of the held-out cases, in order), by quadrature on the reference's grid —
    ``ideal_kl_grid`` (KL(exact ‖ ideal)), ``ideal_rmse`` (RMS over the axes of its mean − truth),
    ``ideal_mean_error``."""
    if not estimates:
        raise InputError("ideal_metrics needs the estimates at which the summaries were taken")
    rec, v, sigma = _parts(problem)
    cases = np.asarray(reference["case"].values)
    grid = _grid_of(reference)
    y = np.asarray(held_out["y"].sel(sample=cases).values, float)
    truth = np.asarray(held_out[_VAR].sel(sample=cases).values, float)
    xhats = [np.asarray(e[_VAR].sel(sample=cases).values, float) for e in estimates]
    exact = _flat(reference, cases)
    logq = np.empty_like(exact)
    pred = forward(grid.points, rec, v)
    for i in range(len(cases)):
        H = np.concatenate([jacobian(x[i], rec, v).T for x in xhats])  # (2k, M)
        _, sv, vt = np.linalg.svd(H, full_matrices=False)
        basis = vt[sv > sv.max() * 1e-10].T  # (M, r): orthonormal basis of H's row space
        logq[i] = G.log_posterior(grid, y[i], pred, sigma, project=basis)
    mean, _ = G.moments(logq, grid)
    return _per_case(cases, {
        "ideal_kl_grid": (G.kl(exact, logq, grid), {**_KL_ATTRS, "long_name": "KL(exact || best posterior "
                                                    "given the iteration's summaries)"}),
        "ideal_rmse": (np.sqrt(((mean - truth) ** 2).mean(-1)), {**_KM, "long_name": "RMS error of the best "
                                                                 "posterior's mean"}),
        "ideal_mean_error": (_mean_error(mean, reference, cases), _ME_ATTRS),
    })
