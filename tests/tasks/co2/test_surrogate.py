"""The FNO surrogate: checkpoint round trip without neuraloperator's `_metadata`, determinism, learning a
known operator, forecast errors computed as documented."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import xarray as xr

from strata_errors import InputError
from tasks.co2.surrogate import FNOSurrogate, forecast, forecast_metrics, train_surrogate
from tasks.nn.checkpoint import Trained, from_dataset, to_dataset

N, NT, NX, NZ = 24, 3, 16, 16
FNO = {"modes": [6, 6], "width": 12, "layers": 2}


def _data(n: int = N, seed: int = 0) -> xr.Dataset:
    """Smooth log-permeability fields and a known operator: S_t = sigmoid((ln k − 3)·(t+1)) smoothed in x."""
    rng = np.random.default_rng(seed)
    x = np.linspace(0, 1, NX)
    z = np.linspace(0, 1, NZ)
    a, b, c = rng.normal(size=(3, n, 1, 1))
    logk = 3 + 0.8 * (a * np.sin(2 * np.pi * x)[:, None] + b * np.cos(np.pi * z)[None, :] + 0.5 * c)
    sat = np.stack([1 / (1 + np.exp(-(logk - 3) * (t + 1))) for t in range(NT)], axis=1)
    sat = 0.5 * (sat + np.roll(sat, 1, axis=2))  # a non-local part: the neighbour in x
    return xr.Dataset(
        {"permeability": (("sample", "x", "z"), np.exp(logk)),
         "porosity": (("sample", "x", "z"), np.full_like(logk, 0.25)),
         "saturation": (("sample", "time", "x", "z"), sat)},
        coords={"sample": np.arange(n), "time": 100.0 * (1 + np.arange(NT)), "x": 15.0 * np.arange(NX),
                "z": 15.0 * np.arange(NZ)})


def _train(ds: xr.Dataset, epochs: int = 60) -> Trained:
    return train_surrogate(ds, fno=FNO, training={"epochs": epochs, "batch_size": 8, "lr": 5e-3, "held_out": 0.2,
                                                  "patience": None}, seed=3, threads=1)


@pytest.fixture(scope="module")
def trained() -> Trained:
    return _train(_data())


def test_checkpoint_round_trip_holds_tensors_only(trained):
    ds = to_dataset(trained)
    assert "_metadata" not in ds.data_vars
    assert any(np.iscomplexobj(v.values) for v in ds.data_vars.values())  # the spectral weights
    back = from_dataset(ds).module
    x = torch.randn(2, 2, NX, NZ)
    with torch.no_grad():
        assert torch.equal(trained.module(x), back(x))


def test_training_is_deterministic(trained):
    again = _train(_data(), epochs=60)
    for (k, a), b in zip(trained.module.state_dict().items(), again.module.state_dict().values(), strict=True):
        assert torch.equal(a, b), k


def test_learns_the_operator(trained):
    """Held-out relative L2 error well below the untrained network's and below 10 %."""
    test = _data(8, seed=1)
    untrained = FNOSurrogate(times=NT, **FNO)
    untrained.set_scaling(torch.from_numpy(np.stack([np.log(test.permeability.values), test.porosity.values], 1)
                                           .astype(np.float32)))
    before = forecast(to_dataset(Trained(untrained, {"times": NT, **FNO})), test)
    after = forecast(to_dataset(trained), test)
    err_before = float(before["relative_l2"].mean())
    err_after = float(after["relative_l2"].mean())
    assert err_after < 0.1 and err_after < 0.25 * err_before, (err_after, err_before)
    assert trained.history["validation"][-1] < trained.history["validation"][0]


def test_forecast_errors_are_what_they_say(trained):
    test = _data(3, seed=2)
    out = forecast(to_dataset(trained), test)
    np.testing.assert_array_equal(out["error"].values, out["saturation"].values - out["simulated"].values)
    assert float(out["saturation"].min()) >= 0 and float(out["saturation"].max()) <= 1
    e, s = out["error"].values[1, 2].astype(np.float64), out["simulated"].values[1, 2].astype(np.float64)
    assert out["relative_l2"].values[1, 2] == pytest.approx(np.linalg.norm(e) / np.linalg.norm(s), rel=1e-6)
    m = forecast_metrics(out)
    np.testing.assert_allclose(m["relative_l2"].values, out["relative_l2"].mean("sample").values)
    np.testing.assert_allclose(m["relative_l2_se"].values, out["relative_l2"].std("sample", ddof=1).values / np.sqrt(3))


def test_bad_inputs(trained):
    bad = _data(2).assign(permeability=lambda d: -d.permeability)
    with pytest.raises(InputError, match="permeability must be finite and positive"):
        forecast(to_dataset(trained), bad)
    with pytest.raises(InputError, match="forecasts 3 report times, the simulations have 2"):
        forecast(to_dataset(trained), _data(2).isel(time=slice(0, 2)))
