"""Adjoint (dot) tests in float64: the discrete operators are exact transposes.

``<F q, d> = <q, F^T d>`` for the forward modelling operator (source wavelet -> receiver
traces) and ``<J dm, dd> = <dm, J^T dd>`` for Born modelling, with random ``q``, ``d``, ``dm``
and ``dd``; devito measured 1e-15 here, the tolerance is 1e-10. Also: the snapshot forward
run records the same traces as the plain forward solver, and Born modelling is the
derivative of forward modelling (centred finite difference, second-order accurate).
"""

from __future__ import annotations

import numpy as np
import pytest

from tasks.seismic.born import adjoint, backpropagate, born, forward_snapshots, pad
from tasks.seismic.geometry import make_geometry
from tasks.seismic.model import Model, layered_model, smooth_model, with_circle
from tasks.seismic.solver import forward

pytestmark = pytest.mark.slow

H, SO, NBL = 10.0, 8, 20


@pytest.fixture(scope="module")
def setup():
    true = layered_model((61, 51), H, [1500.0, 2000.0], [300.0])
    true = with_circle(true, center=(300.0, 250.0), radius=60.0, vp=2300.0)
    src = np.array([[300.0, 20.0]])
    rec = np.stack([np.linspace(0.0, 600.0, 31), np.full(31, 20.0)], axis=-1)
    geo = make_geometry(true, src, rec, record_length=0.5, space_order=SO, f0=15.0)
    model = Model(smooth_model(true, 30.0), space_order=SO, nbl=NBL, dtype=np.float64)
    return model, true, src, rec, geo


def mismatch(a: float, b: float) -> float:
    return abs(a - b) / max(abs(a), abs(b))


def test_forward_adjoint_dot(setup):
    model, _, src, rec, geo = setup
    dt, nt = float(geo.attrs["dt"]), geo.sizes["time"]
    rng = np.random.default_rng(1)
    q, d = rng.standard_normal(nt), rng.standard_normal((nt, len(rec)))
    fq, _ = forward(model, src, q, rec, dt)
    ftd = adjoint(model, rec, d, src, dt)
    assert ftd.shape == (nt, 1)
    assert mismatch(np.vdot(fq, d), np.vdot(q, ftd[:, 0])) <= 1e-10


def test_born_adjoint_dot(setup):
    model, _, src, rec, geo = setup
    dt, nt = float(geo.attrs["dt"]), geo.sizes["time"]
    wavelet = geo.wavelet.values.astype(np.float64)
    rng = np.random.default_rng(2)
    dm = 1e-8 * rng.standard_normal(model.shape)
    dd = rng.standard_normal((nt, len(rec)))
    jdm = born(model, dm, src, wavelet, rec, dt)
    state = forward_snapshots(model, src, wavelet, rec, dt, factor=1)
    jtdd = backpropagate(model, state, rec, dd, dt)
    assert jtdd.shape == model.shape
    assert mismatch(np.vdot(jdm, dd), np.vdot(dm, jtdd)) <= 1e-10


def test_snapshot_forward_records_the_forward_traces(setup):
    model, _, src, rec, geo = setup
    dt, wavelet = float(geo.attrs["dt"]), geo.wavelet.values.astype(np.float64)
    plain, _ = forward(model, src, wavelet, rec, dt)
    state = forward_snapshots(model, src, wavelet, rec, dt, factor=3)
    np.testing.assert_allclose(state.traces, plain, rtol=0, atol=1e-12 * np.abs(plain).max())
    nt = len(wavelet)
    assert state.usave.data.shape[0] == (nt - 1) // 3 + 1
    assert state.illumination.shape == model.shape and state.illumination.max() > 0


def test_born_is_the_derivative_of_forward(setup):
    model, true, src, rec, geo = setup
    dt, wavelet = float(geo.attrs["dt"]), geo.wavelet.values.astype(np.float64)
    dm = 1.0 / true.vp.values.astype(np.float64) ** 2 - model.m.data[NBL:-NBL, NBL:-NBL]
    m0 = np.array(model.m.data)
    try:
        diffs = []
        for h in (1e-2, 5e-3):
            model.m.data[:] = m0 + h * pad(model, dm)
            plus, _ = forward(model, src, wavelet, rec, dt)
            model.m.data[:] = m0 - h * pad(model, dm)
            minus, _ = forward(model, src, wavelet, rec, dt)
            diffs.append((plus - minus) / (2 * h))
    finally:
        model.m.data[:] = m0
    jdm = born(model, dm, src, wavelet, rec, dt)
    errors = [np.linalg.norm(d - jdm) / np.linalg.norm(jdm) for d in diffs]
    assert errors[0] < 1e-3
    assert 3.0 < errors[0] / errors[1] < 5.0                  # O(h^2)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_born_and_gradient_match_devito_example(setup):
    """Independent reference: devito's ``examples.seismic.acoustic`` Born and gradient, run in
    its units (km/s, ms: its ``dm`` is ours times 1e6, its gradient ours times 1e-6) with its
    damping array put in our model (times 1e-3), agree to round-off (measured ~1e-14)."""
    from devito import Function
    from examples.seismic import AcquisitionGeometry, Receiver
    from examples.seismic import Model as DevitoModel
    from examples.seismic.acoustic import AcousticWaveSolver

    model, true, src, _, _ = setup
    rec = np.stack([np.linspace(100.0, 500.0, 21), np.full(21, 20.0)], axis=-1)
    background = model.vp                                      # float64, (x, z)
    dm = 1.0 / true.vp.values.astype(np.float64) ** 2 - 1.0 / background**2
    theirs = DevitoModel(vp=background / 1000.0, origin=(0.0, 0.0), shape=model.shape,
                         spacing=model.spacing, space_order=SO, nbl=NBL, bcs="damp",
                         dtype=np.float64)
    geo = AcquisitionGeometry(theirs, rec, src, t0=0.0, tn=500.0, f0=0.015,
                              src_type="Ricker")
    solver = AcousticWaveSolver(theirs, geo, space_order=SO)
    dt, wavelet = float(theirs.critical_dt) / 1000.0, geo.src.data[:, 0].astype(np.float64)
    ours = Model(true.assign(vp=(true.vp.dims, background)), space_order=SO, nbl=NBL,
                 dtype=np.float64)
    ours.damp.data[:] = np.asarray(theirs.damp.data) * 1e-3

    dmf = Function(name="dm", grid=theirs.grid, space_order=0)
    dmf.data[:] = pad(ours, dm * 1e6)
    their_born = np.array(solver.jacobian(dmf)[0].data)[:-1]   # their last sample stays 0
    our_born = born(ours, dm, src, wavelet, rec, dt)
    assert np.linalg.norm(our_born[:-1] - their_born) <= 1e-10 * np.linalg.norm(their_born)

    residual = our_born.copy()
    residual[-1] = 0.0
    rr = Receiver(name="rec", grid=theirs.grid, time_range=geo.time_axis, coordinates=rec)
    rr.data[:] = residual
    their_grad = np.array(solver.jacobian_adjoint(rr, solver.forward(save=True)[1])[0].data)
    their_grad = their_grad[NBL:-NBL, NBL:-NBL] * 1e6
    state = forward_snapshots(ours, src, wavelet, rec, dt, factor=1)
    our_grad = backpropagate(ours, state, rec, residual, dt)
    assert np.linalg.norm(our_grad - their_grad) <= 1e-10 * np.linalg.norm(our_grad)
