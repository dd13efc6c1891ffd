"""The Fourier neural operator surrogate of the flow simulator: (log-permeability, porosity) → the
CO2 saturation at every report time, a ``neuraloperator`` FNO: 2D over (x, z) with the report times as
output channels, or 3D over (x, z, t) with the inputs repeated at every report time (FNO4CO2's). Trained
with a relative-L2 loss (Adam, or AdamW), stored as a checkpoint, forecasts per sample.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
import xarray as xr

from strata_errors import InputError
from tasks.nn.checkpoint import Trained, from_dataset
from tasks.nn.registry import register_model
from tasks.nn.training import fit, seeded_torch

__all__ = ["FNOSurrogate", "features", "relative_l2", "train_surrogate", "forecast", "forecast_metrics"]

FEATURES = ("log_permeability", "porosity")


def _fno_class() -> type[torch.nn.Module]:
    """``neuralop.models.FNO``, imported when first needed; its import puts a global ``once`` filter for
    every UserWarning in front of the process's filters, which this undoes."""
    with warnings.catch_warnings():
        from neuralop.models import FNO
    return FNO


@register_model("fno_surrogate")
class FNOSurrogate(torch.nn.Module):
    """``neuralop.models.FNO`` on z-scored input features (buffers set from the training data); input
    (batch, feature, x, z), output (batch, time, x, z): the saturation at ``times`` report times.

    ``kind`` "2d": an FNO over (x, z) with ``times`` output channels. "3d": an FNO over (x, z, t) — the
    features repeated at each of the ``times`` report times, one output channel, every bias zero at the start
    (FNO4CO2's set-up; its blocks are neuraloperator's); the FNO adds its own grid channels ((x, z) or
    (x, z, t), each over [0, 1)). ``modes``: neuraloperator's ``n_modes``, one per axis (2 or 3). ``width``
    hidden channels, ``layers`` Fourier layers; ``padding``: neuraloperator's ``domain_padding``, zeros on both
    ends of every axis, that fraction of its length (0: none), removed before the projection, so the output
    shape does not depend on it. neuraloperator's ``state_dict`` carries a
    ``_metadata`` entry (its init kwargs, a dict); this class rebuilds from its own init kwargs, so its state
    dict holds tensors only.
    """

    def __init__(self, *, times: int, modes: Sequence[int] = (12, 12), width: int = 32, layers: int = 4,
                 in_channels: int = len(FEATURES), kind: str = "2d", padding: float = 0.0):
        super().__init__()
        axes = {"2d": 2, "3d": 3}.get(kind)
        if axes is None:
            raise InputError(f"FNO: kind must be '2d' or '3d', got {kind!r}")
        if times < 1 or width < 1 or layers < 1 or len(modes) != axes or min(modes) < 1:
            raise InputError(f"FNO: need times, width, layers >= 1 and {axes} modes >= 1 ({kind}), got {times}, "
                             f"{width}, {layers}, {list(modes)}")
        if not 0.0 <= float(padding) <= 1.0:
            raise InputError(f"FNO: padding must be a fraction in [0, 1], got {padding!r}")
        self.kind, self.times = kind, int(times)
        self.fno = _fno_class()(n_modes=tuple(int(m) for m in modes), in_channels=in_channels,
                                out_channels=self.times if kind == "2d" else 1, hidden_channels=width,
                                n_layers=layers, domain_padding=float(padding) or None)
        if kind == "3d":  # FNO4CO2's layers (Flux) start with zero biases: the output starts near 0, not at a
            with torch.no_grad():  # random offset of ±0.2 that can put it all outside [0, 1] (the clamped loss)
                for name, p in self.fno.named_parameters():
                    if name.rsplit(".", 1)[-1] == "bias":
                        p.zero_()
        self.register_buffer("in_mean", torch.zeros(in_channels))
        self.register_buffer("in_std", torch.ones(in_channels))

    def set_scaling(self, x: torch.Tensor) -> None:
        """Per-channel mean and std of the inputs ``x`` (batch, channel, x, z)."""
        self.in_mean.copy_(x.mean(dim=(0, 2, 3)))
        self.in_std.copy_(x.std(dim=(0, 2, 3)).clamp_min(1e-6))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = (x - self.in_mean[:, None, None]) / self.in_std[:, None, None]
        if self.kind == "2d":
            return self.fno(x)
        x = x[..., None].expand(*x.shape, self.times)  # (batch, feature, x, z, t)
        return self.fno(x)[:, 0].permute(0, 3, 1, 2)  # (batch, t, x, z)

    def state_dict(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        state = super().state_dict(*args, **kwargs)
        state.pop("_metadata", None)
        return state


def features(ds: xr.Dataset) -> np.ndarray:
    """(sample, channel, x, z) float32 inputs of the surrogate: ln(permeability / mD) and porosity."""
    for var in ("permeability", "porosity"):
        if var not in ds.data_vars or tuple(ds[var].dims) != ("sample", "x", "z"):
            raise InputError(f"surrogate inputs: need {var} (sample, x, z), got "
                             f"{tuple(ds[var].dims) if var in ds.data_vars else 'none'}")
    k = np.asarray(ds["permeability"].values, dtype=np.float64)
    if not (np.isfinite(k).all() and (k > 0).all()):
        raise InputError("surrogate inputs: permeability must be finite and positive")
    return np.stack([np.log(k), np.asarray(ds["porosity"].values, dtype=np.float64)], axis=1).astype(np.float32)


def _targets(ds: xr.Dataset) -> np.ndarray:
    if "saturation" not in ds.data_vars or tuple(ds["saturation"].dims) != ("sample", "time", "x", "z"):
        raise InputError("surrogate targets: need saturation (sample, time, x, z)")
    return np.asarray(ds["saturation"].values, dtype=np.float32)


def relative_l2(pred: torch.Tensor, true: torch.Tensor) -> torch.Tensor:
    """Mean over samples of ‖pred − true‖ / ‖true‖ (norms over all other dims)."""
    diff = (pred - true).flatten(1).norm(dim=1)
    return (diff / true.flatten(1).norm(dim=1).clamp_min(1e-12)).mean()


def _rel_loss(module: torch.nn.Module, x: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
    return relative_l2(module(x), y)


def _clamped_rel_loss(module: torch.nn.Module, x: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
    """FNO4CO2's loss: the relative L2 error of the forecast clamped to [0, 1] (its ``relu01``). Its gradient
    passes the clamp (straight through): the clamp's own gradient is zero wherever the output is outside
    [0, 1], and an output that starts below 0 everywhere — neuraloperator's random output bias does that for
    about half of the seeds of the 2-D FNO; the 3-D one's zero biases for a few — would never train. The
    value is the same, and so is the gradient wherever the output is inside [0, 1]; outside, it only pulls
    towards the target where the clamped value is wrong."""
    out = module(x)
    return relative_l2(out + (out.clamp(0.0, 1.0) - out).detach(), y)


def train_surrogate(simulations: xr.Dataset, *, fno: Mapping[str, Any], training: Mapping[str, Any], seed: int,
                    threads: int) -> Trained:
    """Fit :class:`FNOSurrogate` (init: ``fno`` and ``times``) to the simulations (inputs :func:`features`,
    targets ``saturation``): the mean relative-L2 error per sample — of the forecast clamped to [0, 1] with
    ``training.clamp`` (FNO4CO2's loss) —, Adam, or AdamW with ``training.weight_decay`` > 0, a seeded random
    ``held_out`` share of the samples for validation and early stopping (``training``: epochs, batch_size, lr,
    held_out, patience, weight_decay, clamp)."""
    x, y = features(simulations), _targets(simulations)
    init = {"times": int(y.shape[1]), **{k: (list(v) if isinstance(v, list | tuple) else v) for k, v in fno.items()}}
    settings = dict(training)
    loss = _clamped_rel_loss if settings.pop("clamp", False) else _rel_loss
    with seeded_torch(seed, 0, threads=threads) as gen:
        model = FNOSurrogate(**init)
        xt, yt = torch.from_numpy(x), torch.from_numpy(y)
        model.set_scaling(xt)
        history = fit(model, xt, yt, generator=gen, loss=loss, **settings)
    return Trained(model, init, history)


def forecast(checkpoint: xr.Dataset, simulations: xr.Dataset, *, batch_size: int = 16) -> xr.Dataset:
    """The surrogate's saturation forecast for each sample of ``simulations`` (kind ``co2_forecast``):
    ``saturation`` (forecast, clipped to [0, 1]), ``simulated``, ``error`` = forecast − simulated,
    ``relative_l2`` (sample, time) per report time, and the inputs ``permeability``, ``porosity``."""
    model = from_dataset(checkpoint).module
    x = torch.from_numpy(features(simulations))
    truth = _targets(simulations)
    if model.times != truth.shape[1]:
        raise InputError(f"the surrogate forecasts {model.times} report times, the simulations have "
                         f"{truth.shape[1]}")
    # one torch thread: a multi-threaded torch op changes later Devito results of this process in their last bits
    with seeded_torch(0, threads=1), torch.no_grad():
        pred = torch.cat([model(b) for b in x.split(batch_size)]).clamp_(0.0, 1.0).numpy()
    err = pred - truth
    norm = np.sqrt((truth.astype(np.float64) ** 2).sum(axis=(2, 3)))
    rel = np.sqrt((err.astype(np.float64) ** 2).sum(axis=(2, 3))) / np.maximum(norm, 1e-12)
    dims = ("sample", "time", "x", "z")
    sat_attrs = {"units": "1", "long_name": "CO2 saturation, FNO forecast"}
    out = xr.Dataset(
        {"saturation": (dims, pred, sat_attrs),
         "simulated": (dims, truth, {"units": "1", "long_name": "CO2 saturation, simulator"}),
         "error": (dims, err, {"units": "1", "long_name": "forecast - simulated saturation"}),
         "relative_l2": (("sample", "time"), rel, {"units": "1", "long_name": "relative L2 error per report time"}),
         "permeability": simulations["permeability"], "porosity": simulations["porosity"]},
        coords={d: simulations[d] for d in dims})
    out.attrs.update({k: v for k, v in simulations.attrs.items() if k in ("spacing", "thickness", "wells")})
    return out


def forecast_metrics(forecasts: xr.Dataset) -> xr.Dataset:
    """Held-out errors per report time (kind ``forecast_metrics``): mean relative L2 over samples and its
    standard error; attrs ``relative_l2`` (all times: ‖error‖/‖simulated‖ per sample, averaged)."""
    rel = forecasts["relative_l2"]
    n = rel.sizes["sample"]
    err = forecasts["error"].astype(np.float64)
    total = np.sqrt((err ** 2).sum(("time", "x", "z"))) / np.sqrt(
        (forecasts["simulated"].astype(np.float64) ** 2).sum(("time", "x", "z"))).clip(min=1e-12)
    se = rel.std("sample", ddof=1) / np.sqrt(n) if n > 1 else xr.zeros_like(rel.mean("sample"))
    out = xr.Dataset({"relative_l2": rel.mean("sample").assign_attrs(long_name="mean relative L2 error", units="1"),
                      "relative_l2_se": se.assign_attrs(long_name="standard error of the mean", units="1")})
    out.attrs.update({"relative_l2": float(total.mean()), "samples": int(n)})
    return out
