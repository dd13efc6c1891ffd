"""FWI gradient: Taylor test (float64, exact gradient), snapshots vs exact, ASPIRE summaries.

Taylor test: with ``phi(m) = 1/2 ||F(m) - d||^2``, fixed dt and nt, and ``m = 1/vp**2``
perturbed linearly, ``|phi(m + h dm) - phi(m)|`` falls as h and
``|phi(m + h dm) - phi(m) - h <g, dm>|`` as h² over the asymptotic range of h. The snapshot
gradient (interval at the Nyquist rate of f_max ≈ 2.75 f0) correlates with the exact one;
the interval from f0's Nyquist rate does not (docs/stack-notes.md: 0.67).
"""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from strata_errors import InputError
from tasks.seismic.born import fold_padding, pad, snapshot_factor
from tasks.seismic.geometry import surface_geometry
from tasks.seismic.gradient import fwi_gradient, fwi_objective, gradient_summary, rtm_summary
from tasks.seismic.model import Model, layered_model, smooth_model, with_circle
from tasks.seismic.solver import survey_shots

pytestmark = pytest.mark.slow

H, SO, NBL, F0 = 10.0, 8, 20, 15.0


@pytest.fixture(scope="module")
def problem():
    true = layered_model((61, 51), H, [1500.0, 1800.0], [350.0])
    true = with_circle(true, center=(300.0, 220.0), radius=60.0, vp=1900.0)
    background = smooth_model(true, 40.0)
    geo = surface_geometry(true, n_shots=2, shot_spacing=300.0, first_shot_x=150.0,
                           n_receivers=61, receiver_spacing=H, source_depth=20.0,
                           receiver_depth=20.0, record_length=0.5, f0=F0)
    records = survey_shots(true, geo, space_order=SO, nbl=NBL, dtype=np.float64)
    model = Model(background, space_order=SO, nbl=NBL, dtype=np.float64)
    return true, background, geo, records, model


def slope(h: np.ndarray, err: np.ndarray) -> float:
    return float(np.polyfit(np.log(h), np.log(err), 1)[0])


def test_taylor(problem):
    true, background, geo, records, model = problem
    dm = 1.0 / true.vp.values.astype(np.float64) ** 2 \
        - 1.0 / background.vp.values.astype(np.float64) ** 2
    m0 = np.array(model.m.data)
    phi0, grad = fwi_gradient(model, geo, records, factor=1)
    assert fwi_objective(model, geo, records) == pytest.approx(phi0, rel=1e-12)
    hs = 2.0 ** -np.arange(3, 9)
    e1, e2 = [], []
    try:
        for h in hs:
            model.m.data[:] = m0 + h * pad(model, dm)
            phi = fwi_objective(model, geo, records)
            e1.append(abs(phi - phi0))
            e2.append(abs(phi - phi0 - h * np.vdot(grad, dm)))
    finally:
        model.m.data[:] = m0
    assert abs(slope(hs, np.array(e1)) - 1.0) <= 0.1
    assert abs(slope(hs, np.array(e2)) - 2.0) <= 0.1


def test_snapshot_gradient_correlates_with_exact(problem):
    _, _, geo, records, model = problem
    dt, f_max = float(geo.attrs["dt"]), float(geo.attrs["f_max"])
    factor = snapshot_factor(f_max, dt)
    assert factor > 1
    assert snapshot_factor(F0, dt) > 2 * factor               # f0's Nyquist is much coarser
    phi, exact = fwi_gradient(model, geo, records, factor=1)
    phi_s, approx = fwi_gradient(model, geo, records, factor=factor)
    assert phi_s == pytest.approx(phi, rel=1e-12)             # the forward run is unchanged
    assert np.corrcoef(exact.ravel(), approx.ravel())[0, 1] >= 0.99


def test_fold_padding_is_the_adjoint_of_edge_padding(problem):
    model = problem[4]
    rng = np.random.default_rng(3)
    x = rng.normal(size=tuple(model.shape))
    y = rng.normal(size=np.pad(x, model.nbl).shape)
    assert np.vdot(np.pad(x, model.nbl, mode="edge"), y) == pytest.approx(np.vdot(x, fold_padding(model, y)),
                                                                        rel=1e-12)


def test_snapshot_factor():
    assert snapshot_factor(40.0, 0.002) == 6                  # 1 / (2 * 40 * 0.002) = 6.25
    assert snapshot_factor(250.0, 0.002) == 1
    with pytest.raises(InputError):
        snapshot_factor(0.0, 0.002)


def test_gradient_summary_per_sample(problem):
    true, background, geo, records, model = problem
    models = xr.concat([background, true], dim="sample").assign_coords(sample=[3, 7])
    data = xr.concat([records, records], dim="sample").assign_coords(sample=[3, 7])
    out = gradient_summary(models, data, geo, space_order=SO, nbl=NBL, dtype=np.float64)
    assert out.gradient.dims == ("sample", "x", "z")
    assert list(out.sample.values) == [3, 7]
    phi, grad = fwi_gradient(model, geo, records, factor=out.attrs["snapshot_factor"])
    np.testing.assert_allclose(out.gradient.sel(sample=3), grad, rtol=1e-5,
                               atol=1e-5 * np.abs(grad).max())
    assert out.objective.sel(sample=3) == pytest.approx(phi)
    # at the true model the data are fitted (to float32 rounding of the records)
    assert float(out.objective.sel(sample=7)) < 1e-10 * phi   # records are float32
    rtm = rtm_summary(background, data, geo, space_order=SO, nbl=NBL, dtype=np.float64)
    assert rtm.image.dims == ("sample", "x", "z")
    np.testing.assert_allclose(rtm.image.sel(sample=7), -out.gradient.sel(sample=3),
                               rtol=1e-5, atol=1e-5 * np.abs(grad).max())


def test_gradient_summary_needs_data_for_every_sample(problem):
    _, background, geo, records, _ = problem
    models = xr.concat([background], dim="sample").assign_coords(sample=[1])
    data = xr.concat([records], dim="sample").assign_coords(sample=[2])
    with pytest.raises(InputError, match="no data"):
        gradient_summary(models, data, geo, space_order=SO, nbl=NBL)
