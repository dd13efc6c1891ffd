"""LSRTM (CGLS on the Born normal equations) as map and reduce steps over xarray datasets.

Known answer (an inverse crime on purpose: the data are Born data of the same operator): a
perturbation ``dm`` below a mute depth, Born data of 3 surface shots in a smoothed background of
the ``tiny`` study model; 20 iterations fit the data to a few percent, the recurrence's residual
is the explicit ``||J x - d||``, and the image correlates better with ``dm`` as it goes. Also:
the per-shot steps split over shots exactly, stored states resume bit for bit, zero data stops
cleanly, mismatched inputs are refused, and the algebra converges to the least-squares solution
on a small 3D problem with an explicit matrix in place of ``J``.
"""

from __future__ import annotations

import time

import numpy as np
import pytest
import xarray as xr

from strata_errors import InputError
from tasks.seismic.born import born
from tasks.seismic.geometry import shot_positions, surface_geometry
from tasks.seismic.lsrtm import (
    _digest,
    lsrtm_apply,
    lsrtm_images,
    lsrtm_setup,
    lsrtm_start,
    lsrtm_update,
)
from tasks.seismic.model import constant_model, layered_model, smooth_model, with_circle
from tasks.seismic.solver import shared_model

pytestmark = pytest.mark.slow

H, SO, NBL, SHAPE, ITERATIONS = 10.0, 8, 20, (61, 41), 20
MUTE, TAPER = 120.0, 20.0                      # full weight from 140 m; dm lies in 150..350 m
KW = {"space_order": SO, "nbl": NBL}


def perturbation(model: xr.Dataset) -> np.ndarray:
    """Three thin reflectors and a negative blob (s²/m²), all between z = 150 and 350 m."""
    x, z = np.meshgrid(model.x.values, model.z.values, indexing="ij")
    dm = np.zeros(x.shape)
    for depth, amp in ((180.0, 4e-8), (260.0, -3e-8), (330.0, 3e-8)):
        dm[np.abs(z - depth) < 5.0] += amp
    dm += -6e-8 * np.exp(-((x - 300.0) ** 2 + (z - 220.0) ** 2) / (2 * 25.0**2))
    dm[z < 150.0] = 0.0
    return dm


def born_shot(background: xr.Dataset, geo: xr.Dataset, k: int, dm: np.ndarray) -> np.ndarray:
    """``J_k dm``: traces (time, receiver) of shot ``k`` of ``geo`` (float32 solver)."""
    model = shared_model(background, geo, **KW)
    src, rec = shot_positions(geo, k, model.dims)
    return born(model, dm, src, geo.wavelet.values.astype(np.float64), rec, float(geo.attrs["dt"]))


def born_records(background: xr.Dataset, geo: xr.Dataset, dm: np.ndarray) -> xr.Dataset:
    """``data`` (shot, receiver, time) = J_s dm for every shot of ``geo``."""
    data = [born_shot(background, geo, k, dm).T for k in range(geo.sizes["shot"])]
    return xr.Dataset({"data": (("shot", "receiver", "time"), np.stack(data).astype(np.float32))},
                      coords={"shot": geo.shot.values, "receiver": geo.receiver.values,
                              "time": geo.time.values})


def correlation(image: np.ndarray, dm: np.ndarray, mask: np.ndarray) -> float:
    """Normalised (uncentred) inner product of ``image`` and ``dm`` on ``mask``."""
    a, b = image[mask].astype(np.float64), dm[mask]
    return float(np.vdot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))


@pytest.fixture(scope="module")
def run():
    true = layered_model(SHAPE, H, [1500.0, 2000.0, 2600.0], [150.0, 280.0])
    true = with_circle(true, center=(300.0, 220.0), radius=50.0, vp=3000.0)
    background = smooth_model(true, 60.0)
    geo = surface_geometry(true, n_shots=3, shot_spacing=200.0, first_shot_x=100.0,
                           n_receivers=SHAPE[0], receiver_spacing=H, source_depth=20.0,
                           receiver_depth=10.0, record_length=0.4, f0=12.0)
    dm = perturbation(background)
    records = born_records(background, geo, dm)
    start = lsrtm_start(background, geo, records, subtract_background=False, **KW)
    states, applies, seconds = [lsrtm_setup(start, mute_depth=MUTE, mute_taper=TAPER)], [], []
    for _ in range(ITERATIONS):
        t0 = time.perf_counter()
        applies.append(lsrtm_apply(states[-1], background, geo, **KW))
        seconds.append(time.perf_counter() - t0)
        states.append(lsrtm_update(states[-1], applies[-1]))
    return {"background": background, "geo": geo, "dm": dm, "records": records, "start": start,
            "states": states, "applies": applies, "seconds": seconds}


def test_known_answer(run):
    background, geo, dm, records = run["background"], run["geo"], run["dm"], run["records"]
    states = run["states"]
    images = lsrtm_images(*states)
    assert images.image.dims == ("iteration", "x", "z")
    assert list(images.iteration.values) == list(range(ITERATIONS + 1))
    assert images.image.dtype == np.float32 and np.all(images.image.values[0] == 0)
    rel = images.relative_residual.values
    np.testing.assert_array_equal(images.residual_norm.values, states[-1].residual_norm.values)

    # the recurrence's residual is the explicit one: ||J x - d|| with x the stored float32 image
    x = states[-1].image.transpose("x", "z").values
    explicit = np.sqrt(sum(np.sum((born_shot(background, geo, k, x).astype(np.float64)
                                   - records.data.values[k].T.astype(np.float64)) ** 2)
                           for k in range(3)))
    recurrence = float(states[-1].residual_norm[-1])
    r0 = float(states[0].residual_norm[0])
    assert r0 == pytest.approx(np.linalg.norm(records.data.values.astype(np.float64)), rel=1e-12)

    z = background.z.values[None, :]
    inside = np.broadcast_to(z >= MUTE + TAPER, dm.shape)
    corr = {k: correlation(images.image.values[k], dm, inside) for k in (1, 5, 10, ITERATIONS)}
    per_shot = np.mean(run["seconds"]) / geo.sizes["shot"]
    print("\nLSRTM relative residual per iteration:",
          " ".join(f"{k}:{r:.4f}" for k, r in enumerate(rel)))
    print("correlation with dm (z >= 140 m):", {k: round(v, 4) for k, v in corr.items()})
    print(f"final residual: recurrence {recurrence:.6g}, explicit {explicit:.6g}, "
          f"relative difference {abs(recurrence - explicit) / explicit:.2e}")
    print(f"lsrtm_apply: {per_shot * 1e3:.0f} ms per shot per iteration "
          f"(mean of {ITERATIONS} iterations of {geo.sizes['shot']} shots)")

    assert rel[0] == 1.0
    assert np.all(np.diff(rel) <= 0), rel                       # non-increasing
    assert rel[-1] <= 0.1, rel
    assert abs(recurrence - explicit) <= 1e-3 * explicit
    assert explicit / r0 <= 0.1
    assert corr[ITERATIONS] > corr[1], corr
    assert np.all(images.image.values[:, :, background.z.values < MUTE] == 0)   # muted
    assert all(int(s.attrs["stopped"]) == 0 for s in states[1:])


def test_map_over_shots_is_exact(run):
    background, geo, records, start = run["background"], run["geo"], run["records"], run["start"]
    state, applied = run["states"][3], run["applies"][3]
    # shot 0 with its shot dimension selected away (as a flow's one-shot slice may be)
    pieces = [lsrtm_start(background, geo.isel(shot=s), records.isel(shot=s),
                          subtract_background=False, **KW) for s in (0, [1, 2])]
    joined = xr.concat(pieces, dim="shot")
    for name in ("gradient", "illumination", "residual_norm2"):
        np.testing.assert_array_equal(joined[name].values, start[name].values)
    pieces = [lsrtm_apply(state, background, geo.isel(shot=s), **KW) for s in ([2], 0, [1])]
    joined = xr.concat(pieces, dim="shot")                      # out of order: update sorts
    assert list(joined.shot.values) == [2, 0, 1]
    full = applied.sel(shot=joined.shot)
    for name in ("normal", "q_norm2"):
        np.testing.assert_array_equal(joined[name].values, full[name].values)
    after = lsrtm_update(state, joined)
    for name in ("image", "cg_y", "cg_s", "cg_p", "gamma", "residual_norm"):
        np.testing.assert_array_equal(after[name].values, run["states"][4][name].values)


def test_resume_from_stored_state(run, tmp_path):
    """A state and an apply result written to zarr and read back give the same next state."""
    k = 5
    run["states"][k].to_zarr(tmp_path / "state.zarr", consolidated=False)
    run["applies"][k].to_zarr(tmp_path / "apply.zarr", consolidated=False)
    state = xr.open_zarr(tmp_path / "state.zarr", consolidated=False).load()
    applied = xr.open_zarr(tmp_path / "apply.zarr", consolidated=False).load()
    assert _digest(state) == applied.attrs["state_digest"]
    after = lsrtm_update(state, applied)
    expected = run["states"][k + 1]
    assert after.attrs["iteration"] == k + 1
    for name in ("image", "cg_y", "cg_s", "cg_p", "preconditioner", "gamma", "residual_norm2",
                 "residual_norm"):
        np.testing.assert_array_equal(after[name].values, expected[name].values)


def test_mismatches_are_refused(run):
    background, geo = run["background"], run["geo"]
    states, applies = run["states"], run["applies"]
    with pytest.raises(InputError, match="of iteration 1, the LSRTM state of iteration 2"):
        lsrtm_update(states[2], applies[1])
    other = states[2].assign(cg_p=states[2].cg_p * 2.0)
    with pytest.raises(InputError, match="computed from another LSRTM state"):
        lsrtm_update(other, applies[2])
    with pytest.raises(InputError, match=r"missing \[2\]"):
        lsrtm_update(states[2], applies[2].isel(shot=[0, 1]))
    with pytest.raises(InputError, match=r"duplicated shots \[1\]"):
        lsrtm_update(states[2], xr.concat([applies[2], applies[2].isel(shot=[1])], dim="shot"))
    shifted = applies[2].assign_coords(x=applies[2].x + 5.0)
    with pytest.raises(InputError, match="grids differ along 'x'"):
        lsrtm_update(states[2], shifted)
    with pytest.raises(InputError, match="not shots of the LSRTM state"):
        lsrtm_apply(states[2].assign_attrs(shots=[0]), background, geo, **KW)
    with pytest.raises(InputError, match="grids differ along 'z'"):
        lsrtm_apply(states[2], background.isel(z=slice(0, -1)), geo, **KW)
    with pytest.raises(InputError, match="initial residuals differ"):
        lsrtm_images(states[1], states[2].assign(residual_norm=states[2].residual_norm * 2))


def test_zero_data_stops_cleanly():
    model = constant_model((41, 31), H, 1500.0)
    geo = surface_geometry(model, n_shots=1, shot_spacing=100.0, first_shot_x=200.0,
                           n_receivers=41, receiver_spacing=H, source_depth=20.0,
                           receiver_depth=10.0, record_length=0.2, f0=12.0)
    records = xr.Dataset({"data": (("shot", "receiver", "time"),
                                   np.zeros((1, 41, geo.sizes["time"]), np.float32))},
                         coords={"shot": geo.shot.values})
    start = lsrtm_start(model, geo, records, subtract_background=False, **KW)
    assert np.all(start.gradient.values == 0) and float(start.residual_norm2.sum()) == 0
    states = [lsrtm_setup(start, mute_depth=50.0)]
    assert float(states[0].gamma) == 0.0
    for _ in range(2):
        states.append(lsrtm_update(states[-1], lsrtm_apply(states[-1], model, geo, **KW)))
    images = lsrtm_images(*states)
    for ds in (*states, images):
        assert all(np.all(np.isfinite(v.values)) for v in ds.data_vars.values())
    assert np.all(images.image.values == 0)
    np.testing.assert_array_equal(images.residual_norm.values, [0.0, 0.0, 0.0])
    np.testing.assert_array_equal(images.relative_residual.values, [0.0, 0.0, 0.0])
    assert states[-1].attrs["stopped"] == 1 and states[-1].attrs["alpha"] == 0.0


def test_cgls_algebra_3d_against_lstsq():
    """Start, setup and update with an explicit matrix per shot in place of ``J_s`` on an
    (x, y, z) grid: the iterates reach the least-squares solution and the recurrence's residual
    is the explicit one."""
    rng = np.random.default_rng(7)
    dims, shape = ("x", "y", "z"), (4, 3, 5)
    n, rows = int(np.prod(shape)), 40
    coords = {d: np.arange(s) * 10.0 for d, s in zip(dims, shape, strict=True)}
    J = {shot: rng.standard_normal((rows, n)) for shot in (3, 7)}
    d = {shot: rng.standard_normal(rows) for shot in J}
    illum = {shot: rng.uniform(0.5, 2.0, shape) for shot in J}

    def per_shot(values, name):
        return xr.DataArray(np.stack([values[s] for s in J]), dims=("shot", *dims),
                            coords={"shot": list(J), **coords}, name=name)

    start = xr.Dataset({
        "gradient": per_shot({s: (J[s].T @ d[s]).reshape(shape) for s in J}, "gradient"),
        "illumination": per_shot(illum, "illumination"),
        "residual_norm2": ("shot", [float(d[s] @ d[s]) for s in J])})
    state = lsrtm_setup(start, mute_depth=10.0, mute_taper=15.0, epsilon=0.1)
    states = [state]
    for _ in range(n):
        p = (state.preconditioner * state.cg_p).transpose(*dims).values.ravel()
        q = {s: J[s] @ p for s in J}
        applied = xr.Dataset(
            {"normal": per_shot({s: (J[s].T @ q[s]).reshape(shape) for s in J}, "normal"),
             "q_norm2": ("shot", [float(q[s] @ q[s]) for s in J])},
            attrs={"iteration": state.attrs["iteration"], "state_digest": _digest(state)})
        state = lsrtm_update(state, applied)
        states.append(state)
    P = states[0].preconditioner.values.ravel()
    keep = P > 0                                           # the mute's zero rows of x
    A = np.vstack([J[s] for s in J])[:, keep] * P[keep]
    b = np.concatenate([d[s] for s in J])
    y, *_ = np.linalg.lstsq(A, b, rcond=None)
    x = np.zeros(n)
    x[keep] = P[keep] * y
    image = state.image.values.astype(np.float64).ravel()
    np.testing.assert_allclose(image, x, rtol=0, atol=1e-5 * np.abs(x).max())
    explicit = np.linalg.norm(A @ (state.cg_y.values.ravel()[keep]) - b)
    assert float(state.residual_norm[-1]) == pytest.approx(explicit, rel=1e-6)
    assert np.all(np.diff(lsrtm_images(*states).residual_norm.values) <= 0)
    assert state.image.dims == dims and np.all(state.image.values[:, :, 0] == 0)
