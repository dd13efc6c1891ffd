"""What the CNF classes share: checked init values, the z-scoring buffers a checkpoint carries, and
everything that follows from ``conditional(c)`` — the log-density, draws, posterior mean and std.

A subclass sets ``event_shape`` (the shape of one ``x``), registers its statistics with
:meth:`CNFBase.register_stats`, and implements ``_check(x, c)`` (shapes, dtype) and ``conditional(c)``
(a zuko ``NormalizingFlow`` in the original units of ``x``).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from zuko.distributions import NormalizingFlow

from strata_errors import InputError

__all__ = ["DTYPES", "positive_int", "CNFBase"]

DTYPES = {"float32": torch.float32, "float64": torch.float64}
_MIN_SCALE = 1e-12  # a constant column (channel, pixel) is scaled by 1, not by 0


def positive_int(owner: str, name: str, value: object, minimum: int = 1) -> int:
    """``value`` as an int >= ``minimum``; InputError naming ``owner``'s ``name`` otherwise."""
    if not isinstance(value, int | np.integer) or isinstance(value, bool) or value < minimum:
        raise InputError(f"{owner} {name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


class CNFBase(nn.Module):
    """A conditional normalizing flow ``p(x | c)`` with z-scoring statistics of ``x`` and of the condition
    ``c`` as buffers (``x_mean``, ``x_scale``, ``c_mean``, ``c_scale``), so that a checkpoint carries them."""

    event_shape: tuple[int, ...]

    def register_stats(self, x_shape: tuple[int, ...], c_shape: tuple[int, ...], dtype: torch.dtype) -> None:
        self.register_buffer("x_mean", torch.zeros(x_shape, dtype=dtype))
        self.register_buffer("x_scale", torch.ones(x_shape, dtype=dtype))
        self.register_buffer("c_mean", torch.zeros(c_shape, dtype=dtype))
        self.register_buffer("c_scale", torch.ones(c_shape, dtype=dtype))

    @property
    def dtype(self) -> torch.dtype:
        return self.x_mean.dtype

    @torch.no_grad()
    def set_stats(self, name: str, rows: torch.Tensor) -> None:
        """``<name>_mean`` and ``<name>_scale`` from ``rows`` (observations along dim 0): the column means and
        standard deviations, a constant column scaled by 1."""
        mean, std = rows.mean(0), rows.std(0, correction=0)
        getattr(self, f"{name}_mean").copy_(mean)
        getattr(self, f"{name}_scale").copy_(torch.where(std > _MIN_SCALE, std, torch.ones_like(std)))

    def _check(self, x: torch.Tensor | None, c: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor]:
        raise NotImplementedError

    def conditional(self, c: torch.Tensor) -> NormalizingFlow:
        raise NotImplementedError

    def log_prob(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        """``log p(x | c)`` in nats, shape ``broadcast(x, c)`` without the event dims."""
        x, c = self._check(x, c)
        return self.conditional(c).log_prob(x)

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        return self.log_prob(x, c)

    @staticmethod
    def from_base(dist: NormalizingFlow, eps: torch.Tensor) -> torch.Tensor:
        """Draws of ``dist`` from standard normal draws ``eps`` ``(n, *batch, *event)``: scaled to the base,
        then through the inverse transform."""
        return dist.transform.inv(dist.base.mean + dist.base.stddev * eps)

    def sample(self, c: torch.Tensor, n: int, generator: torch.Generator) -> torch.Tensor:
        """``n`` draws of ``x | c``, shape ``(n, *batch of c, *event_shape)``: base draws from ``generator``
        (the same generator state gives the same samples) mapped through the inverse transform."""
        n = positive_int(type(self).__name__, "sample count n", n)
        dist = self.conditional(c)
        eps = torch.randn((n, *dist.batch_shape, *self.event_shape), generator=generator, dtype=self.dtype,
                          device=generator.device)
        return self.from_base(dist, eps.to(self.x_mean.device))

    @torch.no_grad()
    def posterior_mean_std(self, c: torch.Tensor, n: int, generator: torch.Generator, batch: int | None = None
                           ) -> tuple[torch.Tensor, torch.Tensor]:
        """Sample mean and standard deviation (``n - 1`` normalization) of ``n`` draws of ``x | c``, each
        ``(*batch of c, *event_shape)``. ``batch``: draw that many at a time (bounded memory; the draws then
        come from the generator chunk by chunk), or all at once when None."""
        if not isinstance(n, int | np.integer) or isinstance(n, bool) or n < 2:
            raise InputError(f"posterior_mean_std needs n >= 2 samples, got {n!r}")
        if batch is None or batch >= n:
            draws = self.sample(c, n, generator)
            return draws.mean(0), draws.std(0, correction=1)
        batch = positive_int(type(self).__name__, "posterior_mean_std batch", batch)
        total = square = None
        for start in range(0, n, batch):  # sums in float64: mean and variance from the moments
            draws = self.sample(c, min(batch, n - start), generator).to(torch.float64)
            s, q = draws.sum(0), (draws**2).sum(0)
            total, square = (s, q) if total is None else (total + s, square + q)
        mean = total / n
        var = ((square - n * mean**2) / (n - 1)).clamp_min(0.0)
        return mean.to(self.dtype), var.sqrt().to(self.dtype)
