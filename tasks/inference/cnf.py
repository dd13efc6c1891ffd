"""A conditional normalizing flow (CNF) for vectors, ``p(x | c)``, built on zuko, stored as a checkpoint.

``VectorCNF`` (registered as ``vector_cnf``) wraps a zuko NSF or MAF with z-scoring of ``x`` and of the
condition ``c`` built in: the means and scales are buffers (set from training data by
:meth:`VectorCNF.standardize`), so a checkpoint carries them. Everything the class exposes is in the
original units of ``x`` and ``c``; the z-scoring is part of the transform (its log-determinant included).

Shapes follow torch.distributions: ``c`` is ``(*batch, context)``; ``log_prob(x, c)`` is ``(*batch,)``;
``sample(c, n, generator)`` is ``(n, *batch, features)``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import zuko
from torch import nn
from torch.distributions import AffineTransform
from zuko.distributions import NormalizingFlow
from zuko.transforms import ComposedTransform

from strata_errors import InputError
from tasks.nn.checkpoint import Trained
from tasks.nn.registry import register_model
from tasks.nn.training import fit, seeded_torch

from .cnf_base import DTYPES, CNFBase, positive_int

__all__ = ["VectorCNF", "train_cnf", "FAMILIES", "ACTIVATIONS"]

FAMILIES = ("nsf", "maf")
ACTIVATIONS: dict[str, type[nn.Module]] = {"relu": nn.ReLU, "elu": nn.ELU, "silu": nn.SiLU, "tanh": nn.Tanh}
_DTYPES = DTYPES


def _positive_int(name: str, value: object, minimum: int = 1) -> int:
    return positive_int("VectorCNF", name, value, minimum)


@register_model("vector_cnf")
class VectorCNF(CNFBase):
    """``p(x | c)`` for ``x`` in R^features and ``c`` in R^context: a zuko ``family`` (``nsf``: rational-
    quadratic splines with ``bins`` bins; ``maf``: affine) of ``transforms`` autoregressive transforms, each
    conditioned by a masked MLP of ``hidden_features`` with ``activation``, on a standard normal base.

    Every init argument is a JSON value, so a checkpoint rebuilds the class from its ``model_init``."""

    def __init__(self, features: int, context: int, transforms: int = 3, hidden_features: Sequence[int] = (64, 64),
                 family: str = "nsf", bins: int = 8, activation: str = "relu", dtype: str = "float32"):
        super().__init__()
        features = _positive_int("features", features)
        context = _positive_int("context", context)
        transforms = _positive_int("transforms", transforms)
        hidden = [_positive_int("hidden_features", h) for h in hidden_features]
        if not hidden:
            raise InputError("VectorCNF hidden_features must name at least one layer size")
        if family not in FAMILIES:
            raise InputError(f"VectorCNF family must be one of {', '.join(FAMILIES)}, got {family!r}")
        if activation not in ACTIVATIONS:
            raise InputError(f"VectorCNF activation must be one of {', '.join(ACTIVATIONS)}, got {activation!r}")
        if dtype not in _DTYPES:
            raise InputError(f"VectorCNF dtype must be one of {', '.join(_DTYPES)}, got {dtype!r}")
        self.features, self.context = features, context
        self.event_shape = (features,)
        kwargs = {"features": features, "context": context, "transforms": transforms, "hidden_features": hidden,
                  "activation": ACTIVATIONS[activation]}
        if family == "nsf":
            net = zuko.flows.NSF(bins=_positive_int("bins", bins, 2), **kwargs)
        else:
            net = zuko.flows.MAF(**kwargs)
        self.net = net.to(_DTYPES[dtype])
        dt = _DTYPES[dtype]
        self.register_stats((features,), (context,), dt)

    @torch.no_grad()
    def standardize(self, x: torch.Tensor, c: torch.Tensor) -> None:
        """Set the z-scoring buffers to the column means and standard deviations of ``x`` and ``c``."""
        x, c = self._check(x, c)
        self.set_stats("x", x)
        self.set_stats("c", c)

    def _check(self, x: torch.Tensor | None, c: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor]:
        if c.shape[-1:] != (self.context,):
            raise InputError(f"the condition must end in {self.context} features, got shape {tuple(c.shape)}")
        if x is not None and x.shape[-1:] != (self.features,):
            raise InputError(f"x must end in {self.features} features, got shape {tuple(x.shape)}")
        return (None if x is None else x.to(self.dtype)), c.to(self.dtype)

    def conditional(self, c: torch.Tensor) -> NormalizingFlow:
        """The zuko distribution ``p(x | c)`` in the original units: its ``transform`` maps ``x`` to the
        base variable (z-scoring, then the zuko transforms), ``transform.inv`` maps back."""
        _, c = self._check(None, c)
        inner = self.net((c - self.c_mean) / self.c_scale)
        scale = 1.0 / self.x_scale
        zscore = AffineTransform(-self.x_mean * scale, scale, event_dim=1)
        return NormalizingFlow(ComposedTransform(zscore, inner.transform), inner.base)


def _nll(module: torch.nn.Module, x: torch.Tensor, c: torch.Tensor | None) -> torch.Tensor:
    return -module.log_prob(x, c).mean()


def _as_rows(name: str, a: np.ndarray | torch.Tensor) -> torch.Tensor:
    t = torch.as_tensor(np.asarray(a) if not isinstance(a, torch.Tensor) else a)
    if t.ndim != 2 or t.shape[0] < 2:
        raise InputError(f"train_cnf: {name} must be a 2-D array (pairs, features) of at least 2 rows, "
                         f"got shape {tuple(t.shape)}")
    if not torch.isfinite(t).all():
        raise InputError(f"train_cnf: {name} has values that are not finite")
    return t


def train_cnf(x: np.ndarray | torch.Tensor, c: np.ndarray | torch.Tensor, *, seed: int, threads: int,
              epochs: int = 200, batch_size: int = 256, lr: float = 1e-3, held_out: float = 0.2,
              patience: int | None = 20, index: int = 0, transforms: int = 3,
              hidden_features: Sequence[int] = (64, 64), family: str = "nsf", bins: int = 8,
              activation: str = "relu", dtype: str = "float32") -> Trained:
    """Fit a :class:`VectorCNF` to pairs ``(x_i, c_i)`` by maximum likelihood, deterministically.

    Inside ``seeded_torch(seed, index, threads=threads)``: build the CNF, set its z-scoring from all the
    rows, then :func:`tasks.nn.training.fit` with the mean negative log-likelihood, a random ``held_out``
    share of the rows for validation and early stopping on the held-out NLL (``patience`` epochs; the
    best epoch's weights are kept). Returns ``Trained(module, init, history)`` with the NLL per epoch."""
    xt, ct = _as_rows("x", x), _as_rows("c", c)
    if xt.shape[0] != ct.shape[0]:
        raise InputError(f"train_cnf: x has {xt.shape[0]} rows, c has {ct.shape[0]}")
    init = {"features": int(xt.shape[1]), "context": int(ct.shape[1]), "transforms": transforms,
            "hidden_features": [int(h) for h in hidden_features], "family": family, "bins": bins,
            "activation": activation, "dtype": dtype}
    with seeded_torch(seed, index, threads=threads) as gen:
        module = VectorCNF(**init)
        xt, ct = xt.to(module.dtype), ct.to(module.dtype)
        module.standardize(xt, ct)
        history = fit(module, xt, ct, generator=gen, loss=_nll, epochs=epochs, batch_size=batch_size, lr=lr,
                      held_out=held_out, patience=patience)
    return Trained(module, init, history)
