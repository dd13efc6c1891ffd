"""The stylized linear-Gaussian problem as datasets, for the ``aspire_stylized`` study's steps.

``problem``: ``A`` (datum, component), ``mu0`` (component), ``G0`` (component, component_),
``Gn`` (datum, datum_). ``pairs``: ``x`` (sample, component) and ``y`` (sample, datum); sample ``i``
is drawn from ``SeedSequence([seed, i])``, whatever samples are drawn with it. Estimates and
summaries follow :mod:`tasks.inference.aspire`'s conventions (``x`` and ``gradient``, (sample, component)).
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from strata_errors import InputError

from .stylized import LinearGaussian, make_problem, sample_pairs, summary

__all__ = ["problem_dataset", "as_problem", "draw_pairs", "prior_estimates", "summaries", "reference_posterior"]

_VAR = "x"


def problem_dataset(*, d: int, m: int, seed: int, prior_scale: float = 1.0, noise_scale: float = 0.3,
                    noise_correlation: float = 0.5, spread: float = 4.0) -> xr.Dataset:
    """:func:`tasks.inference.stylized.make_problem` as a dataset."""
    p = make_problem(d, m, seed=seed, prior_scale=prior_scale, noise_scale=noise_scale,
                     noise_correlation=noise_correlation, spread=spread)
    return xr.Dataset({
        "A": (("datum", "component"), p.A, {"long_name": "forward operator"}),
        "mu0": ("component", p.mu0, {"long_name": "prior mean"}),
        "G0": (("component", "component_"), p.G0, {"long_name": "prior covariance"}),
        "Gn": (("datum", "datum_"), p.Gn, {"long_name": "noise covariance"}),
    }, attrs={"d": d, "m": m, "seed": seed})


def as_problem(ds: xr.Dataset) -> LinearGaussian:
    """The :class:`LinearGaussian` of a problem dataset."""
    missing = {"A", "mu0", "G0", "Gn"} - set(map(str, ds.data_vars))
    if missing:
        raise InputError(f"not a linear problem dataset: missing {sorted(missing)}")
    return LinearGaussian(*(np.asarray(ds[v].values, float) for v in ("A", "mu0", "G0", "Gn")))


def _sample_coord(samples: np.ndarray) -> tuple:
    return ("sample", np.asarray(samples, dtype=np.int64), {"long_name": "sample index"})


def draw_pairs(problem: xr.Dataset, *, samples: np.ndarray, seed: int) -> xr.Dataset:
    """``x ~ N(mu0, G0)`` and ``y = A x + eps`` for each sample label."""
    samples = np.atleast_1d(np.asarray(samples, dtype=np.int64))
    if samples.size == 0 or samples.min() < 0:
        raise InputError("draw_pairs: sample labels must be a non-empty set of integers >= 0")
    p = as_problem(problem)
    xs, ys = zip(*(sample_pairs(p, 1, seed=seed, index=int(i)) for i in samples), strict=True)
    return xr.Dataset({
        _VAR: (("sample", "component"), np.concatenate(xs).astype(np.float32), {"long_name": "true x"}),
        "y": (("sample", "datum"), np.concatenate(ys).astype(np.float32), {"long_name": "observed y"}),
    }, coords={"sample": _sample_coord(samples)})


def prior_estimates(pairs: xr.Dataset, problem: xr.Dataset) -> xr.Dataset:
    """The initial estimates x̂⁰: the prior mean, for each sample of ``pairs``."""
    mu0 = as_problem(problem).mu0.astype(np.float32)
    n = pairs.sizes["sample"]
    return xr.Dataset({_VAR: (("sample", "component"), np.tile(mu0, (n, 1)), {"long_name": "estimate of x"})},
                      coords={"sample": pairs["sample"]})


def summaries(estimates: xr.Dataset, pairs: xr.Dataset, problem: xr.Dataset) -> xr.Dataset:
    """``gradient`` = Aᵀ Gn⁻¹ (A x̂ − y) of each sample (the data-misfit gradient at the estimate)."""
    p = as_problem(problem)
    samples = estimates["sample"].values
    missing = np.setdiff1d(samples, pairs["sample"].values)
    if missing.size:
        raise InputError(f"summaries: samples {missing[:5].tolist()} have an estimate but no observation")
    y = np.asarray(pairs["y"].sel(sample=samples).values, float)
    g = summary(np.asarray(estimates[_VAR].values, float), y, p.A, p.Gn)
    return xr.Dataset({"gradient": (("sample", "component"), g.astype(np.float32),
                                    {"long_name": "data-misfit gradient at the estimate"})},
                      coords={"sample": estimates["sample"]})


def reference_posterior(pairs: xr.Dataset, problem: xr.Dataset) -> xr.Dataset:
    """The analytic posterior of each sample's ``y``: ``mean`` (sample, component), ``cov`` (component, component_)."""
    p = as_problem(problem)
    mean, cov = p.posterior(np.asarray(pairs["y"].values, float))
    return xr.Dataset({"mean": (("sample", "component"), mean, {"long_name": "analytic posterior mean"}),
                       "cov": (("component", "component_"), cov, {"long_name": "analytic posterior covariance"})},
                      coords={"sample": pairs["sample"]})
