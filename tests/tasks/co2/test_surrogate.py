"""The FNO surrogate: checkpoint round trip without neuraloperator's `_metadata`, determinism, learning a
known operator, forecast errors computed as documented; the 3-D FNO, domain padding, AdamW and the clamped loss."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import xarray as xr

from strata_errors import InputError
from tasks.co2.surrogate import (
    FNOSurrogate,
    forecast,
    forecast_metrics,
    relative_l2,
    train_surrogate,
)
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


# --- the 3-D FNO (x, z, t: FNO4CO2's), domain padding, FNO4CO2's optimiser and loss ---------------------------

FNO3 = {"kind": "3d", "modes": [6, 6, 3], "width": 8, "layers": 2}
PAPER_TRAINING = {"epochs": 6, "batch_size": 4, "lr": 5e-3, "held_out": 0.2, "patience": None,
                  "weight_decay": 1e-4, "clamp": True}


@pytest.fixture(scope="module")
def trained3d() -> Trained:
    return train_surrogate(_data(16), fno={**FNO3, "padding": 0.25}, training=PAPER_TRAINING, seed=3, threads=1)


def test_3d_fno_trains_and_forecasts_in_the_same_layout(trained3d):
    hist = trained3d.history
    assert len(hist["train"]) == 6 and hist["validation"][-1] < 0.6 * hist["validation"][0]
    test = _data(3, seed=2)
    out = forecast(to_dataset(trained3d), test, batch_size=2)
    assert out["saturation"].dims == ("sample", "time", "x", "z") and out["saturation"].shape == (3, NT, NX, NZ)
    np.testing.assert_array_equal(out["sample"].values, test["sample"].values)
    np.testing.assert_array_equal(out["error"].values, out["saturation"].values - out["simulated"].values)
    m = forecast_metrics(out)
    assert m["relative_l2"].dims == ("time",) and np.isfinite(m.attrs["relative_l2"])
    # a 3-D model's output at report time t is its own (x, z) field: the time axis is not the feature axis
    x = torch.from_numpy(np.stack([np.log(test.permeability.values), test.porosity.values], 1).astype(np.float32))
    with torch.no_grad():
        y = trained3d.module(x)
    assert y.shape == (3, NT, NX, NZ) and not torch.allclose(y[:, 0], y[:, -1])


def test_3d_checkpoint_round_trips(trained3d):
    ds = to_dataset(trained3d)
    assert "_metadata" not in ds.data_vars
    assert ds.attrs["model_init"] == {"times": NT, **FNO3, "padding": 0.25}
    back = from_dataset(ds).module
    assert back.kind == "3d" and back.times == NT
    x = torch.randn(2, 2, NX, NZ)
    with torch.no_grad():
        assert torch.equal(trained3d.module(x), back(x))


@pytest.mark.parametrize("fno", [FNO, FNO3])
def test_padding_changes_no_output_shape(fno):
    """Padding is internal: the same (batch, time, x, z) out for any padding and grid, odd sizes too; it does
    change the values (the Fourier layers no longer see the two ends of an axis as neighbours)."""
    x = torch.randn(2, 2, 13, 10)
    outs = {}
    for padding in (0.0, 0.1, 0.5):
        torch.manual_seed(0)
        model = FNOSurrogate(times=NT, padding=padding, **fno).eval()
        with torch.no_grad():
            outs[padding] = model(x)
        assert outs[padding].shape == (2, NT, 13, 10)
    assert not torch.allclose(outs[0.0], outs[0.1])


def test_clamp_and_weight_decay_change_training():
    base = {**PAPER_TRAINING, "epochs": 2, "weight_decay": 0.0, "clamp": False}
    runs = [train_surrogate(_data(8), fno=FNO, training={**base, **change}, seed=3, threads=1).module
            for change in ({}, {"clamp": True}, {"weight_decay": 0.1})]
    ref = runs[0].state_dict()
    for other in runs[1:]:
        assert any(not torch.equal(ref[k], v) for k, v in other.state_dict().items())


def test_bad_fno_settings():
    with pytest.raises(InputError, match="3 modes >= 1"):
        FNOSurrogate(times=NT, kind="3d", modes=[6, 6])
    with pytest.raises(InputError, match="kind must be '2d' or '3d'"):
        FNOSurrogate(times=NT, kind="4d")
    with pytest.raises(InputError, match="padding must be a fraction"):
        FNOSurrogate(times=NT, padding=-0.1)


def test_clamped_loss_is_fno4co2s_value_and_trains_from_below_zero():
    """The clamped loss's value is the relative L2 error of clamp(out, 0, 1); where every output is below 0
    (a start neuraloperator's random output bias gives about half the seeds) its gradient still pulls up."""
    from tasks.co2.surrogate import _clamped_rel_loss

    class Shift(torch.nn.Module):
        def __init__(self, b: float):
            super().__init__()
            self.b = torch.nn.Parameter(torch.tensor(b))

        def forward(self, x):
            return x + self.b

    y = torch.rand(3, 2, 4, 4)
    x = torch.randn(3, 2, 4, 4)
    m = Shift(0.3)
    expected = relative_l2((x + 0.3).clamp(0, 1), y)
    assert float(_clamped_rel_loss(m, x, y).detach()) == pytest.approx(float(expected))
    dead = Shift(-10.0)
    loss = _clamped_rel_loss(dead, x, y)
    loss.backward()
    assert float(loss.detach()) == pytest.approx(1.0) and float(dead.b.grad) < 0  # a step of -grad raises the output


def test_3d_fno_starts_with_zero_biases_near_zero():
    """As FNO4CO2's Flux layers: every bias of the 3-D FNO is zero at the start, so its output starts near 0
    (the 2-D one keeps neuraloperator's random biases, and its results)."""
    torch.manual_seed(0)
    model = FNOSurrogate(times=NT, **FNO3)
    biases = [p for n, p in model.named_parameters() if n.endswith("bias")]
    assert biases and all(not p.any() for p in biases)
    with torch.no_grad():
        assert float(model(torch.randn(2, 2, NX, NZ)).abs().max()) < 0.05
    torch.manual_seed(0)
    assert any(p.any() for n, p in FNOSurrogate(times=NT, **FNO).named_parameters() if n.endswith("bias"))
