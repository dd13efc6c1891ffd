"""A structural prior of 2D velocity models: dipping layers of varying depth and velocity, an elliptic
anomaly of varying position, size and contrast, and an optional weak texture.

Sample ``i`` is drawn from its own generator, ``SeedSequence([seed, i])``, so a sample does not depend on
which other samples are drawn with it. The draws of one sample, in this order:

1. ``layers``: the first layer's velocity ~ U(``top_velocity``); per interface (top to bottom) its depth
   at the model's centre x ~ U(``depths[j]``), its dip ~ U(−``max_dip``, ``max_dip``) degrees and its
   velocity step ~ U(``contrast``) (the next layer's velocity minus this one's). An interface is kept at
   least ``min_thickness`` m below the one above it (the lower one is pushed down where they come close).
2. ``anomaly`` (optional): an ellipse whose centre is uniform in the model shrunk by ``margin`` m on every
   side, semi-axes ~ U(``radius``) m each, orientation ~ U(0°, 180°), and a velocity ~ U(``contrast``) m/s
   added inside (negative: slower).
3. ``texture`` (optional): a Gaussian random field of correlation ``correlation_length`` m scaled to
   standard deviation ``std`` m/s and clipped to ±3 ``std``.

Interfaces and the anomaly's edge are anti-aliased over one grid cell (a pixel cut by an interface
takes the velocities of both sides in proportion), so a model varies continuously with its parameters.
:func:`velocity_range` gives the bounds every model of a prior lies in (for time-step checks).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import xarray as xr

from strata_errors import InputError

from .model import model_from_array

__all__ = ["structural_models", "velocity_range", "TEXTURE_CLIP"]

TEXTURE_CLIP = 3.0  # the texture is clipped to ±TEXTURE_CLIP × its std


def _range(what: str, pair: Sequence[float]) -> tuple[float, float]:
    lo, hi = (float(v) for v in pair)
    if not (np.isfinite(lo) and np.isfinite(hi) and lo <= hi):
        raise InputError(f"structural prior: {what} must be a finite range [low, high] with low <= high, "
                         f"got {list(pair)}")
    return lo, hi


def velocity_range(*, layers: Mapping[str, Any], anomaly: Mapping[str, Any] | None = None,
                   texture: Mapping[str, Any] | None = None) -> tuple[float, float]:
    """The lowest and highest velocity (m/s) a model of this prior can have (settings as
    :func:`structural_models`)."""
    top = _range("layers.top_velocity", layers["top_velocity"])
    step = _range("layers.contrast", layers["contrast"])
    n = len(layers["depths"])
    lo = top[0] + n * min(step[0], 0.0)
    hi = top[1] + n * max(step[1], 0.0)
    if anomaly is not None:
        a = _range("anomaly.contrast", anomaly["contrast"])
        lo, hi = lo + min(a[0], 0.0), hi + max(a[1], 0.0)
    if texture is not None:
        t = TEXTURE_CLIP * float(texture["std"])
        lo, hi = lo - t, hi + t
    return lo, hi


def _cover(edge: np.ndarray, h: float) -> np.ndarray:
    """Share of a cell of size ``h`` centred on each node that lies on the far side of a boundary at signed
    distance ``edge`` (m, positive beyond it)."""
    return np.clip(edge / h + 0.5, 0.0, 1.0)


def _layers(rng: np.random.Generator, x: np.ndarray, z: np.ndarray, h: float, s: Mapping[str, Any]) -> np.ndarray:
    top = _range("layers.top_velocity", s["top_velocity"])
    step = _range("layers.contrast", s["contrast"])
    depths = [_range(f"layers.depths[{j}]", d) for j, d in enumerate(s["depths"])]
    max_dip, gap = float(s.get("max_dip", 0.0)), float(s.get("min_thickness", 0.0))
    xc = 0.5 * (x[0] + x[-1])
    vp = np.full((x.size, z.size), rng.uniform(*top))
    above = None
    for d in depths:
        centre = rng.uniform(*d)
        dip = np.deg2rad(rng.uniform(-max_dip, max_dip))
        dv = rng.uniform(*step)
        surface = centre + np.tan(dip) * (x - xc)                      # depth of this interface at each x
        if above is not None:
            surface = np.maximum(surface, above + gap)
        vp += dv * _cover(z[None, :] - surface[:, None], h)
        above = surface
    return vp


def _anomaly(rng: np.random.Generator, x: np.ndarray, z: np.ndarray, h: float, s: Mapping[str, Any]) -> np.ndarray:
    radius = _range("anomaly.radius", s["radius"])
    contrast = _range("anomaly.contrast", s["contrast"])
    margin = float(s.get("margin", 0.0))
    if radius[0] <= 0:
        raise InputError(f"structural prior: anomaly.radius must be > 0 m, got {list(s['radius'])}")
    if 2 * margin >= min(x[-1] - x[0], z[-1] - z[0]):
        raise InputError(f"structural prior: anomaly.margin = {margin:g} m leaves no room for the anomaly's "
                         f"centre in a {x[-1] - x[0]:g} m x {z[-1] - z[0]:g} m model")
    cx = rng.uniform(x[0] + margin, x[-1] - margin)
    cz = rng.uniform(z[0] + margin, z[-1] - margin)
    a, b = rng.uniform(*radius), rng.uniform(*radius)
    angle = rng.uniform(0.0, np.pi)
    dv = rng.uniform(*contrast)
    dx, dz = x[:, None] - cx, z[None, :] - cz
    u = dx * np.cos(angle) + dz * np.sin(angle)
    w = -dx * np.sin(angle) + dz * np.cos(angle)
    r = np.sqrt((u / a) ** 2 + (w / b) ** 2)                          # 1 on the ellipse
    inside = _cover((1.0 - r) * min(a, b), h)                        # distance to the edge, about, in m
    return dv * inside


def _texture(rng: np.random.Generator, shape: tuple[int, int], h: float, s: Mapping[str, Any]) -> np.ndarray:
    from scipy.ndimage import gaussian_filter

    std, length = float(s["std"]), float(s["correlation_length"])
    if std < 0 or not length > 0:
        raise InputError(f"structural prior: texture std must be >= 0 m/s and correlation_length > 0 m, "
                         f"got {std:g}, {length:g}")
    field = gaussian_filter(rng.standard_normal(shape), sigma=length / h / 2, mode="wrap")
    field -= field.mean()
    field *= std / max(field.std(), np.finfo(float).tiny)
    return np.clip(field, -TEXTURE_CLIP * std, TEXTURE_CLIP * std)


def _one(rng: np.random.Generator, x: np.ndarray, z: np.ndarray, h: float, layers: Mapping[str, Any],
         anomaly: Mapping[str, Any] | None, texture: Mapping[str, Any] | None) -> np.ndarray:
    vp = _layers(rng, x, z, h, layers)
    if anomaly is not None:
        vp += _anomaly(rng, x, z, h, anomaly)
    if texture is not None and float(texture["std"]) > 0:
        vp += _texture(rng, vp.shape, h, texture)
    return vp


def structural_models(samples: np.ndarray, *, shape: Sequence[int], spacing: float, layers: Mapping[str, Any],
                      anomaly: Mapping[str, Any] | None = None, texture: Mapping[str, Any] | None = None,
                      seed: int) -> xr.Dataset:
    """``vp`` (sample, x, z) in m/s: one model of the structural prior per sample label, on a ``shape``
    (x, z) grid of ``spacing`` m from the origin (the layout of :func:`tasks.seismic.pairs.sample_models`).

    ``layers``: ``top_velocity`` [lo, hi] m/s, ``contrast`` [lo, hi] m/s (velocity step at each interface),
    ``depths`` one [lo, hi] m range per interface (its depth at the centre x), ``max_dip`` degrees,
    ``min_thickness`` m. ``anomaly`` (None: none): ``radius`` [lo, hi] m (each semi-axis), ``contrast``
    [lo, hi] m/s (added inside), ``margin`` m (the centre stays this far inside the model). ``texture``
    (None: none): ``std`` m/s, ``correlation_length`` m. Sample ``i`` is drawn from
    ``SeedSequence([seed, i])``, as the module describes."""
    samples = np.atleast_1d(np.asarray(samples, dtype=np.int64))
    if samples.size == 0:
        raise InputError("structural_models: zero samples requested")
    if len(shape) != 2 or min(shape) < 3:
        raise InputError(f"structural_models: shape must be two sizes >= 3 (x, z), got {list(shape)}")
    h = float(spacing)
    if not h > 0:
        raise InputError(f"structural_models: spacing must be > 0 m, got {spacing}")
    slowest = velocity_range(layers=layers, anomaly=anomaly, texture=texture)[0]
    if not slowest > 0:
        raise InputError(f"structural_models: the prior's settings allow velocities down to {slowest:g} m/s; "
                         "every velocity must be positive")
    x, z = h * np.arange(int(shape[0])), h * np.arange(int(shape[1]))
    vp = np.empty((samples.size, *x.shape, *z.shape), dtype=np.float32)
    for k, label in enumerate(samples):
        rng = np.random.default_rng(np.random.SeedSequence([int(seed), int(label)]))
        vp[k] = _one(rng, x, z, h, layers, anomaly, texture)
    like = model_from_array(vp[0], h)
    return xr.Dataset({"vp": (("sample", "x", "z"), vp, dict(like.vp.attrs))},
                      coords={"sample": ("sample", samples, {"long_name": "sample index"}), "x": like.x, "z": like.z})
