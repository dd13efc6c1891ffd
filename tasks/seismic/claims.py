"""Measures of the imaging claims, for :mod:`tasks.claims`: functions of a ``seismic_imaging`` run's output
``image_quality`` (:func:`tasks.seismic.quality.compare_images`). An image is deterministic given its inputs:
the values carry no standard error (0), and the claims compare them without a margin. LSRTM's residual is not
a claim: CGLS's recurrence makes it non-increasing by construction (``tests/tasks/seismic/test_lsrtm.py``
checks it against an explicit ``||J x - d||``)."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import xarray as xr

from tasks.claims import Unmeasured

__all__ = ["interface_miss", "low_wavenumber_share", "spurious_peak_ratio"]


def _quality(outputs: Mapping[str, xr.Dataset], condition: str | None) -> xr.Dataset:
    q = outputs["image_quality"]
    if condition is None:
        return q.isel(condition=0)
    if condition not in [str(c) for c in q["condition"].values]:
        raise Unmeasured(f"the run computed no {condition!r} image")
    return q.sel(condition=condition)


def low_wavenumber_share(outputs: Mapping[str, xr.Dataset], *, condition: str | None = None) -> tuple[float, float]:
    """Share of the image's energy below ``k_low`` (the study's own condition unless named)."""
    return float(_quality(outputs, condition)["low_wavenumber_share"]), 0.0


def _matched(q: xr.Dataset) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Per trace: (interfaces, the as many strongest peaks' depths, their heights), and the other peaks."""
    if "interface_depth" not in q:
        raise Unmeasured("the true model is not known")
    out = []
    for t in range(q.sizes["trace"]):
        faces = q["interface_depth"].values[t]
        faces = faces[np.isfinite(faces)]
        depth, height = q["peak_depth"].values[t], q["peak_height"].values[t]
        ok = np.isfinite(depth)
        depth, height = depth[ok], height[ok]
        if faces.size == 0:
            raise Unmeasured("no interface along the traces looked at")
        if depth.size < faces.size:
            raise Unmeasured(f"fewer envelope peaks ({depth.size}) than interfaces ({faces.size})")
        out.append((faces, depth, height))
    return out


def interface_miss(outputs: Mapping[str, xr.Dataset], *, condition: str | None = None) -> tuple[float, float]:
    """Largest distance (m), over the traces at ¼ and ¾ of the width, between a true interface and the
    depth of the envelope peak matched to it among the as many strongest peaks (sorted by depth)."""
    worst = 0.0
    for faces, depth, _ in _matched(_quality(outputs, condition)):
        strongest = np.sort(depth[:faces.size])
        worst = max(worst, float(np.max(np.abs(strongest - np.sort(faces)))))
    return worst, 0.0


def spurious_peak_ratio(outputs: Mapping[str, xr.Dataset], *, condition: str | None = None) -> tuple[float, float]:
    """Largest ratio, over the traces, of the strongest envelope peak beyond the as many strongest as there
    are interfaces to the weakest of those (0 when there is none)."""
    worst = 0.0
    for faces, _, height in _matched(_quality(outputs, condition)):
        n = faces.size
        if height.size > n:
            worst = max(worst, float(height[n] / height[n - 1]))
    return worst, 0.0
