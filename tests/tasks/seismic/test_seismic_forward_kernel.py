"""The survey's two-buffer forward kernel is the textbook three-buffer scheme, rewritten.

Both solve ``m (u+ - 2u + u-)/dt² + damp (u+ - u-)/(2 dt) = lap u`` with the same damping, the
same injection and interpolation; only the storage differs (``u+`` overwrites ``u-`` in place,
``damp`` read from per-axis 1D profiles instead of a full grid). So their traces agree to float32
round-off (float64: 1e-13; float32: the scale of float32 itself, ~1e-4), over a record long
enough for the waves to enter the damping layer and come back.
"""

from __future__ import annotations

import numpy as np
import pytest

from strata_errors import InputError
from tasks.seismic.born import forward_snapshots
from tasks.seismic.model import Model, damping_profiles, layered_model, with_circle
from tasks.seismic.solver import forward
from tasks.seismic.stencil import critical_dt
from tasks.seismic.wavelet import ricker

H, NBL = 10.0, 20


@pytest.fixture(scope="module")
def setup():
    vel = layered_model((81, 61), H, [1500.0, 2200.0, 2800.0], [200.0, 420.0])
    vel = with_circle(vel, center=(400.0, 300.0), radius=60.0, vp=3100.0)
    model = Model(vel, space_order=8, nbl=NBL)
    dt = 0.4 * critical_dt(3100.0, (H, H), 8)
    nt = int(0.9 / dt)  # long enough for reflections off the layer to come back
    wavelet = ricker(15.0, np.arange(nt) * dt)
    src = np.array([[255.0, 43.0]])
    rec = np.stack([np.linspace(5.0, 795.0, 41), np.full(41, 27.5)], axis=-1)
    return model, src, wavelet, rec, dt


def rel(a, b) -> float:
    return float(np.linalg.norm(np.asarray(a, float) - b) / np.linalg.norm(b))


def test_two_buffer_kernel_matches_three_buffer_scheme(setup):
    model, src, wavelet, rec, dt = setup
    exact = Model(model.dataset, space_order=8, nbl=NBL, dtype=np.float64)
    two, _ = forward(exact, src, wavelet, rec, dt)
    three = forward_snapshots(exact, src, wavelet, rec, dt, factor=50).traces
    assert np.abs(three).max() > 0 and rel(two, three) < 1e-11
    two32, _ = forward(model, src, wavelet, rec, dt)
    assert rel(two32, three) < 3e-4


def test_damping_follows_the_profiles_and_not_later_changes_of_m(setup):
    model, src, wavelet, rec, dt = setup
    base, _ = forward(model, src, wavelet, rec, dt)
    saved = [p.copy() for p in model.damp_profiles]
    try:
        model.set_damping([np.zeros_like(p) for p in saved])  # no absorbing layer: edges reflect
        assert float(np.abs(model.damp.data).max()) == 0.0
        rigid, _ = forward(model, src, wavelet, rec, dt)
    finally:
        model.set_damping(saved)
    again, _ = forward(model, src, wavelet, rec, dt)
    np.testing.assert_array_equal(again, base)
    assert np.linalg.norm(rigid - base) > 0.05 * np.linalg.norm(base)
    with pytest.raises(InputError, match="lengths"):
        model.set_damping([np.zeros(3), np.zeros(3)])


def test_damping_profiles_are_zero_inside_and_scaled_by_the_face_velocity():
    vp = np.full((30, 20), 2000.0)
    vp[:, -1] = 4000.0  # the bottom face is twice as fast
    px, pz = damping_profiles(vp, 10, (5.0, 5.0))
    assert px.shape == (50,) and pz.shape == (40,)
    assert np.all(px[10:40] == 0) and np.all(pz[10:30] == 0)
    assert px[0] > px[5] > px[9] > 0 and px[0] == pytest.approx(px[-1])  # ramps up outwards
    assert pz[0] == pytest.approx(2 * pz[-1])  # rate ∝ ramp * vp near each face
    assert damping_profiles(vp, 0, (5.0, 5.0))[0].shape == (30,)

