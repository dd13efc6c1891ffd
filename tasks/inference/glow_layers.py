"""The torch layers of the conditional Glow (:mod:`tasks.inference.glow`): a multiscale invertible map of
images ``(B, C, H, W)`` given per-level condition features, with its exact log-determinant.

Per level: a squeeze (space-to-depth 2×2, :func:`torch.nn.functional.pixel_unshuffle`), ``steps`` flow steps of
ActNorm → invertible 1×1 convolution (LU-parametrized) → affine injector (every channel shifted and scaled by
a conv of the condition features of that level) → affine coupling (a conv conditioner that sees the first
half of the channels and the condition features); the log-scales tanh-bounded, the last conv layers
zero-initialized so each step starts as the identity; then, except at the last level, half the
channels leave for the base (multiscale) and the other half go on to the next level. The base variable is
put back in place of what it came from, so :meth:`Glow.forward_map` keeps the shape ``(B, C, H, W)``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["ActNorm", "InvConv1x1", "AffineInjector", "AffineCoupling", "FlowStep", "ConditionEncoder", "Glow",
           "LOG_SCALE_BOUND"]

LOG_SCALE_BOUND = 2.0  # by default each coupling scales by exp(±2) at most: log_s = B·tanh(raw / B)


def _pixels(x: torch.Tensor) -> int:
    return x.shape[-2] * x.shape[-1]


class ActNorm(nn.Module):
    """``y = (x + bias) · exp(log_scale)`` per channel, starting as the identity (the input is z-scored)."""

    def __init__(self, channels: int):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(channels))
        self.log_scale = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        y = (x + self.bias[:, None, None]) * self.log_scale.exp()[:, None, None]
        return y, (self.log_scale.sum() * _pixels(x)).expand(x.shape[0])

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        return y * (-self.log_scale).exp()[:, None, None] - self.bias[:, None, None]


class InvConv1x1(nn.Module):
    """An invertible 1×1 convolution ``W = P · L · (U + diag(sign · exp(log_s)))`` (Glow's LU form), from a
    random rotation (torch's global RNG; ``det W > 0`` throughout, since ``P`` and ``sign`` are fixed buffers
    and ``L`` has a unit diagonal): ``log|det| = H · W · Σ log_s``."""

    def __init__(self, channels: int):
        super().__init__()
        q, _ = torch.linalg.qr(torch.randn(channels, channels, dtype=torch.float64))
        if torch.linalg.det(q) < 0:  # a proper rotation: the map keeps det > 0 (its sign never changes)
            q[:, 0] = -q[:, 0]
        p, lower, upper = torch.linalg.lu(q)
        s = torch.diagonal(upper)
        dt = torch.get_default_dtype()
        self.register_buffer("perm", p.to(dt))
        self.register_buffer("sign", torch.sign(s).to(dt))
        self.lower = nn.Parameter(torch.tril(lower, -1).to(dt))
        self.upper = nn.Parameter(torch.triu(upper, 1).to(dt))
        self.log_s = nn.Parameter(s.abs().log().to(dt))

    def weight(self) -> torch.Tensor:
        eye = torch.eye(self.log_s.shape[0], dtype=self.log_s.dtype, device=self.log_s.device)
        lower = torch.tril(self.lower, -1) + eye
        upper = torch.triu(self.upper, 1) + torch.diag(self.sign * self.log_s.exp())
        return self.perm @ lower @ upper

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        y = F.conv2d(x, self.weight()[:, :, None, None])
        return y, (self.log_s.sum() * _pixels(x)).expand(x.shape[0])

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        return F.conv2d(y, torch.linalg.inv(self.weight())[:, :, None, None])


def _bounded(h: torch.Tensor, bound: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(shift, log-scale) from the even and odd channels of ``h``; the log-scale bounded by B·tanh(·/B)."""
    return h[:, 0::2], bound * torch.tanh(h[:, 1::2] / bound)


def _zero_conv(inputs: int, outputs: int) -> nn.Conv2d:
    conv = nn.Conv2d(inputs, outputs, 3, padding=1)
    nn.init.zeros_(conv.weight)
    nn.init.zeros_(conv.bias)
    return conv


class AffineInjector(nn.Module):
    """``y = x · exp(log_s) + t`` on every channel, ``(t, log_s)`` from the condition features alone (a 3×3
    conv, zero-initialized; SRFlow's affine injector): the condition acts on all of ``x`` at every step."""

    def __init__(self, channels: int, features: int, bound: float = LOG_SCALE_BOUND):
        super().__init__()
        self.net = _zero_conv(features, 2 * channels)
        self.bound = float(bound)

    def forward(self, x: torch.Tensor, feats: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        shift, log_s = _bounded(self.net(feats), self.bound)
        return x * log_s.exp() + shift, log_s.sum((1, 2, 3))

    def inverse(self, y: torch.Tensor, feats: torch.Tensor) -> torch.Tensor:
        shift, log_s = _bounded(self.net(feats), self.bound)
        return (y - shift) * (-log_s).exp()


class AffineCoupling(nn.Module):
    """``y_b = x_b · exp(log_s) + t`` with ``(t, log_s)`` from a conv net of ``[x_a, features]`` (3×3 → 1×1 →
    3×3, the last zero-initialized), ``log_s`` bounded by ``bound`` (default :data:`LOG_SCALE_BOUND`);
    ``x_a`` (the first ``kept`` channels) passes unchanged."""

    def __init__(self, channels: int, features: int, hidden: int, bound: float = LOG_SCALE_BOUND):
        super().__init__()
        self.kept = channels // 2
        self.bound = float(bound)
        self.net = nn.Sequential(nn.Conv2d(self.kept + features, hidden, 3, padding=1), nn.ReLU(),
                                 nn.Conv2d(hidden, hidden, 1), nn.ReLU(),
                                 _zero_conv(hidden, 2 * (channels - self.kept)))

    def _shift_log_scale(self, xa: torch.Tensor, feats: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return _bounded(self.net(torch.cat([xa, feats], dim=1)), self.bound)

    def forward(self, x: torch.Tensor, feats: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        xa, xb = x[:, : self.kept], x[:, self.kept:]
        shift, log_s = self._shift_log_scale(xa, feats)
        return torch.cat([xa, xb * log_s.exp() + shift], dim=1), log_s.sum((1, 2, 3))

    def inverse(self, y: torch.Tensor, feats: torch.Tensor) -> torch.Tensor:
        ya, yb = y[:, : self.kept], y[:, self.kept:]
        shift, log_s = self._shift_log_scale(ya, feats)
        return torch.cat([ya, (yb - shift) * (-log_s).exp()], dim=1)


class FlowStep(nn.Module):
    """ActNorm → invertible 1×1 convolution → affine injector → affine coupling."""

    def __init__(self, channels: int, features: int, hidden: int, bound: float = LOG_SCALE_BOUND):
        super().__init__()
        self.norm, self.mix = ActNorm(channels), InvConv1x1(channels)
        self.inject = AffineInjector(channels, features, bound)
        self.coupling = AffineCoupling(channels, features, hidden, bound)

    def forward(self, x: torch.Tensor, feats: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x, a = self.norm(x)
        x, b = self.mix(x)
        x, c = self.inject(x, feats)
        x, d = self.coupling(x, feats)
        return x, a + b + c + d

    def inverse(self, y: torch.Tensor, feats: torch.Tensor) -> torch.Tensor:
        y = self.inject.inverse(self.coupling.inverse(y, feats), feats)
        return self.norm.inverse(self.mix.inverse(y))


class ConditionEncoder(nn.Module):
    """Condition features at every level's resolution: level ``l`` squeezes the previous level's features
    (level 0: the z-scored condition) and applies 3×3 conv → ReLU → 3×3 conv, ``features · 2**l`` channels
    out (doubling per level as the flow's channels do, so coarser levels are no bottleneck)."""

    def __init__(self, channels: int, features: int, hidden: int, levels: int):
        super().__init__()
        widths = [channels] + [features * 2**i for i in range(levels)]
        self.levels = nn.ModuleList(
            nn.Sequential(nn.Conv2d(4 * widths[i], hidden, 3, padding=1), nn.ReLU(),
                          nn.Conv2d(hidden, widths[i + 1], 3, padding=1))
            for i in range(levels))

    def forward(self, c: torch.Tensor) -> list[torch.Tensor]:
        feats = []
        for net in self.levels:
            c = net(F.pixel_unshuffle(c, 2))
            feats.append(c)
        return feats


class Glow(nn.Module):
    """The multiscale flow for ``channels``-channel images over ``levels`` levels of ``steps`` steps, level
    ``l`` conditioned on ``features · 2**l`` channels of condition features (:class:`ConditionEncoder`)."""

    def __init__(self, channels: int, features: int, hidden: int, levels: int, steps: int,
                 bound: float = LOG_SCALE_BOUND):
        super().__init__()
        widths = []
        for _ in range(levels):
            channels *= 4
            widths.append(channels)
            channels //= 2
        self.levels = nn.ModuleList(nn.ModuleList(FlowStep(w, features * 2**i, hidden, bound) for _ in range(steps))
                                    for i, w in enumerate(widths))

    def forward_map(self, x: torch.Tensor, feats: list[torch.Tensor], level: int = 0
                    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(z, log|det ∂z/∂x|)`` of ``x`` ``(B, C, H, W)``: ``z`` of the same shape, the log-det ``(B,)``."""
        x = F.pixel_unshuffle(x, 2)
        ladj = x.new_zeros(x.shape[0])
        for step in self.levels[level]:
            x, d = step(x, feats[level])
            ladj = ladj + d
        if level + 1 < len(self.levels):
            k = x.shape[1] // 2
            inner, d = self.forward_map(x[:, :k], feats, level + 1)
            x, ladj = torch.cat([inner, x[:, k:]], dim=1), ladj + d
        return F.pixel_shuffle(x, 2), ladj

    def inverse_map(self, z: torch.Tensor, feats: list[torch.Tensor], level: int = 0) -> torch.Tensor:
        """The ``x`` with ``forward_map(x)[0] == z``."""
        z = F.pixel_unshuffle(z, 2)
        if level + 1 < len(self.levels):
            k = z.shape[1] // 2
            z = torch.cat([self.inverse_map(z[:, :k], feats, level + 1), z[:, k:]], dim=1)
        for step in reversed(self.levels[level]):
            z = step.inverse(z, feats[level])
        return F.pixel_shuffle(z, 2)
