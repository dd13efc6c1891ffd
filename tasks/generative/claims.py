"""Measures of the claims of "Self-Consuming Generative Models Go MAD" on the ``mad`` and ``mad_gaussian``
studies' curves (:mod:`tasks.claims`): each returns (value, standard error) or raises ``Unmeasured``."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import xarray as xr

from tasks.claims import Unmeasured, paired_change

__all__ = ["PAPER", "recursion_gap", "distance_rise", "metric_change", "fresh_distance_excess"]

PAPER = "Alemohammad et al., Self-Consuming Generative Models Go MAD (ICLR 2024)"


def _loop(curves: xr.Dataset, loop: str) -> xr.Dataset:
    if loop not in [str(v) for v in curves["loop"].values]:
        raise Unmeasured(f"the run has no {loop} loop")
    if curves.sizes["generation"] < 2:
        raise Unmeasured("needs at least one generation after generation 0")
    return curves.sel(loop=loop)


def recursion_gap(outputs: Mapping[str, xr.Dataset], *, loop: str, moment: str) -> tuple[float, float]:
    """``mad_gaussian``: the last generation's mean over chains of the fitted ``moment`` (``var``: trace(Σ)/d,
    ``mean_err``: ‖μ − μ0‖²) minus its exact expectation from the paper's recursion, with the SE over chains."""
    c = _loop(outputs["curves"], loop).isel(generation=-1)
    measured, se = (c["var_mean"], c["var_se"]) if moment == "var" else (c["mean_err"], c["mean_err_se"])
    theory = c["var_theory"] if moment == "var" else c["mean_err_theory"]
    if not np.isfinite(float(theory)):
        raise Unmeasured(f"no exact recursion for the {loop} loop with these settings")
    return float(measured - theory), float(se)


def distance_rise(outputs: Mapping[str, xr.Dataset], *, loop: str) -> tuple[float, float]:
    """``mad_gaussian``: the mean Wasserstein-2 distance to the truth at the last generation minus generation
    0's (SE of the two means combined as if independent: the chains' positive correlation only makes it
    smaller)."""
    c = _loop(outputs["curves"], loop)
    first, last = c.isel(generation=0), c.isel(generation=-1)
    se = float(np.hypot(first["w2_se"], last["w2_se"]))
    if not np.isfinite(se):
        raise Unmeasured("needs at least 2 chains for a standard error")
    return float(last["w2_mean"] - first["w2_mean"]), se


def _chains(outputs: Mapping[str, xr.Dataset], loop: str, bias: str) -> xr.Dataset:
    """``mad``: one loop's curves at the bias ``"1"`` (λ = 1) or ``"below_1"`` (the smallest λ < 1)."""
    c = _loop(outputs["curves"], loop)
    biases = np.asarray(c["bias"].values, float)
    pick = biases[biases == 1.0] if bias == "1" else np.sort(biases[biases < 1.0])
    if not pick.size:
        raise Unmeasured(f"the run has no sampling bias {'λ = 1' if bias == '1' else 'λ < 1'}")
    return c.sel(bias=pick[0])


def metric_change(outputs: Mapping[str, xr.Dataset], *, loop: str, bias: str, metric: str) -> tuple[float, float]:
    """``mad``: the last generation's ``metric`` (precision, recall, fid) minus generation 0's, paired over
    chains."""
    c = _chains(outputs, loop, bias)[metric]
    return paired_change(c.isel(generation=-1).values, c.isel(generation=0).values, what="chains")


def fresh_distance_excess(outputs: Mapping[str, xr.Dataset], *, loop: str, bias: str,
                          factor: float) -> tuple[float, float]:
    """``mad``: the last generation's Fréchet distance minus ``factor`` × generation 0's, paired over chains."""
    c = _chains(outputs, loop, bias)["fid"]
    return paired_change(c.isel(generation=-1).values, factor * c.isel(generation=0).values, what="chains")
