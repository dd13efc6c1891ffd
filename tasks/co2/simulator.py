"""Incompressible, immiscible two-phase flow of CO2 and brine on a 2D (x, z) cell grid, IMPES.

No capillary pressure. Cells are ``dx × dz`` metres and ``thickness`` m out of plane, the first cell's
corner at x = z = 0, z = depth (down), outer boundaries closed. Units: permeability mD, viscosity cP (as
given; converted to m² and Pa·s inside), densities kg/m³, gravity m/s², rates m³/s of reservoir volume,
pressure Pa, times s (``simulate``) or days (``simulate_samples``).

Pressure: two-point fluxes, face transmissibility = harmonic mean of the two cells' permeability ×
arithmetic mean of their total mobility; sparse direct solve. With gravity g > 0 the phase potentials
are Φ_α = p − ρ_α g z, so a z-face (upper cell a, lower cell b) carries the total flux
``u = T λt (p_a − p_b) + T g dz (λc ρc + λb ρb)`` (the second term with the same arithmetic face mean)
and the pressure equation gets that gravity term on its right-hand side: a column at rest is
hydrostatic. Without pressure-controlled wells the pressure is defined up to a constant: it is fixed
so that its mean over the cells is ``p_ref``.
Transport: explicit first-order finite volumes of the CO2 saturation in flux form, the total face
fluxes frozen between pressure solves; injectors add pure CO2, producers remove ``f(S_cell)·|q|``.
Without gravity the CO2 face flux is ``f(S_up) u`` upwind of u. With gravity, x-faces are the same and
a z-face carries ``F = λc/(λc + λb) · (u + λb G)``, ``G = T g dz (ρc − ρb)`` (the brine flux is u − F),
each phase mobility taken upwind of its own phase flux (phase-potential upwinding, so CO2 rising
through brine that sinks is upwinded correctly): where u and G push CO2 the same way its direction is
certain, otherwise the brine's is; that phase is upwinded first and the other one's sign computed with
its mobility. The result is consistent (each phase flows from the cell it is upwinded from) and
λc + λb > 0 at every face. Step bound: ``cfl · pv / c`` per cell with
``c = max f' · Σ_out |u| + M_g · Σ_z-faces |G|``, where M_g bounds the derivative of the gravity part
over any pair of (upwind) cell states (:meth:`Fluids.max_gravity_slope`): a Lipschitz bound of F in
each cell's saturation, finite in a closed column with no wells. The CO2 volume is conserved to
round-off: Σ φ S V = initial + injected − produced at every step. With g = 0 the gravity-free
arithmetic is used unchanged.
"""

from __future__ import annotations

import json
import math
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp
import xarray as xr
from scipy.sparse.linalg import spsolve

from strata_errors import InputError

from .fields import grid_spacing
from .rock_physics import RHO_BRINE, RHO_CO2

__all__ = ["Fluids", "SimulationResult", "simulate", "simulate_samples", "mass_balance_error", "check_wells"]

MILLIDARCY = 9.869233e-16  # m²
CENTIPOISE = 1e-3  # Pa·s
DAY = 86400.0  # s
P_REF = 1.0e7  # Pa, mean pressure when only rate wells fix the flow
WELL_RADIUS = 0.1  # m, default radius of a pressure-controlled well
BALANCE_TOL = 1e-9  # |Σ q| <= BALANCE_TOL · Σ |q| for rate wells only


@dataclass(frozen=True)
class SimulationResult:
    """Report-time states of :func:`simulate`: ``saturation`` (CO2, fraction) and ``pressure`` (Pa),
    both (time, x, z); ``injected_co2``/``produced_co2`` (time,) cumulative m³ since t = 0; the number
    of pressure solves and transport steps taken."""

    saturation: np.ndarray
    pressure: np.ndarray
    injected_co2: np.ndarray
    produced_co2: np.ndarray
    pressure_solves: int
    transport_steps: int


@dataclass(frozen=True)
class Fluids:
    """Corey relative permeabilities on the effective saturation ``Se = (S - s_co2) / (1 - s_co2 - s_brine)``
    (clipped to [0, 1]): ``krc = Se**n_co2``, ``krb = (1 - Se)**n_brine``; viscosities in Pa·s."""

    mu_co2: float
    mu_brine: float
    n_co2: float = 2.0
    n_brine: float = 2.0
    s_co2: float = 0.0
    s_brine: float = 0.0

    def mobilities(self, s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(λ_CO2, λ_brine) in 1/(Pa·s) at CO2 saturation ``s``."""
        se = np.clip((s - self.s_co2) / (1.0 - self.s_co2 - self.s_brine), 0.0, 1.0)
        return se**self.n_co2 / self.mu_co2, (1.0 - se) ** self.n_brine / self.mu_brine

    def fractional_flow(self, s: np.ndarray) -> np.ndarray:
        """f = λ_CO2 / (λ_CO2 + λ_brine)."""
        lc, lb = self.mobilities(s)
        return lc / (lc + lb)

    def max_slope(self) -> float:
        """max over S of df/dS (analytic derivative on 20001 effective saturations)."""
        se = np.linspace(0.0, 1.0, 20001)
        lc, lb = se**self.n_co2 / self.mu_co2, (1.0 - se) ** self.n_brine / self.mu_brine
        dlc = self.n_co2 * se ** (self.n_co2 - 1.0) / self.mu_co2
        dlb = -self.n_brine * (1.0 - se) ** (self.n_brine - 1.0) / self.mu_brine
        slope = (dlc * lb - lc * dlb) / (lc + lb) ** 2
        return float(slope.max()) / (1.0 - self.s_co2 - self.s_brine)

    def max_gravity_slope(self) -> float:
        """M_g in 1/(Pa·s): bounds |∂F/∂S| / |G| of the gravity part of the phase-upwinded z-face flux
        ``F = λc/(λc + λb)·(u + λb G)`` over any two upwind states (S_a for CO2, S_b for brine):
        ``max(λc'(S_a) λb² / (λc + λb)², |λb'(S_b)| λc² / (λc + λb)²)`` (the derivatives of λcλb/(λc + λb)).
        The first grows with λb and the second with λc, so their maxima lie at λb = 1/μ_brine and
        λc = 1/μ_co2 (analytic derivatives on 20001 effective saturations)."""
        se = np.linspace(0.0, 1.0, 20001)
        lc, lb = se**self.n_co2 / self.mu_co2, (1.0 - se) ** self.n_brine / self.mu_brine
        dlc = self.n_co2 * se ** (self.n_co2 - 1.0) / self.mu_co2
        dlb = self.n_brine * (1.0 - se) ** (self.n_brine - 1.0) / self.mu_brine
        lb0, lc1 = 1.0 / self.mu_brine, 1.0 / self.mu_co2
        rising = dlc * lb0**2 / (lc + lb0) ** 2
        sinking = dlb * lc1**2 / (lc1 + lb) ** 2
        return max(float(rising.max()), float(sinking.max())) / (1.0 - self.s_co2 - self.s_brine)


@dataclass(frozen=True)
class _Well:
    name: str
    x: float
    z: float
    ix: int
    iz: int
    rate: float | None  # m³/s, > 0 injects CO2
    pressure: float | None  # Pa, bottom-hole pressure of a pressure-controlled well
    radius: float

    def record(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "x": self.x, "z": self.z, "ix": self.ix, "iz": self.iz}
        if self.rate is not None:
            return {**out, "rate": self.rate}
        return {**out, "pressure": self.pressure, "radius": self.radius}


@dataclass(frozen=True)
class _Case:
    k: np.ndarray  # m²
    phi: np.ndarray
    dx: float
    dz: float
    thickness: float
    wells: tuple[_Well, ...]
    times: np.ndarray  # s
    fluids: Fluids
    cfl: float
    substep: bool
    dt: float | None
    pressure_steps: int
    p_ref: float
    s0: np.ndarray  # initial CO2 saturation
    rho_co2: float  # kg/m³
    rho_brine: float  # kg/m³
    gravity: float  # m/s², 0: off


def _at(ix: int, iz: int, dx: float, dz: float) -> str:
    return f"x={(ix + 0.5) * dx:g} m, z={(iz + 0.5) * dz:g} m (cell {ix}, {iz})"


def _first_bad(name: str, values: np.ndarray, bad: np.ndarray, dx: float, dz: float, need: str) -> None:
    if bad.any():
        ix, iz = (int(i) for i in np.unravel_index(int(np.flatnonzero(bad)[0]), bad.shape))
        raise InputError(f"{name} is {float(values[ix, iz]):g} at {_at(ix, iz, dx, dz)}; it must be {need} "
                         f"({int(bad.sum())} bad cells)")


def _finite(v: Any) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isfinite(float(v))


def _positive(**values: float) -> None:
    for name, v in values.items():
        if not (_finite(v) and v > 0):
            raise InputError(f"{name} must be a finite number > 0, got {v!r}")


def _report_times(times: Sequence[float], unit: str) -> np.ndarray:
    try:
        t = np.asarray(times, dtype=np.float64)
    except (TypeError, ValueError):
        t = np.array([np.nan])
    if t.ndim != 1 or t.size == 0 or not np.isfinite(t).all():
        raise InputError(f"report times must be a non-empty list of finite times ({unit}), got {times!r}")
    steps = np.diff(np.concatenate([[0.0], t]))
    if (steps <= 0).any():
        i = int(np.flatnonzero(steps <= 0)[0])
        before = "t = 0" if i == 0 else f"report time #{i - 1} ({t[i - 1]:.6g} {unit})"
        raise InputError(f"report times must be > 0 and strictly increasing: #{i} ({t[i]:.6g} {unit}) is not "
                         f"after {before}")
    return t


def _parse_wells(wells: Sequence[Mapping[str, Any]], nx: int, nz: int, dx: float, dz: float) -> tuple[_Well, ...]:
    if not wells:
        return ()
    parsed: list[_Well] = []
    taken: dict[tuple[int, int], str] = {}
    for n, w in enumerate(wells):
        name = w.get("name") if isinstance(w, Mapping) else None
        if not isinstance(name, str) or not name:
            raise InputError(f"well #{n} needs a 'name' (a non-empty string), got {w!r}")
        unknown = sorted(set(w) - {"name", "x", "z", "rate", "pressure", "radius"})
        if unknown or "x" not in w or "z" not in w or ("rate" in w) == ("pressure" in w):
            raise InputError(f"well {name!r}: give 'x', 'z' (m) and exactly one of 'rate' (m³/s) or 'pressure' "
                             f"(Pa), optionally 'radius' (m) for a pressure well; got keys {sorted(w)}")
        for key in ("x", "z", "rate", "pressure", "radius"):
            v = w.get(key, 0.0)
            if not _finite(v):
                raise InputError(f"well {name!r}: {key} must be a finite number, got {v!r}")
        x, z = float(w["x"]), float(w["z"])
        if not (0 <= x <= nx * dx and 0 <= z <= nz * dz):
            raise InputError(f"well {name!r} at x={x:g} m, z={z:g} m lies outside the grid "
                             f"(0-{nx * dx:g} m x 0-{nz * dz:g} m)")
        ix, iz = min(int(x // dx), nx - 1), min(int(z // dz), nz - 1)
        if (ix, iz) in taken:
            raise InputError(f"wells {taken[ix, iz]!r} and {name!r} both lie in the cell at {_at(ix, iz, dx, dz)}")
        if name in taken.values():
            raise InputError(f"two wells are named {name!r}")
        taken[ix, iz] = name
        radius = float(w.get("radius", WELL_RADIUS))
        if "pressure" in w and not (0 < radius < 0.14 * math.hypot(dx, dz)):
            raise InputError(f"well {name!r}: radius {radius!r} m must be > 0 and below the Peaceman radius "
                             f"{0.14 * math.hypot(dx, dz):.3g} m of its cell")
        parsed.append(_Well(name, x, z, ix, iz, float(w["rate"]) if "rate" in w else None,
                            float(w["pressure"]) if "pressure" in w else None, radius))
    rates = np.array([w.rate for w in parsed if w.rate is not None])
    if not (rates > 0).any():
        raise InputError("simulate: no injector (a well with 'rate' > 0 m³/s)")
    inj, prod = float(rates[rates > 0].sum()), float(-rates[rates < 0].sum())
    if all(w.rate is not None for w in parsed) and abs(inj - prod) > BALANCE_TOL * (inj + prod):
        raise InputError(f"well rates do not balance: injection {inj:.6g} m³/s vs production {prod:.6g} m³/s; "
                         f"incompressible flow needs them equal, or a pressure-controlled producer")
    return tuple(parsed)


def check_wells(wells: Sequence[Mapping[str, Any]], shape: Sequence[int], spacing: float | Sequence[float]) -> None:
    """Check a well list against a grid of ``shape`` cells of ``spacing`` m, as :func:`simulate` does before any
    work (InputError naming the well): keys, finite values, inside the grid, one well per cell, distinct
    names, an injector (unless the list is empty), balanced rates when every well is rate-controlled."""
    dx, dz = grid_spacing(spacing)
    _parse_wells(wells, int(shape[0]), int(shape[1]), dx, dz)


def _prepare(permeability: np.ndarray, porosity: np.ndarray, *, spacing: float | Sequence[float], thickness: float,
             wells: Sequence[Mapping[str, Any]], times: Sequence[float], mu_co2: float, mu_brine: float,
             corey: Sequence[float], residual: Sequence[float], cfl: float, substep: bool, dt: float | None,
             pressure_steps: int, p_ref: float, initial_saturation: np.ndarray | None = None,
             rho_co2: float = RHO_CO2, rho_brine: float = RHO_BRINE, gravity: float = 0.0) -> _Case:
    """Check every input (InputError naming the place) and convert to SI."""
    k = np.asarray(permeability, dtype=np.float64)
    phi = np.asarray(porosity, dtype=np.float64)
    if k.ndim != 2 or k.size == 0:
        raise InputError(f"permeability must be a non-empty 2D (x, z) array, got shape {k.shape}")
    if phi.shape != k.shape:
        raise InputError(f"porosity shape {phi.shape} differs from permeability shape {k.shape}")
    dx, dz = grid_spacing(spacing)
    _positive(thickness=thickness, mu_co2=mu_co2, mu_brine=mu_brine, cfl=cfl)
    _first_bad("permeability", k, ~(np.isfinite(k) & (k > 0)), dx, dz, "finite and > 0 mD")
    _first_bad("porosity", phi, ~((phi > 0) & (phi < 1)), dx, dz, "in (0, 1)")
    if cfl > 1:
        raise InputError(f"cfl must be in (0, 1], got {cfl!r}")
    if len(corey) != 2 or not all(_finite(n) and n >= 1 for n in corey):
        raise InputError(f"corey exponents (CO2, brine) must be two numbers >= 1, got {corey!r}")
    if len(residual) != 2 or not all(_finite(r) and r >= 0 for r in residual) or sum(residual) >= 1:
        raise InputError(f"residual saturations (CO2, brine) must be >= 0 with sum < 1, got {residual!r}")
    if not (isinstance(pressure_steps, int | np.integer) and pressure_steps >= 1):
        raise InputError(f"pressure_steps must be an integer >= 1, got {pressure_steps!r}")
    if dt is not None:
        _positive(dt=dt)
    if not _finite(p_ref):
        raise InputError(f"p_ref must be a finite pressure in Pa, got {p_ref!r}")
    _positive(rho_co2=rho_co2, rho_brine=rho_brine)
    if not (_finite(gravity) and gravity >= 0):
        raise InputError(f"gravity must be a finite number >= 0 m/s² (0: off), got {gravity!r}")
    s0 = _initial_saturation(initial_saturation, k.shape, dx, dz)
    t = _report_times(times, "s")
    return _Case(k * MILLIDARCY, phi, dx, dz, float(thickness), _parse_wells(wells, *k.shape, dx, dz), t,
                 Fluids(mu_co2 * CENTIPOISE, mu_brine * CENTIPOISE, float(corey[0]), float(corey[1]),
                        float(residual[0]), float(residual[1])),
                 float(cfl), bool(substep), None if dt is None else float(dt), int(pressure_steps), float(p_ref),
                 s0, float(rho_co2), float(rho_brine), float(gravity))


def _initial_saturation(s: np.ndarray | None, shape: tuple[int, ...], dx: float, dz: float) -> np.ndarray:
    if s is None:
        return np.zeros(shape)
    try:
        s0 = np.array(s, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise InputError(f"initial_saturation must be a numeric (x, z) array of shape {shape}: {err}") from None
    if s0.shape != shape:
        raise InputError(f"initial_saturation shape {s0.shape} differs from permeability shape {shape}")
    _first_bad("initial_saturation", s0, ~((s0 >= 0) & (s0 <= 1)), dx, dz, "in [0, 1]")
    return s0


class _Flow:
    """The pressure system of one case: geometric transmissibilities, matrix pattern, well indices; with
    gravity, ``gdelta`` = G = T g dz (ρc − ρb) of every z-face (m³·Pa; None without gravity)."""

    def __init__(self, case: _Case) -> None:
        self.case = case
        k, (nx, nz), h = case.k, case.k.shape, case.thickness
        self.shape, self.n = (nx, nz), nx * nz
        # harmonic face transmissibility area·2·k1·k2/(spacing·(k1+k2)), m³
        self.tx = 2 * case.dz * h * k[:-1] * k[1:] / (case.dx * (k[:-1] + k[1:]))
        self.tz = 2 * case.dx * h * k[:, :-1] * k[:, 1:] / (case.dz * (k[:, :-1] + k[:, 1:]))
        ids = np.arange(self.n).reshape(nx, nz)
        a = np.concatenate([ids[:-1].ravel(), ids[:, :-1].ravel()])
        b = np.concatenate([ids[1:].ravel(), ids[:, 1:].ravel()])
        self.a, self.b = a, b
        self.rows = np.concatenate([a, b, a, b, np.arange(self.n)])
        self.cols = np.concatenate([a, b, b, a, np.arange(self.n)])
        self.rate_wells = [w for w in case.wells if w.rate is not None]
        self.bhp_wells = [w for w in case.wells if w.pressure is not None]
        # Peaceman: a well along y (length = thickness) in an isotropic cell, r0 = 0.14·sqrt(dx² + dz²)
        r0 = 0.14 * math.hypot(case.dx, case.dz)
        self.wi = np.array([2 * math.pi * k[w.ix, w.iz] * h / math.log(r0 / w.radius) for w in self.bhp_wells])
        self.bhp_idx = np.array([ids[w.ix, w.iz] for w in self.bhp_wells], dtype=np.int64)
        self.tz_g = self.tz * case.gravity * case.dz  # T g dz, m³·m²/s² (times ρ λ: m³/s)
        self.gdelta = self.tz_g * (case.rho_co2 - case.rho_brine) if case.gravity else None

    def gravity_flux(self, lc: np.ndarray, lb: np.ndarray) -> np.ndarray | None:
        """The z-faces' gravity part of the total flux T g dz · mean(λc ρc + λb ρb) (m³/s, + downwards), or
        None without gravity."""
        if not self.case.gravity:
            return None
        m = lc * self.case.rho_co2 + lb * self.case.rho_brine
        return self.tz_g * 0.5 * (m[:, :-1] + m[:, 1:])

    def solve(self, s: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Pressure (Pa, (x, z)), x- and z-face total fluxes (m³/s, + towards larger index) and the rates
        of the pressure-controlled wells (m³/s, < 0 produces) at saturation ``s``."""
        case = self.case
        lc, lb = case.fluids.mobilities(s)
        lt = lc + lb
        tx = self.tx * 0.5 * (lt[:-1] + lt[1:])
        tz = self.tz * 0.5 * (lt[:, :-1] + lt[:, 1:])
        t = np.concatenate([tx.ravel(), tz.ravel()])
        diag = np.zeros(self.n)
        rhs = np.zeros(self.n)
        for w in self.rate_wells:
            rhs[w.ix * self.shape[1] + w.iz] += w.rate
        well_mob = self.wi * lt.ravel()[self.bhp_idx]
        np.add.at(diag, self.bhp_idx, well_mob)
        np.add.at(rhs, self.bhp_idx, well_mob * (np.array([w.pressure for w in self.bhp_wells]) - case.p_ref))
        gz = self.gravity_flux(lc, lb)
        if gz is not None:  # the gravity flux out of the upper cell, into the lower one
            grid = rhs.reshape(self.shape)
            grid[:, :-1] -= gz
            grid[:, 1:] += gz
        if not self.bhp_wells:  # singular (Neumann) system: anchor the first cell, re-centre below
            diag[0] += t.mean() if t.size else 1.0
        mat = sp.csc_matrix((np.concatenate([t, t, -t, -t, diag]), (self.rows, self.cols)), shape=(self.n, self.n))
        dp = np.atleast_1d(spsolve(mat, rhs, permc_spec="MMD_AT_PLUS_A")).reshape(self.shape)  # pressure minus p_ref
        if not self.bhp_wells:
            dp -= dp.mean()
        fx = tx * (dp[:-1] - dp[1:])
        fz = tz * (dp[:, :-1] - dp[:, 1:])
        if gz is not None:
            fz += gz
        q_bhp = well_mob * (np.array([w.pressure for w in self.bhp_wells]) - case.p_ref - dp.ravel()[self.bhp_idx])
        return dp + case.p_ref, fx, fz, q_bhp


def _floor3(x: float) -> float:
    """``x`` rounded down to 3 significant digits (a bound that is safe to quote)."""
    e = math.floor(math.log10(x)) - 2
    return math.floor(x / 10.0**e) * 10.0**e


def _phase_upwind(lc: np.ndarray, lb: np.ndarray, u: np.ndarray, g: np.ndarray) -> np.ndarray:
    """CO2 flux through the z-faces (m³/s, + downwards), ``λc/(λc + λb)·(u + λb g)`` with each phase's
    mobility from the cell upstream of that phase's flux: total flux ``u``, gravity term ``g`` = G."""
    def pick(lam: np.ndarray, from_upper: np.ndarray) -> np.ndarray:
        return np.where(from_upper, lam[:, :-1], lam[:, 1:])

    down = u >= 0
    co2_sure = (g >= 0) == down  # u and G push CO2 the same way: its direction is known, else the brine's
    lc_sure, lb_sure = pick(lc, down), pick(lb, down)
    lc_up = np.where(co2_sure, lc_sure, pick(lc, u + lb_sure * g >= 0))
    lb_up = np.where(co2_sure, pick(lb, u - lc_sure * g >= 0), lb_sure)
    return lc_up / (lc_up + lb_up) * (u + lb_up * g)


class _Transport:
    """Upwind CO2 transport over one pressure step: fluxes and well rates frozen; ``gdelta`` the z-faces'
    G (None without gravity), ``slopes`` (max f', M_g)."""

    def __init__(self, case: _Case, fx: np.ndarray, fz: np.ndarray, q_bhp: np.ndarray, bhp_idx: np.ndarray,
                 slopes: tuple[float, float], gdelta: np.ndarray | None = None) -> None:
        nz = case.k.shape[1]
        self.case, self.fx, self.fz, self.gdelta = case, fx, fz, gdelta
        self.pv = case.phi * case.dx * case.dz * case.thickness  # pore volume, m³
        rate_idx = np.array([w.ix * nz + w.iz for w in case.wells if w.rate is not None], dtype=np.int64)
        rates = np.array([w.rate for w in case.wells if w.rate is not None])
        idx, q = np.concatenate([rate_idx, bhp_idx]), np.concatenate([rates, q_bhp])
        is_rate = np.arange(q.size) < rates.size
        self.inj_idx, self.inj_q = idx[is_rate & (q > 0)], q[is_rate & (q > 0)]  # pure CO2
        self.prod_idx, self.prod_q = idx[q < 0], q[q < 0]  # the cell's fluid; a bhp well with q > 0 injects brine
        self.pos_x, self.pos_z = fx > 0, fz > 0
        out = np.zeros(case.k.shape)
        out[:-1] += np.maximum(fx, 0)
        out[1:] += np.maximum(-fx, 0)
        out[:, :-1] += np.maximum(fz, 0)
        out[:, 1:] += np.maximum(-fz, 0)
        np.add.at(out.ravel(), self.prod_idx, -self.prod_q)
        self.bound = self._bound(out, *slopes)
        self.gx = np.zeros((fx.shape[0] + 2, fx.shape[1]))
        self.gz = np.zeros((fz.shape[0], fz.shape[1] + 2))

    def _bound(self, out: np.ndarray, slope: float, gravity_slope: float) -> float:
        """``cfl`` × the smallest pore volume / (max f' · total outflow + M_g · Σ |G| of the z-faces) (s)."""
        if self.gdelta is None:
            moving = out > 0
            return self.case.cfl * float((self.pv[moving] / (slope * out[moving])).min()) if moving.any() else math.inf
        vertical = np.zeros_like(out)
        vertical[:, :-1] += np.abs(self.gdelta)
        vertical[:, 1:] += np.abs(self.gdelta)
        rate = slope * out + gravity_slope * vertical
        moving = rate > 0
        return self.case.cfl * float((self.pv[moving] / rate[moving]).min()) if moving.any() else math.inf

    def steps(self, interval: float) -> tuple[int, float]:
        """Number and length of the equal steps covering ``interval`` s (InputError if a fixed step is too long)."""
        case = self.case
        if case.substep:
            cap = self.bound if case.dt is None else min(self.bound, case.dt)
        else:
            cap = interval if case.dt is None else case.dt
        n = max(1, math.ceil(interval / cap * (1 - 1e-12)))
        step = interval / n
        if not case.substep and step > self.bound:
            raise InputError(f"time step {step:.2g} s exceeds the transport CFL bound {self.bound:.2g} s (cfl "
                             f"{case.cfl:g}); allow sub-stepping or take dt <= {_floor3(self.bound):.3g} s")
        return n, step

    def advance(self, s: np.ndarray, n: int, step: float) -> tuple[np.ndarray, float, float]:
        """``n`` explicit upwind steps of ``step`` s: new saturation, CO2 volume injected, produced (m³)."""
        injected = produced = 0.0
        rate_in = float(self.inj_q.sum())
        for _ in range(n):
            f = self._face_fluxes(s)
            net = (self.gx[:-1] - self.gx[1:]) + (self.gz[:, :-1] - self.gz[:, 1:])
            flat = net.ravel()
            flat[self.inj_idx] += self.inj_q
            out = self.prod_q * f.ravel()[self.prod_idx]
            flat[self.prod_idx] += out
            s = s + step * net / self.pv
            injected += step * rate_in
            produced -= step * float(out.sum())
        return s, injected, produced

    def _face_fluxes(self, s: np.ndarray) -> np.ndarray:
        """Fill the CO2 face fluxes ``gx``, ``gz`` (m³/s) at saturation ``s``; returns f(s)."""
        if self.gdelta is None:
            f = self.case.fluids.fractional_flow(s)
            self.gx[1:-1] = self.fx * np.where(self.pos_x, f[:-1], f[1:])
            self.gz[:, 1:-1] = self.fz * np.where(self.pos_z, f[:, :-1], f[:, 1:])
            return f
        lc, lb = self.case.fluids.mobilities(s)
        f = lc / (lc + lb)
        self.gx[1:-1] = self.fx * np.where(self.pos_x, f[:-1], f[1:])
        self.gz[:, 1:-1] = _phase_upwind(lc, lb, self.fz, self.gdelta)
        return f


def _run(case: _Case) -> SimulationResult:
    flow = _Flow(case)
    slopes = case.fluids.max_slope(), case.fluids.max_gravity_slope() if case.gravity else 0.0
    nt = case.times.size
    sat = np.empty((nt, *case.k.shape))
    pres = np.empty_like(sat)
    inj, prod = np.zeros(nt), np.zeros(nt)
    s = case.s0
    p, fx, fz, q_bhp = flow.solve(s)
    solves, steps = 1, 0
    injected = produced = 0.0
    t_prev = 0.0
    for i, t in enumerate(case.times):
        edges = np.linspace(t_prev, t, case.pressure_steps + 1)
        for m in range(case.pressure_steps):
            if m > 0:
                p, fx, fz, q_bhp = flow.solve(s)
                solves += 1
            transport = _Transport(case, fx, fz, q_bhp, flow.bhp_idx, slopes, flow.gdelta)
            n, step = transport.steps(float(edges[m + 1] - edges[m]))
            s, di, dp = transport.advance(s, n, step)
            injected, produced, steps = injected + di, produced + dp, steps + n
        p, fx, fz, q_bhp = flow.solve(s)  # the report-time pressure starts the next interval too
        solves += 1
        sat[i], pres[i], inj[i], prod[i] = s, p, injected, produced
        t_prev = float(t)
    return SimulationResult(sat, pres, inj, prod, solves, steps)


def simulate(permeability: np.ndarray, porosity: np.ndarray, *, spacing: float | Sequence[float] = (15.0, 15.0),
             thickness: float = 1.0, wells: Sequence[Mapping[str, Any]] = (), times: Sequence[float],
             mu_co2: float = 0.1, mu_brine: float = 1.0, corey: Sequence[float] = (2.0, 2.0),
             residual: Sequence[float] = (0.0, 0.0), cfl: float = 0.9, substep: bool = True,
             dt: float | None = None, pressure_steps: int = 1, p_ref: float = P_REF,
             initial_saturation: np.ndarray | None = None, rho_co2: float = RHO_CO2,
             rho_brine: float = RHO_BRINE, gravity: float = 0.0) -> SimulationResult:
    """Two-phase flow from t = 0 (CO2 saturation ``initial_saturation``, (x, z) in [0, 1], default 0) to
    each report time (s).

    ``permeability`` (mD) and ``porosity`` are (x, z) cell arrays, ``spacing`` (dx, dz) m, ``thickness``
    m out of plane. ``wells``: dicts ``{"name", "x", "z", "rate"}`` (m³/s; > 0 injects CO2, < 0 produces
    the cell's fluid at its fractional flow) or ``{"name", "x", "z", "pressure"[, "radius"]}`` (Pa,
    bottom-hole; rate ``WI·λt·(pressure - p_cell)``, Peaceman ``WI = 2π k thickness / ln(r0/radius)``,
    ``r0 = 0.14·sqrt(dx² + dz²)``, radius default 0.1 m; should it inject, it injects brine), each in the
    cell containing (x, z); a non-empty list needs an injector. No wells or rate wells only: rates must
    balance and the mean pressure is ``p_ref`` (Pa). Viscosities in cP; ``corey`` and ``residual`` are
    (CO2, brine) (:class:`Fluids`). Densities ``rho_co2``, ``rho_brine`` kg/m³ and ``gravity`` m/s²
    (0: none, the gravity-free arithmetic; > 0: buoyancy along z, the depth; a well's pressure is at its
    cell's centre).

    Each report interval takes ``pressure_steps`` equal pressure steps; in each, the transport takes
    equal steps no longer than ``cfl`` times the upwind stability bound (and ``dt`` s, if given). With
    ``substep=False`` a step of ``dt`` (default: the whole pressure step) above the bound is an
    InputError. The pressure reported at a report time is solved at that time's saturation."""
    case = _prepare(permeability, porosity, spacing=spacing, thickness=thickness, wells=wells, times=times,
                    mu_co2=mu_co2, mu_brine=mu_brine, corey=corey, residual=residual, cfl=cfl, substep=substep,
                    dt=dt, pressure_steps=pressure_steps, p_ref=p_ref, initial_saturation=initial_saturation,
                    rho_co2=rho_co2, rho_brine=rho_brine, gravity=gravity)
    return _run(case)


def _rock_spacing(rock: xr.Dataset) -> tuple[float, float]:
    for var in ("permeability", "porosity"):
        if var not in rock.data_vars or tuple(rock[var].dims) != ("sample", "x", "z"):
            raise InputError(f"simulate_samples: rock needs {var} (sample, x, z), got "
                             f"{tuple(rock[var].dims) if var in rock.data_vars else 'none'}")
    if rock.sizes["sample"] == 0:
        raise InputError("simulate_samples: the rock dataset has zero samples")
    if "spacing" in rock.attrs:
        dx, dz = grid_spacing(rock.attrs["spacing"])
    else:
        dx, dz = (float(rock[d].values[1] - rock[d].values[0]) if rock.sizes[d] > 1 else 1.0 for d in ("x", "z"))
    for d, h in (("x", dx), ("z", dz)):
        centres = (np.arange(rock.sizes[d]) + 0.5) * h
        if not np.allclose(rock[d].values, centres, rtol=1e-9, atol=1e-9 * h):
            raise InputError(f"simulate_samples: rock coordinate {d!r} must be cell centres (i + 0.5)·{h:g} m")
    return dx, dz


def simulate_samples(rock: xr.Dataset, *, wells: Sequence[Mapping[str, Any]], times: Sequence[float],
                     thickness: float = 1.0, mu_co2: float = 0.1, mu_brine: float = 1.0,
                     corey: Sequence[float] = (2.0, 2.0), residual: Sequence[float] = (0.0, 0.0), cfl: float = 0.9,
                     substep: bool = True, dt: float | None = None, pressure_steps: int = 1,
                     p_ref: float = P_REF, rho_co2: float = RHO_CO2, rho_brine: float = RHO_BRINE,
                     gravity: float = 0.0) -> xr.Dataset:
    """:func:`simulate` for every sample of ``rock`` (as from ``rock_samples``); ``times`` in days,
    ``dt`` in seconds. Every sample's inputs are checked before any is simulated.

    Returns ``saturation``, ``pressure`` (Pa) (sample, time, x, z); ``injected_co2``, ``produced_co2``
    (sample, time) cumulative m³; ``pressure_solves``, ``transport_steps`` (sample); ``permeability``,
    ``porosity`` copied; coords sample, time (days), x, z; attrs ``spacing``, ``thickness``, ``wells``
    (JSON), fluid and gravity settings — enough for :func:`mass_balance_error`."""
    dx, dz = _rock_spacing(rock)
    t_days = _report_times(times, "d")
    settings = dict(spacing=(dx, dz), thickness=thickness, wells=wells, times=t_days * DAY, mu_co2=mu_co2,
                    mu_brine=mu_brine, corey=corey, residual=residual, cfl=cfl, substep=substep, dt=dt,
                    pressure_steps=pressure_steps, p_ref=p_ref, rho_co2=rho_co2, rho_brine=rho_brine, gravity=gravity)
    cases = [_prepare(rock["permeability"].values[n], rock["porosity"].values[n], **settings)
             for n in range(rock.sizes["sample"])]
    results = [_run(case) for case in cases]
    field, series = ("sample", "time", "x", "z"), ("sample", "time")
    attrs = {"spacing": [dx, dz], "thickness": float(thickness), "wells": json.dumps([w.record() for w in
                                                                                       cases[0].wells]),
             "mu_co2": float(mu_co2), "mu_brine": float(mu_brine), "corey": [float(c) for c in corey],
             "residual": [float(r) for r in residual], "cfl": float(cfl), "substep": int(bool(substep)),
             "pressure_steps": int(pressure_steps), "p_ref": float(p_ref), "rho_co2": float(rho_co2),
             "rho_brine": float(rho_brine), "gravity": float(gravity),
             "mobility_average": "arithmetic", "permeability_average": "harmonic",
             "gravity_upwinding": "phase potential" if gravity else "none"}
    if dt is not None:
        attrs["dt"] = float(dt)
    stack = np.stack
    return xr.Dataset(
        {"saturation": (field, stack([r.saturation for r in results]), {"units": "1", "long_name": "CO2 saturation"}),
         "pressure": (field, stack([r.pressure for r in results]), {"units": "Pa", "long_name": "pressure"}),
         "injected_co2": (series, stack([r.injected_co2 for r in results]),
                          {"units": "m3", "long_name": "cumulative CO2 injected (reservoir volume)"}),
         "produced_co2": (series, stack([r.produced_co2 for r in results]),
                          {"units": "m3", "long_name": "cumulative CO2 produced (reservoir volume)"}),
         "pressure_solves": ("sample", np.array([r.pressure_solves for r in results], dtype=np.int64)),
         "transport_steps": ("sample", np.array([r.transport_steps for r in results], dtype=np.int64)),
         "permeability": rock["permeability"], "porosity": rock["porosity"]},
        coords={"sample": rock["sample"], "time": ("time", t_days, {"units": "d", "long_name": "time since start"}),
                "x": rock["x"], "z": rock["z"]},
        attrs=attrs)


def mass_balance_error(ds: xr.Dataset) -> np.ndarray:
    """(sample, time) relative CO2 mass-balance error from a :func:`simulate_samples` dataset alone:
    (Σ φ S dx dz thickness − (injected − produced)) / injected."""
    dx, dz = ds.attrs["spacing"]
    stored = (ds["porosity"] * ds["saturation"]).sum(("x", "z")).transpose("sample", "time").values
    stored = stored * dx * dz * ds.attrs["thickness"]
    net = (ds["injected_co2"] - ds["produced_co2"]).transpose("sample", "time").values
    return (stored - net) / np.maximum(ds["injected_co2"].transpose("sample", "time").values, np.finfo(float).tiny)
