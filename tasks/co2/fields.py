"""Rock for the CO2 flow simulator: permeability (mD) and porosity fields on an (x, z) cell grid.

Grids are cells of ``spacing`` (dx, dz) metres with the first cell's corner at x = z = 0; a field is an
array indexed ``[ix, iz]``, z pointing down. Random fields are seeded only through the ``rng`` given.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import xarray as xr

from strata_errors import InputError

__all__ = ["channelized", "fno4co2_channel", "fno4co2_covariance", "lognormal_grf", "porosity", "rock_samples",
           "grid_spacing"]

K_REF = 50.0  # mD, permeability at which ``from_permeability`` porosity equals ``value``
EXPONENT = 0.1  # porosity ~ permeability**EXPONENT


def grid_spacing(spacing: float | Sequence[float]) -> tuple[float, float]:
    """(dx, dz) in metres from one number or a pair; InputError unless finite and positive."""
    h = np.asarray(spacing, dtype=float)
    h = np.full(2, float(h)) if h.ndim == 0 else h
    if h.shape != (2,) or not (np.isfinite(h).all() and (h > 0).all()):
        raise InputError(f"grid spacing must be one or two positive lengths (dx, dz) in m, got {spacing!r}")
    return float(h[0]), float(h[1])


def _shape(shape: Sequence[int]) -> tuple[int, int]:
    if len(shape) != 2 or min(int(n) for n in shape) < 1:
        raise InputError(f"grid shape must be two cell counts (nx, nz) >= 1, got {tuple(shape)}")
    return int(shape[0]), int(shape[1])


def _gp_draws(x: np.ndarray, std: float, length: float, normals: np.ndarray) -> np.ndarray:
    """Rows of ``normals`` turned into draws of a zero-mean Gaussian process on ``x`` with covariance
    ``std² exp(-(xi - xj)² / (2 length²))`` (eigendecomposition; a 1e-10 relative jitter)."""
    cov = std**2 * np.exp(-0.5 * ((x[:, None] - x[None, :]) / length) ** 2)
    cov[np.diag_indices_from(cov)] += 1e-10 * std**2
    w, v = np.linalg.eigh(cov)
    return normals @ (v * np.sqrt(np.clip(w, 0.0, None))).T


def channelized(shape: Sequence[int] = (64, 64), spacing: float | Sequence[float] = 15.0, *,
                background: float = 20.0, channel: float = 120.0, depth: float = 480.0, thickness: float = 150.0,
                undulation: float = 60.0, correlation_length: float = 300.0,
                rng: np.random.Generator) -> np.ndarray:
    """Permeability (mD) ``[ix, iz]``: ``background``, and ``channel`` in the cells whose centres lie
    between a top and a bottom boundary.

    Top and bottom are ``depth ∓ thickness/2`` (m) plus independent Gaussian-process perturbations along
    x (std ``undulation`` m, squared-exponential correlation ``exp(-d²/(2 correlation_length²))``). The
    bottom is kept at least one cell (dz) below the top, so a column crossing the grid holds one
    contiguous channel run of >= 1 cell."""
    nx, nz = _shape(shape)
    dx, dz = grid_spacing(spacing)
    for name, val in (("background", background), ("channel", channel)):
        if not (np.isfinite(val) and val > 0):
            raise InputError(f"channelized: {name} permeability must be finite and > 0 mD, got {val!r}")
    if not (thickness > 0 and undulation >= 0 and correlation_length > 0):
        raise InputError(f"channelized: need thickness > 0, undulation >= 0, correlation_length > 0 (m), got "
                         f"{thickness!r}, {undulation!r}, {correlation_length!r}")
    x = (np.arange(nx) + 0.5) * dx
    z = (np.arange(nz) + 0.5) * dz
    normals = rng.standard_normal((2, nx))
    bumps = _gp_draws(x, float(undulation), float(correlation_length), normals) if undulation > 0 else 0 * normals
    top = depth - thickness / 2 + bumps[0]
    bottom = np.maximum(depth + thickness / 2 + bumps[1], top + dz)
    inside = (z[None, :] >= top[:, None]) & (z[None, :] < bottom[:, None])
    return np.where(inside, float(channel), float(background))


def fno4co2_covariance(n: int, *, variance: float = 5.0, length: float = 6.25, jitter: float = 1e-5) -> np.ndarray:
    """The covariance of FNO4CO2's channel offsets over ``n`` columns (cells²): ``variance · exp(−Δ² / length²)``
    for columns Δ cells apart, plus ``jitter · variance`` on the diagonal (``scripts/gen_perm.jl``'s
    ``gaussian_kernel``, whose x = 4, 8, …, 4n with delta = 25 is Δ in cells with length 6.25)."""
    d = np.arange(int(n), dtype=np.float64)
    cov = variance * np.exp(-((d[:, None] - d[None, :]) / length) ** 2)
    cov[np.diag_indices_from(cov)] += jitter * variance
    return cov


def fno4co2_channel(shape: Sequence[int] = (64, 64), spacing: float | Sequence[float] = 15.0, *,
                    background: float = 20.0, channel: float = 120.0, variance: float = 5.0, length: float = 6.25,
                    jitter: float = 1e-5, top: Sequence[float] = (0.37, 0.42), bottom: Sequence[float] = (0.55, 0.60),
                    rng: np.random.Generator) -> np.ndarray:
    """Permeability (mD) ``[ix, iz]`` as FNO4CO2's ``scripts/gen_perm.jl`` draws it, in cells: a base top
    ``t0 = round(nz·U(top))`` and bottom ``b0 = round(nz·U(bottom))`` (depth fractions), then per column
    ``t = t0 + round(g1)``, ``b = b0 + round(g2)`` with g1, g2 independent draws of the Gaussian process of
    :func:`fno4co2_covariance` (``variance`` cells², ``length`` cells) over x; cells ``t ≤ iz < b`` (0-based;
    cells t+1…b 1-based) are ``channel``, the rest ``background`` (a column with b ≤ t has no channel, as
    there). Rounding is to the nearest whole cell, ties to even (Julia's and numpy's ``round``)."""
    nx, nz = _shape(shape)
    grid_spacing(spacing)  # checked; the field is defined in cells
    for name, val in (("background", background), ("channel", channel)):
        if not (np.isfinite(val) and val > 0):
            raise InputError(f"fno4co2: {name} permeability must be finite and > 0 mD, got {val!r}")
    if not (np.isfinite(variance) and variance >= 0 and np.isfinite(length) and length > 0 and jitter >= 0):
        raise InputError(f"fno4co2: need variance >= 0 (cells²), length > 0 (cells), jitter >= 0, got "
                         f"{variance!r}, {length!r}, {jitter!r}")
    for name, (lo, hi) in (("top", top), ("bottom", bottom)):
        if not 0 <= lo <= hi <= 1:
            raise InputError(f"fno4co2: {name} must be a depth-fraction range 0 <= low <= high <= 1, "
                             f"got {[lo, hi]!r}")
    t0 = np.round(nz * (top[0] + rng.random() * (top[1] - top[0])))
    b0 = np.round(nz * (bottom[0] + rng.random() * (bottom[1] - bottom[0])))
    normals = rng.standard_normal((2, nx))
    if variance > 0:
        cov = fno4co2_covariance(nx, variance=variance, length=length, jitter=jitter)
        offsets = normals @ np.linalg.cholesky(cov).T
    else:
        offsets = np.zeros_like(normals)
    tops, bottoms = t0 + np.round(offsets[0]), b0 + np.round(offsets[1])
    iz = np.arange(nz)[None, :]
    inside = (iz >= tops[:, None]) & (iz < bottoms[:, None])
    return np.where(inside, float(channel), float(background))


def lognormal_grf(shape: Sequence[int], spacing: float | Sequence[float], *, mean: float = 50.0,
                  log_std: float = 0.5, correlation_length: float = 120.0, rng: np.random.Generator) -> np.ndarray:
    """Permeability (mD) ``exp(ln(mean) + log_std * g)``: ``mean`` is the geometric mean, ``g`` a
    Gaussian random field of correlation ``exp(-d²/(2 correlation_length²))``.

    ``g`` is Gaussian-filtered white noise (sigma ``correlation_length/√2``, drawn on a grid padded by
    3 sigma so the edges are not special), shifted and scaled to exactly zero mean and unit std."""
    from scipy.ndimage import gaussian_filter

    nx, nz = _shape(shape)
    h = np.array(grid_spacing(spacing))
    if not (np.isfinite(mean) and mean > 0 and log_std >= 0 and correlation_length > 0):
        raise InputError(f"lognormal_grf: need mean > 0 mD, log_std >= 0, correlation_length > 0 m, got "
                         f"{mean!r}, {log_std!r}, {correlation_length!r}")
    sigma = correlation_length / np.sqrt(2.0) / h
    pad = np.ceil(3 * sigma).astype(int)
    noise = rng.standard_normal((nx + 2 * pad[0], nz + 2 * pad[1]))
    g = gaussian_filter(noise, sigma=sigma, mode="wrap")[pad[0]:pad[0] + nx, pad[1]:pad[1] + nz]
    g = g - g.mean()
    g /= max(float(g.std()), np.finfo(float).tiny)
    return np.exp(np.log(mean) + log_std * g)


def porosity(permeability: np.ndarray, *, kind: str = "constant", value: float = 0.25, k_ref: float = K_REF,
             exponent: float = EXPONENT) -> np.ndarray:
    """Porosity (fraction) on the grid of ``permeability`` (mD).

    ``"constant"``: ``value`` everywhere. ``"from_permeability"``: ``value * (k / k_ref)**exponent``,
    monotone in k (defaults k_ref = 50 mD, exponent 0.1: 20 mD → 0.228, 120 mD → 0.272 for value 0.25).
    InputError if any porosity leaves (0, 1)."""
    k = np.asarray(permeability, dtype=np.float64)
    if kind == "constant":
        phi = np.full(k.shape, float(value))
    elif kind == "from_permeability":
        if not (np.isfinite(k).all() and (k > 0).all() and k_ref > 0):
            raise InputError("porosity from_permeability: permeability and k_ref must be finite and > 0 mD")
        phi = float(value) * (k / float(k_ref)) ** float(exponent)
    else:
        raise InputError(f"porosity kind must be 'constant' or 'from_permeability', got {kind!r}")
    bad = ~((phi > 0) & (phi < 1))
    if bad.any():
        idx = tuple(int(i) for i in np.unravel_index(int(np.flatnonzero(bad)[0]), bad.shape))
        raise InputError(f"porosity ({kind}) is {float(phi[idx]):g} at cell {idx}, outside (0, 1); check value "
                         f"{value!r}, k_ref {k_ref!r}, exponent {exponent!r}")
    return phi


_porosity = porosity  # ``rock_samples`` has a parameter of the same name
_GENERATORS = {"channelized": channelized, "grf": lognormal_grf, "fno4co2": fno4co2_channel}
_SECTION = {"channelized": "channel", "grf": "grf", "fno4co2": "fno4co2"}  # kind -> its settings' parameter
_RESERVED = {"shape", "spacing", "rng"}


def _settings(name: str, given: Mapping[str, Any] | None, allowed: set[str]) -> dict[str, Any]:
    settings = dict(given or {})
    unknown = sorted(set(settings) - allowed)
    if unknown:
        raise InputError(f"{name} settings: unknown key(s) {unknown} (allowed: {sorted(allowed)})")
    return settings


def rock_samples(samples: np.ndarray, *, kind: str, shape: Sequence[int], spacing: float | Sequence[float],
                 channel: Mapping[str, Any] | None = None, grf: Mapping[str, Any] | None = None,
                 fno4co2: Mapping[str, Any] | None = None, porosity: Mapping[str, Any], seed: int) -> xr.Dataset:
    """``permeability`` (mD) and ``porosity`` (sample, x, z) per sample: a ``kind`` field ("channelized":
    :func:`channelized` with the ``channel`` keyword arguments; "grf": :func:`lognormal_grf` with ``grf``;
    "fno4co2": :func:`fno4co2_channel` with ``fno4co2``), porosity from :func:`porosity` with the ``porosity``
    keyword arguments.

    Sample i draws from ``default_rng(SeedSequence([seed, i]))``, so it does not depend on which other
    samples are computed with it. Coordinates x, z are cell centres (m); attrs ``spacing`` = [dx, dz]."""
    samples = np.atleast_1d(np.asarray(samples, dtype=np.int64))
    if samples.size == 0:
        raise InputError("rock_samples: zero samples requested")
    if kind not in _GENERATORS:
        raise InputError(f"rock_samples: kind must be one of {sorted(_GENERATORS)}, got {kind!r}")
    nx, nz = _shape(shape)
    dx, dz = grid_spacing(spacing)
    make = _GENERATORS[kind]
    given = {"channel": channel, "grf": grf, "fno4co2": fno4co2}[_SECTION[kind]]
    gen_args = _settings(kind, given, set(make.__kwdefaults__) - _RESERVED)
    phi_args = _settings("porosity", porosity, {"kind", "value", "k_ref", "exponent"})
    perm = np.empty((samples.size, nx, nz))
    phi = np.empty_like(perm)
    for n, i in enumerate(samples):
        rng = np.random.default_rng(np.random.SeedSequence([int(seed), int(i)]))
        perm[n] = make((nx, nz), (dx, dz), rng=rng, **gen_args)
        phi[n] = _porosity(perm[n], **phi_args)
    dims = ("sample", "x", "z")
    coords = {
        "sample": ("sample", samples, {"long_name": "sample index"}),
        "x": ("x", (np.arange(nx) + 0.5) * dx, {"units": "m", "long_name": "x (cell centre)"}),
        "z": ("z", (np.arange(nz) + 0.5) * dz, {"units": "m", "long_name": "depth (cell centre)"}),
    }
    return xr.Dataset(
        {"permeability": (dims, perm, {"units": "mD", "long_name": "permeability"}),
         "porosity": (dims, phi, {"units": "1", "long_name": "porosity"})},
        coords=coords, attrs={"spacing": [dx, dz], "kind": kind, "seed": int(seed)})

