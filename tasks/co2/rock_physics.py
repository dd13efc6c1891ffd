"""CO2-bearing rock: Gassmann fluid substitution brine → CO2 with patchy or uniform mixing.

The baseline rock is brine-saturated with P velocity ``vp`` (m/s), density ``rho`` (kg/m³) and
porosity ``phi``. Its shear velocity is taken as ``vp/√3`` (Poisson ratio 1/4), so
``μ = ρ vp²/3`` and ``K_sat = ρ vp² − 4/3 μ = 5/9 ρ vp²``. Gassmann's relation gives the dry-frame
bulk modulus ``K_dry`` from ``K_sat`` with brine in the pores, and the saturated modulus for any
other pore fluid from ``K_dry``; ``μ`` does not depend on the fluid. Moduli in Pa.

The inversion is physical only for ``K_reuss < K_sat < K_mineral``, where ``K_reuss`` is the Reuss
average of mineral and brine (``K_dry = 0``, see :func:`min_vp`). A cell with CO2 (``S > 0``)
outside that range is an :class:`InputError` naming the cell. Inside it ``0 < K_dry < K_mineral``,
so every substituted modulus is positive. Cells with ``S == 0`` are returned unchanged, bit for bit.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike

from strata_errors import InputError

__all__ = [
    "K_BRINE",
    "K_CO2",
    "K_MINERAL",
    "RHO_BRINE",
    "RHO_CO2",
    "max_vp",
    "min_vp",
    "patchy",
    "uniform",
]

K_MINERAL = 36.6e9  # Pa, quartz
K_BRINE = 2.735e9  # Pa
K_CO2 = 0.125e9  # Pa, supercritical CO2 at reservoir conditions
RHO_BRINE = 1053.0  # kg/m³
RHO_CO2 = 501.9  # kg/m³


@dataclass(frozen=True)
class _Constants:
    k_mineral: float
    k_brine: float
    k_co2: float
    rho_brine: float
    rho_co2: float


def patchy(
    vp: ArrayLike,
    rho: ArrayLike,
    phi: ArrayLike,
    saturation: ArrayLike,
    *,
    k_mineral: float = K_MINERAL,
    k_brine: float = K_BRINE,
    k_co2: float = K_CO2,
    rho_brine: float = RHO_BRINE,
    rho_co2: float = RHO_CO2,
    coords: Mapping[str, ArrayLike] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """``(vp, rho)`` of the rock with CO2 saturation ``saturation`` in patches (patchy mixing).

    Brine and CO2 fill separate patches larger than the pore-pressure diffusion length at seismic
    frequencies: the P-wave moduli ``M = K + 4/3 μ`` of the fully brine- and fully CO2-saturated
    rock are averaged harmonically, ``1/M = (1−S)/M_brine + S/M_co2``; ``ρ = ρ₀ + φ S (ρ_co2 − ρ_brine)``
    and ``vp = √(M/ρ)``. For stiff frames the density drop can outweigh the modulus drop, so vp need
    not decrease monotonically with S (at φ = 0.25, ρ = 2200 it does below about 4.11 km/s).

    Inputs broadcast together (scalars allowed); outputs have the broadcast shape and the dtypes of
    ``vp`` and ``rho`` (float64 for integers). ``coords`` (dim name → 1-D coordinate in metres, one
    per axis in axis order, e.g. ``{"x": xs, "z": zs}``) only serves to name the offending cell in
    error messages; without it the cell's index is named.
    """
    constants = _Constants(k_mineral, k_brine, k_co2, rho_brine, rho_co2)
    return _substitute("patchy", vp, rho, phi, saturation, constants, coords)


def uniform(
    vp: ArrayLike,
    rho: ArrayLike,
    phi: ArrayLike,
    saturation: ArrayLike,
    *,
    k_mineral: float = K_MINERAL,
    k_brine: float = K_BRINE,
    k_co2: float = K_CO2,
    rho_brine: float = RHO_BRINE,
    rho_co2: float = RHO_CO2,
    coords: Mapping[str, ArrayLike] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """``(vp, rho)`` with CO2 and brine mixed uniformly in every pore (Gassmann–Wood).

    The fluid modulus is the Wood (Reuss) average ``1/K_fl = S/K_co2 + (1−S)/K_brine`` and
    Gassmann is applied once with it. The lower bound of :func:`patchy` (equal at ``S = 0`` and
    ``S = 1``); here for comparison. Arguments, validation and outputs as in :func:`patchy`.
    """
    constants = _Constants(k_mineral, k_brine, k_co2, rho_brine, rho_co2)
    return _substitute("uniform", vp, rho, phi, saturation, constants, coords)


def min_vp(rho: ArrayLike, phi: ArrayLike, *, k_mineral: float = K_MINERAL, k_brine: float = K_BRINE) -> np.ndarray:
    """Baseline vp (m/s) at or below which ``K_dry ≤ 0``: ``√(9/5 K_reuss/ρ)``, with
    ``1/K_reuss = φ/K_brine + (1−φ)/K_mineral``. Does not depend on the CO2 constants."""
    rho_a, phi_a = np.asarray(rho, dtype=float), np.asarray(phi, dtype=float)
    _check_constants(k_mineral=k_mineral, k_brine=k_brine)
    if not np.all(np.isfinite(rho_a) & (rho_a > 0)):
        raise InputError("min_vp: rho must be positive and finite")
    if not np.all((phi_a > 0) & (phi_a < 1)):
        raise InputError("min_vp: phi must be in (0, 1)")
    return np.sqrt(9 / 5 * _k_reuss(phi_a, k_mineral, k_brine) / rho_a)


def max_vp(rho: ArrayLike, *, k_mineral: float = K_MINERAL) -> np.ndarray:
    """Baseline vp (m/s) at or above which ``K_sat ≥ K_mineral`` (and ``K_dry ≥ K_mineral``):
    ``√(9/5 K_mineral/ρ)``, for any porosity."""
    rho_a = np.asarray(rho, dtype=float)
    _check_constants(k_mineral=k_mineral)
    if not np.all(np.isfinite(rho_a) & (rho_a > 0)):
        raise InputError("max_vp: rho must be positive and finite")
    return np.sqrt(9 / 5 * k_mineral / rho_a)


def _k_reuss(phi: np.ndarray, k_mineral: float, k_fluid: float | np.ndarray) -> np.ndarray:
    return 1.0 / (phi / k_fluid + (1.0 - phi) / k_mineral)


def _gassmann_sat(k_dry: np.ndarray, k_fluid: float | np.ndarray, phi: np.ndarray, k_mineral: float) -> np.ndarray:
    """Saturated bulk modulus from the dry-frame one (Gassmann)."""
    b = 1.0 - k_dry / k_mineral
    return k_dry + b * b / (phi / k_fluid + (1.0 - phi) / k_mineral - k_dry / k_mineral**2)


def _gassmann_dry(k_sat: np.ndarray, k_fluid: float, phi: np.ndarray, k_mineral: float) -> np.ndarray:
    """Dry-frame bulk modulus from the saturated one (Gassmann inverted); valid for
    ``K_reuss < k_sat < k_mineral`` only."""
    a = phi * k_mineral / k_fluid
    return (k_sat * (a + 1.0 - phi) - k_mineral) / (a + k_sat / k_mineral - 1.0 - phi)


def _check_constants(**values: float) -> None:
    for name, value in values.items():
        if not (np.isfinite(value) and value > 0):
            raise InputError(f"{name} must be positive and finite, got {value!r}")
    for name in ("k_brine", "k_co2"):
        if name in values and values[name] >= values["k_mineral"]:
            raise InputError(f"{name} {values[name]:g} Pa must be below k_mineral {values['k_mineral']:g} Pa")


def _axes(coords: Mapping[str, ArrayLike] | None, shape: tuple[int, ...]) -> list[tuple[str, np.ndarray]] | None:
    if coords is None:
        return None
    if not isinstance(coords, Mapping):
        raise InputError(f"coords must be a mapping dim name -> 1-D coordinate, got {type(coords).__name__}")
    axes = [(str(name), np.asarray(values)) for name, values in coords.items()]
    got = {name: values.shape for name, values in axes}
    if len(axes) != len(shape) or any(v.shape != (n,) for (_, v), n in zip(axes, shape, strict=False)):
        raise InputError(f"coords must give one 1-D coordinate per axis of the field shape {shape}, got shapes {got}")
    return axes


def _at(bad: np.ndarray, axes: list[tuple[str, np.ndarray]] | None) -> tuple[tuple[int, ...], str]:
    """Index of the first True cell (C order) and its description: ``" at x=…, z=… m"``."""
    index = tuple(int(i) for i in np.unravel_index(int(np.argmax(bad)), bad.shape))
    if not index:
        return index, ""
    if axes is None:
        return index, f" at index {index}"
    named = (f"{name}={float(values[i]):g}" for (name, values), i in zip(axes, index, strict=True))
    return index, " at " + ", ".join(named) + " m"


def _substitute(
    mixing: Literal["patchy", "uniform"],
    vp: ArrayLike,
    rho: ArrayLike,
    phi: ArrayLike,
    saturation: ArrayLike,
    c: _Constants,
    coords: Mapping[str, ArrayLike] | None,
) -> tuple[np.ndarray, np.ndarray]:
    inputs = {"vp": vp, "rho": rho, "phi": phi, "saturation": saturation}
    inputs = {name: np.asarray(a) for name, a in inputs.items()}
    for name, a in inputs.items():
        if not (np.issubdtype(a.dtype, np.floating) or np.issubdtype(a.dtype, np.integer)):
            raise InputError(f"{mixing}: {name} must be real numbers, got dtype {a.dtype}")
    try:
        shape = np.broadcast_shapes(*(a.shape for a in inputs.values()))
    except ValueError:
        shapes = ", ".join(f"{name} {a.shape}" for name, a in inputs.items())
        raise InputError(f"{mixing}: shapes do not broadcast together: {shapes}") from None
    axes = _axes(coords, shape)
    _check_constants(**vars(c))

    v0, r0, ph, s = (np.broadcast_to(a, shape).astype(np.float64) for a in inputs.values())
    checks = (
        ("vp", v0, np.isfinite(v0) & (v0 > 0), "positive and finite"),
        ("rho", r0, np.isfinite(r0) & (r0 > 0), "positive and finite"),
        ("phi", ph, (ph > 0) & (ph < 1), "in (0, 1)"),
        ("saturation", s, (s >= 0) & (s <= 1), "in [0, 1]"),
    )
    for name, values, ok, wanted in checks:
        if not ok.all():
            index, where = _at(~ok, axes)
            raise InputError(f"{mixing}: {name} must be {wanted}, got {values[index]:g}{where}")

    wet = s > 0
    k_sat = 5.0 / 9.0 * r0 * v0**2
    k_reuss = _k_reuss(ph, c.k_mineral, c.k_brine)
    too_low, too_high = wet & (k_sat <= k_reuss), wet & (k_sat >= c.k_mineral)
    if too_low.any() or too_high.any():
        index, where = _at(too_low | too_high, axes)
        v, r, p = v0[index], r0[index], ph[index]
        if too_low[index]:
            limit = np.sqrt(9 / 5 * k_reuss[index] / r)
            problem = f"too low for Gassmann substitution with these constants at phi={p:g}: the dry-frame modulus "
            problem += f"would be negative (needs vp > {limit:.1f} m/s at rho {r:g} kg/m³)"
        else:
            limit = np.sqrt(9 / 5 * c.k_mineral / r)
            problem = "too high for Gassmann substitution with these constants: the saturated bulk modulus would "
            problem += f"reach the mineral modulus {c.k_mineral:g} Pa (needs vp < {limit:.1f} m/s at rho {r:g} kg/m³)"
        raise InputError(f"{mixing}: baseline vp {v:g} m/s{where} is {problem}")

    v, r, p, sw, ks = v0[wet], r0[wet], ph[wet], s[wet], k_sat[wet]
    mu = r * v**2 / 3.0
    k_dry = _gassmann_dry(ks, c.k_brine, p, c.k_mineral)
    if mixing == "patchy":
        m_brine = ks + 4.0 / 3.0 * mu
        m_co2 = _gassmann_sat(k_dry, c.k_co2, p, c.k_mineral) + 4.0 / 3.0 * mu
        m = 1.0 / ((1.0 - sw) / m_brine + sw / m_co2)
    else:
        k_fluid = 1.0 / (sw / c.k_co2 + (1.0 - sw) / c.k_brine)
        m = _gassmann_sat(k_dry, k_fluid, p, c.k_mineral) + 4.0 / 3.0 * mu
    rho_new = r + p * sw * (c.rho_co2 - c.rho_brine)
    if not (rho_new > 0).all():
        index, where = _at(wet & (r0 + ph * s * (c.rho_co2 - c.rho_brine) <= 0), axes)
        raise InputError(
            f"{mixing}: baseline rho {r0[index]:g} kg/m³{where} is too low for phi={ph[index]:g}: "
            "the CO2-bearing density would not be positive"
        )

    vp_out = np.array(np.broadcast_to(inputs["vp"], shape), dtype=_float_dtype(inputs["vp"]))
    rho_out = np.array(np.broadcast_to(inputs["rho"], shape), dtype=_float_dtype(inputs["rho"]))
    vp_out[wet] = np.sqrt(m / rho_new)
    rho_out[wet] = rho_new
    return vp_out, rho_out


def _float_dtype(a: np.ndarray) -> np.dtype:
    return a.dtype if np.issubdtype(a.dtype, np.floating) else np.dtype(np.float64)
