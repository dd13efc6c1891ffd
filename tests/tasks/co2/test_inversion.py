"""Coupled inversion: the differentiable rock physics matches `patchy`, the gradient through FNO, rock physics
and the wave equation passes a Taylor test, and the data misfit falls over iterations."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import xarray as xr

from tasks.co2.inversion import Objective, PatchyMap, coupled_inversion
from tasks.co2.monitoring import gardner_density
from tasks.co2.rock_physics import patchy
from tasks.co2.surrogate import FNOSurrogate
from tasks.nn.checkpoint import Trained, to_dataset
from tasks.seismic.geometry import acquisition
from tasks.seismic.model import layered_model
from tasks.seismic.solver import survey_shots

N, H, NT = 24, 30.0, 3
FD = {"space_order": 8, "nbl": 16}


def test_patchy_map_is_patchy():
    rng = np.random.default_rng(0)
    vp0 = rng.uniform(3100, 3800, (5, 6))
    rho0, phi = gardner_density(vp0), rng.uniform(0.22, 0.3, (5, 6))
    s = rng.uniform(0, 1, (5, 6))
    vp, _ = patchy(vp0, rho0, phi, s)
    np.testing.assert_allclose(PatchyMap(vp0, rho0, phi)(torch.as_tensor(s)).numpy(), vp, rtol=1e-12)


@pytest.fixture(scope="module")
def problem():
    """A random (untrained) FNO, a layered baseline on a 24x24 grid of 30 m, two shots, and monitor data of a
    'true' log-permeability; the FNO's input scaling centres ln k near 3.5."""
    torch.manual_seed(0)
    fno = FNOSurrogate(times=NT, modes=(6, 6), width=8, layers=2)
    with torch.no_grad():
        fno.in_mean.copy_(torch.tensor([3.5, 0.25]))
        fno.in_std.copy_(torch.tensor([0.5, 0.05]))
        fno.fno.projection.fcs[-1].bias.add_(0.4)  # saturations inside (0, 1)
    ckpt = to_dataset(Trained(fno, {"times": NT, "modes": [6, 6], "width": 8, "layers": 2}))
    base = layered_model((N, N), H, [3000.0, 3300.0, 3600.0], [200.0, 450.0])
    geo = acquisition(base, n_shots=2, shot_spacing=360.0, first_shot_x=150.0, source_depth=30.0, n_receivers=N,
                      receiver_spacing=H, first_receiver_x=0.0, receiver_depth=30.0, record_length=0.6, f0=8.0,
                      space_order=8)
    x = (np.arange(N) + 0.5) * H
    truth = 3.0 + 1.5 * np.exp(-((x[None, :] - 450.0) / 120.0) ** 2) * np.ones((N, 1))  # a channel at 450 m
    phi = np.full((N, N), 0.25)
    sims = xr.Dataset({"permeability": (("sample", "x", "z"), np.exp(truth)[None]),
                       "porosity": (("sample", "x", "z"), phi[None]),
                       "saturation": (("sample", "time", "x", "z"), np.zeros((1, NT, N, N)))},
                      coords={"sample": [7], "time": [100.0, 200.0, 300.0], "x": x, "z": x})
    obj = Objective(ckpt, base, geo, geo, phi, report=NT, **FD)  # observed records set below
    with torch.no_grad():
        _, vp = obj.velocity(torch.as_tensor(truth))
    true_model = base.copy(data={"vp": vp.numpy().astype(np.float32)})
    observed = survey_shots(true_model, geo, **FD)
    return ckpt, base, geo, observed, sims, truth, phi


def test_taylor(problem):
    """|J(θ + hδ) − J(θ)| = O(h), |J(θ + hδ) − J(θ) − h⟨∇J, δ⟩| = O(h²): the chain FNO → rock physics →
    wave equation is differentiated exactly (snapshots every step)."""
    ckpt, base, geo, observed, _, _, phi = problem
    obj = Objective(ckpt, base, geo, observed, phi, report=NT, factor=1, **FD)
    theta = np.full((N, N), np.log(40.0))
    value, grad, _ = obj.gradient(theta)
    delta = np.random.default_rng(1).normal(size=theta.shape)
    delta = -0.5 * grad / np.abs(grad).max() + 0.5 * delta / np.abs(delta).max()  # a descent direction, not only
    hs = [0.2, 0.1, 0.05, 0.025]
    first, second = [], []
    for h in hs:
        dj = obj.value(theta + h * delta) - value
        first.append(abs(dj))
        second.append(abs(dj - h * float((grad * delta).sum())))
    r1 = np.log2(np.array(first[:-1]) / first[1:])
    r2 = np.log2(np.array(second[:-1]) / second[1:])
    assert np.all(r1 > 0.8) and np.all(r1 < 1.2), (first, r1)
    assert np.all(r2 > 1.7), (second, r2)


def test_misfit_falls(problem):
    ckpt, base, geo, observed, sims, truth, _ = problem
    out = coupled_inversion(ckpt, base, geo, observed, sims, sample=7, iterations=3, initial=40.0, **FD)
    m = out["misfit"].values
    assert out["permeability"].dims == ("iteration", "x", "z") and m.shape == (4,)
    assert np.all(np.diff(m) < 0) and m[-1] < 0.8 * m[0], m
    np.testing.assert_allclose(out["true_permeability"].values, np.exp(truth))
