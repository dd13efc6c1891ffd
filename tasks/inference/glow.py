"""A conditional normalizing flow (CNF) for images, ``p(x | c)``: a conditional Glow, stored as a checkpoint.

``ImageCNF`` (registered as ``image_cnf``) models ``x`` of shape ``(*batch, C, H, W)`` given a condition ``c``
of shape ``(*batch, Cc, H, W)`` (the same ``H, W``) with the multiscale flow of :mod:`.glow_layers`: per level
a squeeze, ``steps`` steps of ActNorm → invertible 1×1 conv → affine coupling whose conditioner sees the
condition at that level's resolution (a small conv encoder of the z-scored ``c``), then half the channels
go to the base. As for :class:`tasks.inference.cnf.VectorCNF`, the per-channel z-scoring of ``x`` and ``c``
is built in (buffers ``x_mean``, ``x_scale``, ``c_mean``, ``c_scale``, set by :meth:`ImageCNF.standardize`),
and everything is in the original units: ``conditional(c)`` is a zuko ``NormalizingFlow`` whose transform
maps ``x`` to a standard normal base variable of the same shape ``(*batch, C, H, W)``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch.distributions import AffineTransform, Transform, constraints
from zuko.distributions import DiagNormal, NormalizingFlow
from zuko.transforms import ComposedTransform

from strata_errors import InputError
from tasks.nn.checkpoint import Trained
from tasks.nn.registry import register_model
from tasks.nn.training import fit, seeded_torch

from .cnf_base import DTYPES, CNFBase, positive_int
from .glow_layers import LOG_SCALE_BOUND, ConditionEncoder, Glow

__all__ = ["ImageCNF", "GlowTransform", "train_image_cnf"]

_DTYPES = DTYPES


def _positive_int(name: str, value: object, minimum: int = 1) -> int:
    return positive_int("ImageCNF", name, value, minimum)


def _flat(t: torch.Tensor, batch: torch.Size) -> torch.Tensor:
    return t.expand(*batch, *t.shape[-3:]).reshape(-1, *t.shape[-3:])


class GlowTransform(Transform):
    """The conditional Glow map of z-scored images given precomputed condition features, as a zuko/torch
    transform on events of 3 dims ``(C, H, W)``: ``x`` and the features broadcast over their batch dims."""

    domain = constraints.independent(constraints.real, 3)
    codomain = constraints.independent(constraints.real, 3)
    bijective = True

    def __init__(self, flow: Glow, feats: list[torch.Tensor]):
        super().__init__()
        self.flow, self.feats = flow, feats

    def _batch(self, x: torch.Tensor) -> tuple[torch.Size, list[torch.Tensor]]:
        batch = torch.broadcast_shapes(x.shape[:-3], self.feats[0].shape[:-3])
        return batch, [_flat(f, batch) for f in self.feats]

    def call_and_ladj(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        batch, feats = self._batch(x)
        z, ladj = self.flow.forward_map(_flat(x, batch), feats)
        return z.reshape(*batch, *x.shape[-3:]), ladj.reshape(batch)

    def _call(self, x: torch.Tensor) -> torch.Tensor:
        return self.call_and_ladj(x)[0]

    def _inverse(self, z: torch.Tensor) -> torch.Tensor:
        batch, feats = self._batch(z)
        return self.flow.inverse_map(_flat(z, batch), feats).reshape(*batch, *z.shape[-3:])

    def log_abs_det_jacobian(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.call_and_ladj(x)[1]


@register_model("image_cnf")
class ImageCNF(CNFBase):
    """``p(x | c)`` for images ``x`` ``(channels, H, W)`` and conditions ``c`` ``(context_channels, H, W)``,
    ``size = [H, W]`` (each divisible by ``2**levels``): ``levels`` Glow levels of ``steps`` flow steps, the
    coupling conditioners with ``hidden`` conv channels, the condition encoded into ``context_features``
    channels per level. ``pixelwise``: z-scoring per pixel and channel (means and scales (C, H, W), as the
    vector CNF z-scores each feature) instead of per channel — for data whose scale varies across the image,
    e.g. gradients strongest near the sources. ``scale_bound``: each affine layer scales by at most
    exp(±scale_bound) (a smaller bound keeps rare draws from running far into the tails). Every init argument
    is a JSON value, so a checkpoint rebuilds the class."""

    def __init__(self, channels: int, context_channels: int, size: Sequence[int], levels: int = 3, steps: int = 4,
                 hidden: int = 32, context_features: int = 8, dtype: str = "float32", pixelwise: bool = False,
                 scale_bound: float = LOG_SCALE_BOUND):
        super().__init__()
        channels = _positive_int("channels", channels)
        context_channels = _positive_int("context_channels", context_channels)
        levels = _positive_int("levels", levels)
        if isinstance(size, str | bytes) or not isinstance(size, Sequence) or len(size) != 2:
            raise InputError(f"ImageCNF size must be [H, W], got {size!r}")
        h, w = (_positive_int("size", s) for s in size)
        if h % 2**levels or w % 2**levels:
            raise InputError(f"ImageCNF size {h}×{w} must be divisible by 2**levels = {2**levels}")
        if dtype not in _DTYPES:
            raise InputError(f"ImageCNF dtype must be one of {', '.join(_DTYPES)}, got {dtype!r}")
        hidden = _positive_int("hidden", hidden)
        features = _positive_int("context_features", context_features)
        self.event_shape = (channels, h, w)
        self.context_shape = (context_channels, h, w)
        dt = _DTYPES[dtype]
        self.encoder = ConditionEncoder(context_channels, features, hidden, levels).to(dt)
        if isinstance(scale_bound, bool) or not isinstance(scale_bound, int | float) or not 0 < scale_bound <= 10:
            raise InputError(f"ImageCNF scale_bound must be a number in (0, 10], got {scale_bound!r}")
        self.flow = Glow(channels, features, hidden, levels, _positive_int("steps", steps), float(scale_bound)).to(dt)
        if not isinstance(pixelwise, bool):
            raise InputError(f"ImageCNF pixelwise must be true or false, got {pixelwise!r}")
        self.pixelwise = pixelwise
        x_stats, c_stats = (self.event_shape, self.context_shape) if pixelwise else ((channels,), (context_channels,))
        self.register_stats(x_stats, c_stats, dt)

    @torch.no_grad()
    def standardize(self, x: torch.Tensor, c: torch.Tensor) -> None:
        """Set the z-scoring buffers to the per-channel means and standard deviations (over the batch and the
        pixels) of ``x`` and ``c``."""
        x, c = self._check(x, c)
        for name, v in (("x", x), ("c", c)):
            v = v.reshape(-1, *v.shape[-3:])
            if not self.pixelwise:  # (channel, every pixel of every image)
                v = v.transpose(0, 1).reshape(v.shape[1], -1).T
            self.set_stats(name, v)

    def _check(self, x: torch.Tensor | None, c: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor]:
        if tuple(c.shape[-3:]) != self.context_shape:
            raise InputError(f"the condition must end in {self.context_shape}, got shape {tuple(c.shape)}")
        if x is not None and tuple(x.shape[-3:]) != self.event_shape:
            raise InputError(f"x must end in {self.event_shape}, got shape {tuple(x.shape)}")
        return (None if x is None else x.to(self.dtype)), c.to(self.dtype)

    def conditional(self, c: torch.Tensor) -> NormalizingFlow:
        """The zuko distribution ``p(x | c)`` in the original units: its ``transform`` maps ``x`` to the base
        variable (z-scoring, then the Glow map), ``transform.inv`` maps back. The condition is encoded once."""
        _, c = self._check(None, c)
        batch = c.shape[:-3]
        cz = (c - self._image(self.c_mean)) / self._image(self.c_scale)
        feats = [f.reshape(*batch, *f.shape[1:]) for f in self.encoder(cz.reshape(-1, *self.context_shape))]
        scale = (1.0 / self._image(self.x_scale)).expand(self.event_shape).contiguous()
        zscore = AffineTransform(-self._image(self.x_mean) * scale, scale, event_dim=3)
        zeros = torch.zeros(self.event_shape, dtype=self.dtype, device=c.device).expand(*batch, *self.event_shape)
        base = DiagNormal(zeros, torch.ones_like(zeros), ndims=3)
        return NormalizingFlow(ComposedTransform(zscore, GlowTransform(self.flow, feats)), base)

    def _image(self, stats: torch.Tensor) -> torch.Tensor:
        """Z-scoring statistics broadcastable against ``(C, H, W)``."""
        return stats if self.pixelwise else stats[:, None, None]


def _nll_per_dim(module: torch.nn.Module, x: torch.Tensor, c: torch.Tensor | None) -> torch.Tensor:
    return -module.log_prob(x, c).mean() / x[0].numel()


def _as_images(name: str, a: np.ndarray | torch.Tensor) -> torch.Tensor:
    t = torch.as_tensor(np.asarray(a) if not isinstance(a, torch.Tensor) else a)
    if t.ndim != 4 or t.shape[0] < 2 or min(t.shape) < 1:
        raise InputError(f"train_image_cnf: {name} must be a 4-D array (pairs, channels, H, W) of at least 2 "
                         f"pairs, got shape {tuple(t.shape)}")
    if t.is_complex() or t.dtype == torch.bool:
        raise InputError(f"train_image_cnf: {name} must hold real numbers, got {t.dtype}")
    if not torch.isfinite(t).all():
        raise InputError(f"train_image_cnf: {name} has values that are not finite")
    return t


def train_image_cnf(x: np.ndarray | torch.Tensor, c: np.ndarray | torch.Tensor, *, seed: int, threads: int,
                    epochs: int = 50, batch_size: int = 32, lr: float = 1e-3, held_out: float = 0.2,
                    patience: int | None = 10, index: int = 0, levels: int = 3, steps: int = 4, hidden: int = 32,
                    context_features: int = 8, dtype: str = "float32", pixelwise: bool = False,
                    scale_bound: float = LOG_SCALE_BOUND) -> Trained:
    """Fit an :class:`ImageCNF` to pairs ``(x_i, c_i)`` (``x`` ``(N, C, H, W)``, ``c`` ``(N, Cc, H, W)``) by
    maximum likelihood, deterministically.

    Inside ``seeded_torch(seed, index, threads=threads)``: build the CNF, set its z-scoring from all the
    pairs, then :func:`tasks.nn.training.fit` with the mean negative log-likelihood **in nats per dimension**
    (per pixel and channel of ``x``, so the history does not grow with the image size), a random
    ``held_out`` share of the pairs for validation and early stopping on the held-out NLL (``patience``
    epochs; the best epoch's weights are kept). Returns ``Trained(module, init, history)``."""
    xt, ct = _as_images("x", x), _as_images("c", c)
    if xt.shape[0] != ct.shape[0]:
        raise InputError(f"train_image_cnf: x has {xt.shape[0]} pairs, c has {ct.shape[0]}")
    if xt.shape[-2:] != ct.shape[-2:]:
        raise InputError(f"train_image_cnf: x images are {tuple(xt.shape[-2:])}, c images "
                         f"{tuple(ct.shape[-2:])}: they must be the same size")
    init = {"channels": int(xt.shape[1]), "context_channels": int(ct.shape[1]),
            "size": [int(s) for s in xt.shape[-2:]], "levels": levels, "steps": steps, "hidden": hidden,
            "context_features": context_features, "dtype": dtype, "pixelwise": pixelwise, "scale_bound": scale_bound}
    with seeded_torch(seed, index, threads=threads) as gen:
        module = ImageCNF(**init)
        xt, ct = xt.to(module.dtype), ct.to(module.dtype)
        module.standardize(xt, ct)
        history = fit(module, xt, ct, generator=gen, loss=_nll_per_dim, epochs=epochs, batch_size=batch_size,
                      lr=lr, held_out=held_out, patience=patience)
    return Trained(module, init, history)
