"""Our solver against devito's example solver (``examples.seismic``, installed by its wheel).

Same model, geometry, Ricker wavelet, space order, nbl and dt. Both discretize
``m u_tt + damp u_t = lap u`` with the same centred stencils, inject ``src dt^2 / m`` and
interpolate bilinearly, so the only difference is the absorbing layer's coefficient:
both are sums of per-axis ramps, ours ``1.5 ln(1000) ramp / (nbl h v_face)`` with ``v_face``
the mean velocity of the nearest model face (a damping rate ≈ proportional to the local
velocity), devito's ``1.5 ln(1000) ramp / (nbl h)`` in its units (m, ms, km/s), i.e. a rate
proportional to ``vp**2 / (1 km/s)``. Hence (1) before any wave can reach the layer the
traces agree to float32 round-off, and (2) with devito's damping profiles put in our model
(times 1e-3 for ms -> s) they agree over the whole record.
"""

from __future__ import annotations

import numpy as np
import pytest

from tasks.seismic.geometry import make_geometry
from tasks.seismic.model import Model, layered_model, with_circle
from tasks.seismic.solver import forward

pytestmark = pytest.mark.slow

H, SO, NBL, F0 = 12.5, 8, 40, 10.0
SHAPE = (97, 84)


def rel_l2(a, b) -> float:
    return float(np.linalg.norm(np.asarray(a, float) - b) / np.linalg.norm(b))


def first_edge_time(src, recs, lower, upper, vmax) -> float:
    """Earliest time a wave from ``src`` can reach any receiver via a model edge."""
    best = np.inf
    for axis in range(len(src)):
        for plane in (lower[axis], upper[axis]):
            mirror = np.array(src, float)
            mirror[axis] = 2 * plane - mirror[axis]
            best = min(best, float(np.min(np.linalg.norm(recs - mirror, axis=1))) / vmax)
    return best


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_matches_devito_example_solver():
    from examples.seismic import AcquisitionGeometry
    from examples.seismic import Model as DevitoModel
    from examples.seismic.acoustic import AcousticWaveSolver

    model = layered_model(SHAPE, H, [1500.0, 2000.0, 2500.0], [650.0, 800.0])
    model = with_circle(model, center=(850.0, 300.0), radius=80.0, vp=2200.0)
    src = np.array([[600.0, 400.0]])
    rec = np.stack([np.linspace(300.0, 900.0, 25), np.full(25, 500.0)], axis=-1)

    theirs_model = DevitoModel(vp=model.vp.values / 1000.0, origin=(0.0, 0.0), shape=SHAPE,
                               spacing=(H, H), space_order=SO, nbl=NBL, bcs="damp",
                               dtype=np.float32)
    theirs_geo = AcquisitionGeometry(theirs_model, rec, src, t0=0.0, tn=1000.0,
                                     f0=F0 / 1000.0, src_type="Ricker")
    theirs_rec, _, _ = AcousticWaveSolver(theirs_model, theirs_geo, space_order=SO).forward()
    theirs = np.array(theirs_rec.data)[:-1]  # devito's run leaves the last sample at 0

    dt = float(theirs_model.critical_dt) / 1000.0
    geo = make_geometry(model, src, rec, record_length=1.0, f0=F0, dt=dt, space_order=SO)
    assert geo.sizes["time"] == theirs_geo.nt
    np.testing.assert_allclose(geo.wavelet, theirs_geo.src.data[:, 0], atol=1e-6)
    ours_model = Model(model, space_order=SO, nbl=NBL)
    ours, _ = forward(ours_model, src, geo.wavelet.values, rec, dt)
    ours = ours[:-1]

    upper = [float(model.x[-1]), float(model.z[-1])]
    k = int(first_edge_time(src[0], rec, [0.0, 0.0], upper, float(model.vp.max())) / dt)
    assert k * dt > 0.3  # the window holds the direct wave and the layer reflection
    window = rel_l2(ours[:k], theirs[:k])
    whole_own_damping = rel_l2(ours, theirs)

    theirs_damp = np.asarray(theirs_model.damp.data) * 1e-3  # a sum of one ramp per axis
    mid = [n // 2 for n in theirs_damp.shape]  # inside the model: the other axis adds zero
    ours_model.set_damping([theirs_damp[:, mid[1]], theirs_damp[mid[0], :]])
    np.testing.assert_allclose(ours_model.damp.data, theirs_damp, rtol=1e-6, atol=1e-12)
    same_damping, _ = forward(ours_model, src, geo.wavelet.values, rec, dt)
    whole_same_damping = rel_l2(same_damping[:-1], theirs)
    print(f"vs devito: window (t < {k * dt:.3f} s) {window:.2e}, whole record "
          f"{whole_own_damping:.2e} (own damping), {whole_same_damping:.2e} (devito's damping)")
    assert window <= 1e-3
    assert whole_same_damping <= 1e-3
    assert whole_own_damping <= 0.05  # boundary-layer residuals only (measured ~1-2%)
