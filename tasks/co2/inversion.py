"""Coupled inversion: permeability from time-lapse seismic data through the FNO, rock physics and the
wave equation.

Unknown θ = ln k (mD) on the flow grid. Forward: θ → FNO (with the case's porosity) → saturation S at the
monitor's report time → patchy rock physics on the baseline → vp → monitor records F(vp). Objective
J(θ) = ½‖F(vp(θ)) − d_obs‖². Gradient: ∂J/∂m from our adjoint (:func:`tasks.seismic.gradient.fwi_gradient`,
m = 1/vp²), ∂J/∂vp = −2 ∂J/∂m / vp³, then torch autograd through rock physics and the FNO to θ.
Steps: gradient descent on θ with the step normalized by max|∇θ J| (``step`` in ln-mD units), halved
until J falls (Armijo-free backtracking, at most ``backtracks`` times), θ kept inside ``bounds``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import xarray as xr

from strata_errors import InputError
from tasks.nn.checkpoint import from_dataset
from tasks.nn.training import seeded_torch
from tasks.seismic.gradient import fwi_gradient, fwi_objective
from tasks.seismic.model import model_from_array, model_spacing
from tasks.seismic.solver import shared_model

from .monitoring import baseline_rock
from .rock_physics import patchy

__all__ = ["PatchyMap", "Objective", "coupled_inversion"]


class PatchyMap:
    """Patchy rock physics of one baseline as a differentiable map S ↦ vp (torch, float64): the P-wave
    moduli of the brine- and the fully CO2-saturated rock come from :func:`patchy` (numpy, with its checks),
    then ``1/M = (1−S)/M_brine + S/M_co2``, ``ρ = ρ₀ + φS(ρ_CO2 − ρ_brine)``, ``vp = √(M/ρ)``."""

    def __init__(self, vp0: np.ndarray, rho0: np.ndarray, phi: np.ndarray, coords: dict | None = None,
                 rho_brine: float = 1053.0, rho_co2: float = 501.9):
        vp1, rho1 = patchy(vp0, rho0, phi, np.ones_like(vp0), coords=coords, rho_brine=rho_brine, rho_co2=rho_co2)
        t = lambda a: torch.tensor(np.asarray(a, dtype=np.float64))  # noqa: E731 - a copy (inputs may be read-only)
        self.m_brine, self.m_co2 = t(rho0 * vp0.astype(np.float64) ** 2), t(rho1 * vp1.astype(np.float64) ** 2)
        self.rho0, self.drho = t(rho0), t(phi * (rho_co2 - rho_brine))

    def __call__(self, s: torch.Tensor) -> torch.Tensor:
        modulus = 1.0 / ((1.0 - s) / self.m_brine + s / self.m_co2)
        return torch.sqrt(modulus / (self.rho0 + s * self.drho))


class Objective:
    """J(θ) and ∇θ J for one held-out case (see the module docstring)."""

    def __init__(self, checkpoint: xr.Dataset, baseline: xr.Dataset, geometry: xr.Dataset, observed: xr.Dataset,
                 porosity: np.ndarray, *, report: int, space_order: int, nbl: int, factor: int = 1):
        self.fno = from_dataset(checkpoint).module  # float32 (complex64 spectral weights)
        for p in self.fno.parameters():
            p.requires_grad_(False)
        vp0, rho0, coords = baseline_rock(baseline)
        self.phi = torch.tensor(np.asarray(porosity, dtype=np.float64))
        self.rock = PatchyMap(vp0, rho0, np.asarray(porosity, dtype=np.float64), coords)
        self.baseline, self.geometry, self.observed = baseline, geometry, observed
        self.report, self.fd, self.factor = report, {"space_order": space_order, "nbl": nbl}, factor

    def velocity(self, theta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(S, vp) of ln-permeability ``theta`` (x, z), on the autograd graph of ``theta``."""
        x = torch.stack([theta, self.phi]).float()[None]
        s = self.fno(x)[0, self.report - 1].double().clamp(0.0, 1.0)
        return s, self.rock(s)

    def _model(self, vp: np.ndarray):
        ds = model_from_array(vp.astype(np.float32), model_spacing(self.baseline),
                              [float(self.baseline[d].values[0]) for d in self.baseline["vp"].dims])
        return shared_model(ds, self.geometry, **self.fd)

    def value(self, theta: np.ndarray) -> float:
        with torch.no_grad():
            _, vp = self.velocity(torch.tensor(theta))
        return fwi_objective(self._model(vp.numpy()), self.geometry, self.observed)

    def gradient(self, theta: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
        """J, ∇θ J and the saturation at ``theta``."""
        th = torch.tensor(theta, requires_grad=True)
        s, vp = self.velocity(th)
        v = vp.detach().numpy()
        value, g_m = fwi_gradient(self._model(v), self.geometry, self.observed, factor=self.factor, edge_padded=True)
        vp.backward(torch.as_tensor(-2.0 * g_m / v**3))
        return value, th.grad.numpy().copy(), s.detach().numpy()


def coupled_inversion(checkpoint: xr.Dataset, baseline: xr.Dataset, geometry: xr.Dataset, observed: xr.Dataset,
                      simulations: xr.Dataset, *, sample: int, report: int | None = None, iterations: int = 10,
                      initial: float = 40.0, bounds: Sequence[float] = (5.0, 500.0), step: float = 0.5,
                      backtracks: int = 4, space_order: int = 8, nbl: int = 40, factor: int = 1) -> xr.Dataset:
    """Invert the time-lapse monitor records ``observed`` for the permeability of held-out ``sample``
    (its porosity from ``simulations``, its true permeability kept for comparison), starting from a
    constant ``initial`` mD. Returns (kind ``coupled_inversion``) ``permeability`` and ``saturation``
    (iteration, x, z), ``misfit`` (iteration; iteration 0 = the start), ``log_error`` (RMS of ln k − ln k_true),
    ``true_permeability`` and ``observed_saturation`` (x, z)."""
    if sample not in simulations["sample"].values:
        raise InputError(f"the simulations have no sample {sample}")
    if iterations < 1 or step <= 0 or not 0 < bounds[0] < initial < bounds[1]:
        raise InputError(f"coupled inversion: need iterations >= 1, step > 0 and bounds[0] < initial < bounds[1], got "
                         f"{iterations}, {step}, {initial}, {list(bounds)}")
    case = simulations.sel(sample=sample)
    nt = case.sizes["time"]
    t = nt if report is None else report
    if not 1 <= t <= nt:
        raise InputError(f"report {t} is outside the simulations' report times 1-{nt}")
    with seeded_torch(0, threads=1):  # torch on one thread: Devito runs in this process too
        return _invert(Objective(checkpoint, baseline, geometry, observed, case["porosity"].values, report=t,
                                 factor=factor, space_order=space_order, nbl=nbl),
                       case, iterations, initial, bounds, step, backtracks, sample, t)


def _invert(obj: Objective, case: xr.Dataset, iterations: int, initial: float, bounds: Sequence[float], step: float,
            backtracks: int, sample: int, t: int) -> xr.Dataset:
    lo, hi = np.log(bounds[0]), np.log(bounds[1])
    theta = np.full(case["permeability"].shape, np.log(initial))
    truth = np.log(np.asarray(case["permeability"].values, dtype=np.float64))
    thetas, sats, misfits = [], [], []
    value, grad, sat = obj.gradient(theta)
    for i in range(iterations + 1):
        thetas.append(theta.copy())
        sats.append(sat)
        misfits.append(value)
        if i == iterations:
            break
        direction = -grad / max(float(np.abs(grad).max()), 1e-300)
        alpha = step
        for _ in range(backtracks + 1):
            trial = np.clip(theta + alpha * direction, lo, hi)
            if obj.value(trial) < value:
                theta = trial
                break
            alpha /= 2
        value, grad, sat = obj.gradient(theta)
    dims = ("iteration", *case["permeability"].dims)
    it = np.arange(len(thetas))
    k = np.exp(np.stack(thetas))
    return xr.Dataset(
        {"permeability": (dims, k, {"units": "mD", "long_name": "inverted permeability"}),
         "saturation": (dims, np.stack(sats), {"units": "1", "long_name": "FNO saturation at the monitor time"}),
         "misfit": ("iteration", np.asarray(misfits), {"long_name": "1/2 ||F(vp) - d_obs||^2"}),
         "log_error": ("iteration", np.sqrt(((np.stack(thetas) - truth) ** 2).mean(axis=(1, 2))),
                       {"long_name": "RMS of ln k - ln k_true"}),
         "true_permeability": (case["permeability"].dims, np.exp(truth), {"units": "mD"}),
         "observed_saturation": (case["permeability"].dims, np.asarray(case["saturation"].isel(time=t - 1).values),
                                 {"units": "1", "long_name": "simulated saturation at the monitor time"})},
        coords={"iteration": it, **{d: case[d] for d in case["permeability"].dims}},
        attrs={"sample": int(sample), "report": int(t), "initial_mD": float(initial)})
