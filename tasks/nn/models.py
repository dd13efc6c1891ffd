"""Registered model classes and activations every study may store (a multilayer perceptron)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn
from torch.nn import functional as F

from strata_errors import InputError

from .registry import register_callable, register_model

__all__ = ["MLP"]

for _name, _fn in {"tanh": torch.tanh, "relu": torch.relu, "sigmoid": torch.sigmoid, "gelu": F.gelu,
                   "silu": F.silu, "softplus": F.softplus, "elu": F.elu}.items():
    register_callable(_name, _fn)

_DTYPES = {"float32": torch.float32, "float64": torch.float64}


@register_model("mlp")
class MLP(nn.Module):
    """Fully connected layers of ``sizes`` (input, hidden…, output), ``activation`` between them."""

    def __init__(self, sizes: Sequence[int], activation: Callable[[torch.Tensor], torch.Tensor] = torch.tanh,
                 dtype: str = "float32"):
        super().__init__()
        if len(sizes) < 2 or any(not isinstance(s, int) or s < 1 for s in sizes):
            raise InputError(f"MLP sizes must be at least two integers >= 1, got {sizes!r}")
        if dtype not in _DTYPES:
            raise InputError(f"MLP dtype must be one of {', '.join(_DTYPES)}, got {dtype!r}")
        self.activation = activation
        pairs = zip(sizes[:-1], sizes[1:], strict=True)
        self.layers = nn.ModuleList(nn.Linear(a, b, dtype=_DTYPES[dtype]) for a, b in pairs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i < len(self.layers) - 1:
                x = self.activation(x)
        return x
