"""What the CNF classes share: checked init values and the z-scoring buffers a checkpoint carries."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from strata_errors import InputError

__all__ = ["DTYPES", "positive_int", "ZScored"]

DTYPES = {"float32": torch.float32, "float64": torch.float64}
_MIN_SCALE = 1e-12  # a constant column (channel, pixel) is scaled by 1, not by 0


def positive_int(owner: str, name: str, value: object, minimum: int = 1) -> int:
    """``value`` as an int >= ``minimum``; InputError naming ``owner``'s ``name`` otherwise."""
    if not isinstance(value, int | np.integer) or isinstance(value, bool) or value < minimum:
        raise InputError(f"{owner} {name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


class ZScored(nn.Module):
    """A module with z-scoring statistics of ``x`` and of the condition ``c`` as buffers (``x_mean``,
    ``x_scale``, ``c_mean``, ``c_scale``), so that a checkpoint carries them."""

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
