"""Measures of the ASPIRE claims on an ``aspire_metrics`` dataset (the study output ``metrics``), for
:mod:`tasks.claims`: each returns (value, standard error over the held-out cases) or raises ``Unmeasured``.

Iterations are named by position: ``-1`` the last, ``0`` the first. Differences and ratios of two metrics
of the same cases are paired: their standard errors come from the per-case values (``m_per_case``), each
aggregate's linearized per-case contributions (:func:`tasks.inference.aspire_metrics.aggregate`)."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import xarray as xr

from tasks.claims import Unmeasured

from .aspire_metrics import aggregate

__all__ = ["metric", "change", "difference", "ratio", "extreme"]


def _metrics(outputs: Mapping[str, xr.Dataset], *names: str) -> xr.Dataset:
    m = outputs["metrics"]
    for name in names:
        if name not in m:
            raise Unmeasured(f"the run's metrics have no {name}")
    return m


def _contrib(m: xr.Dataset, name: str, at: int) -> tuple[float, np.ndarray]:
    if f"{name}_per_case" not in m:
        raise Unmeasured(f"the run's metrics keep no per-case {name}")
    return aggregate(np.asarray(m[f"{name}_per_case"].isel(iteration=at).values, float),
                     m[name].attrs.get("aggregate", "mean"))


def _se(c: np.ndarray) -> float:
    if c.size < 2:
        raise Unmeasured(f"needs at least 2 held-out cases for a standard error, got {c.size}")
    return float(c.std(ddof=1) / np.sqrt(c.size))


def metric(outputs: Mapping[str, xr.Dataset], *, name: str, at: int = -1) -> tuple[float, float]:
    """Metric ``name`` at iteration position ``at`` and its SE."""
    m = _metrics(outputs, name)
    return float(m[name].isel(iteration=at)), float(m[f"{name}_se"].isel(iteration=at))


def change(outputs: Mapping[str, xr.Dataset], *, name: str) -> tuple[float, float]:
    """The last iteration's ``name`` minus the first's, paired over cases."""
    m = _metrics(outputs, name)
    if m.sizes["iteration"] < 2:
        raise Unmeasured("needs at least 2 iterations")
    (a, ca), (b, cb) = _contrib(m, name, -1), _contrib(m, name, 0)
    return a - b, _se(ca - cb)


def difference(outputs: Mapping[str, xr.Dataset], *, name: str, other: str, at: int = -1) -> tuple[float, float]:
    """``name`` minus ``other`` (e.g. rmse − rmse_linear) at iteration position ``at``, paired over cases."""
    m = _metrics(outputs, name, other)
    (a, ca), (b, cb) = _contrib(m, name, at), _contrib(m, other, at)
    return a - b, _se(ca - cb)


def ratio(outputs: Mapping[str, xr.Dataset], *, name: str, other: str | None = None, at: int = -1,
          other_at: int = -1) -> tuple[float, float]:
    """``name`` at ``at`` over ``other`` (default: the same metric) at ``other_at``, with the delta-method SE
    of the ratio of two means of the same cases."""
    other = other or name
    m = _metrics(outputs, name, other)
    if other == name and m.sizes["iteration"] < 2:
        raise Unmeasured("needs at least 2 iterations")
    (a, ca), (b, cb) = _contrib(m, name, at), _contrib(m, other, other_at)
    if b == 0:
        raise Unmeasured(f"{other} is zero")
    r = a / b
    return r, _se((ca - r * cb) / b)


def extreme(outputs: Mapping[str, xr.Dataset], *, name: str, which: str) -> tuple[float, float]:
    """The smallest (``which = min``) or largest (``max``) value of ``name`` over the iterations, and its SE."""
    m = _metrics(outputs, name)
    values = np.asarray(m[name].values, float)
    i = int(values.argmin() if which == "min" else values.argmax())
    return float(values[i]), float(m[f"{name}_se"].values[i])
