"""Generative model families behind one interface, each a registered torch module (so a fitted model is a
checkpoint): ``fit_model(family, x, seed=…, **options) -> Trained`` and ``module.sample(n, lam, generator)``.

Sampling bias λ (λ = 1: the fitted law; λ < 1 trades diversity for quality):

- ``gaussian`` — N(μ̂, λ Σ̂): the covariance scaled by λ (the loop of ``mad_gaussian``).
- ``mixture`` — a Gaussian mixture (scikit-learn EM, full covariances): a component by its weight, then
  N(μ_k, λ Σ_k) (temperature per component; the modes and their weights are kept).
- ``flow`` — a neural spline flow (zuko NSF: monotonic rational-quadratic splines, autoregressive) on
  z-scored data: base draws z ~ N(0, λ I) mapped back (temperature sampling). ``dequantize``: the width of
  uniform noise added to the training points once (for discrete data such as the digits' grey levels).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Sequence

import numpy as np
import torch
import zuko
from torch import nn

from strata_errors import InputError
from tasks.nn.checkpoint import Trained
from tasks.nn.registry import register_model
from tasks.nn.training import fit, seeded_torch

from .metrics import as_points

__all__ = ["FAMILIES", "GaussianModel", "MixtureModel", "FlowModel", "fit_model", "cholesky_factor",
           "gaussian_trained"]


def _lam(lam: float) -> float:
    if not (np.isfinite(lam) and lam > 0):
        raise InputError(f"sampling bias lam must be a finite number > 0, got {lam!r}")
    return float(lam)


def cholesky_factor(cov: np.ndarray, jitter: float = 1e-9) -> np.ndarray:
    """Cholesky factor of a symmetric PSD matrix (..., d, d), with a relative jitter on the diagonal."""
    d = cov.shape[-1]
    scale = np.trace(cov, axis1=-2, axis2=-1)[..., None, None] / d
    return np.linalg.cholesky(cov + jitter * np.maximum(scale, 1e-300) * np.eye(d))


@register_model("gaussian_model")
class GaussianModel(nn.Module):
    """N(mean, cov) in ``features`` dimensions (``chol``: the Cholesky factor of cov); sampling N(mean, λ cov)."""

    def __init__(self, features: int):
        super().__init__()
        self.register_buffer("mean", torch.zeros(features, dtype=torch.float64))
        self.register_buffer("cov", torch.eye(features, dtype=torch.float64))
        self.register_buffer("chol", torch.eye(features, dtype=torch.float64))

    def sample(self, n: int, lam: float, generator: torch.Generator) -> torch.Tensor:
        z = torch.randn(n, self.mean.numel(), generator=generator, dtype=torch.float64)
        return self.mean + np.sqrt(_lam(lam)) * z @ self.chol.T


@register_model("gaussian_mixture")
class MixtureModel(nn.Module):
    """A mixture of ``components`` Gaussians: weights, means, Cholesky factors."""

    def __init__(self, features: int, components: int):
        super().__init__()
        self.register_buffer("weights", torch.full((components,), 1.0 / components, dtype=torch.float64))
        self.register_buffer("means", torch.zeros(components, features, dtype=torch.float64))
        self.register_buffer("chol", torch.eye(features, dtype=torch.float64).repeat(components, 1, 1))

    def sample(self, n: int, lam: float, generator: torch.Generator) -> torch.Tensor:
        k = torch.multinomial(self.weights, n, replacement=True, generator=generator)
        z = torch.randn(n, self.means.shape[1], generator=generator, dtype=torch.float64)
        return self.means[k] + np.sqrt(_lam(lam)) * torch.einsum("nij,nj->ni", self.chol[k], z)


@register_model("flow_model")
class FlowModel(nn.Module):
    """An unconditional zuko NSF of ``transforms`` autoregressive spline layers (``bins`` bins, masked MLPs of
    ``hidden_features``) on z-scored data (``shift``, ``scale`` buffers)."""

    def __init__(self, features: int, transforms: int = 4, hidden_features: Sequence[int] = (64, 64), bins: int = 8):
        super().__init__()
        self.flow = zuko.flows.NSF(features, 0, bins=bins, transforms=transforms, hidden_features=list(hidden_features))
        self.register_buffer("shift", torch.zeros(features))
        self.register_buffer("scale", torch.ones(features))

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        return self.flow().log_prob((x - self.shift) / self.scale) - self.scale.log().sum()

    def sample(self, n: int, lam: float, generator: torch.Generator) -> torch.Tensor:
        z = np.sqrt(_lam(lam)) * torch.randn(n, self.shift.numel(), generator=generator)
        with torch.no_grad():
            return (self.flow().transform.inv(z) * self.scale + self.shift).double()


def _fit_gaussian(x: np.ndarray, seed: int, ddof: int = 1) -> Trained:
    if ddof not in (0, 1):
        raise InputError(f"gaussian: ddof must be 0 (maximum likelihood) or 1 (unbiased), got {ddof!r}")
    mean = x.mean(0)
    centred = x - mean
    return gaussian_trained(mean, centred.T @ centred / (len(x) - ddof))


def gaussian_trained(mean: np.ndarray, cov: np.ndarray) -> Trained:
    """N(mean, cov) as the ``gaussian`` family's fitted model."""
    model = GaussianModel(mean.size)
    model.mean.copy_(torch.from_numpy(np.ascontiguousarray(mean, dtype=np.float64)))
    model.cov.copy_(torch.from_numpy(np.ascontiguousarray(cov, dtype=np.float64)))
    model.chol.copy_(torch.from_numpy(cholesky_factor(cov)))
    return Trained(model, {"features": mean.size})


def _fit_mixture(x: np.ndarray, seed: int, components: int = 8, reg_covar: float = 1e-6,
                 max_iter: int = 200) -> Trained:
    from sklearn.mixture import GaussianMixture

    if not 1 <= components <= len(x):
        raise InputError(f"mixture: components must be in 1..{len(x)} (the points), got {components}")
    gm = GaussianMixture(components, covariance_type="full", reg_covar=reg_covar, max_iter=max_iter,
                         random_state=int(np.random.SeedSequence([seed]).generate_state(1)[0] % 2**31)).fit(x)
    model = MixtureModel(x.shape[1], components)
    model.weights.copy_(torch.from_numpy(gm.weights_))
    model.means.copy_(torch.from_numpy(gm.means_))
    model.chol.copy_(torch.from_numpy(cholesky_factor(gm.covariances_)))
    return Trained(model, {"features": x.shape[1], "components": components})


def _nll(module: nn.Module, x: torch.Tensor, _: torch.Tensor | None) -> torch.Tensor:
    return -module.log_prob(x).mean()


def _fit_flow(x: np.ndarray, seed: int, transforms: int = 4, hidden_features: Sequence[int] = (64, 64), bins: int = 8,
              epochs: int = 100, batch_size: int = 128, lr: float = 1e-3, held_out: float = 0.2,
              patience: int | None = 20, threads: int = 1, dequantize: float = 0.0) -> Trained:
    init = {"features": x.shape[1], "transforms": transforms, "hidden_features": list(hidden_features), "bins": bins}
    if not (np.isfinite(dequantize) and dequantize >= 0):
        raise InputError(f"flow: dequantize must be a finite width >= 0, got {dequantize!r}")
    xt = torch.from_numpy(x.astype(np.float32))
    with seeded_torch(seed, 0, threads=threads) as gen:
        if dequantize:  # uniform dequantization: a density for discrete values, not spikes on them
            xt = xt + dequantize * (torch.rand(xt.shape, generator=gen) - 0.5)
        model = FlowModel(**init)
        model.shift.copy_(xt.mean(0))
        model.scale.copy_(xt.std(0).clamp_min(1e-3 * float(xt.std(0).max())))
        history = fit(model, xt, generator=gen, loss=_nll, epochs=epochs, batch_size=batch_size, lr=lr,
                      held_out=held_out, patience=patience)
    return Trained(model, init, history)


FAMILIES = {"gaussian": _fit_gaussian, "mixture": _fit_mixture, "flow": _fit_flow}


@functools.cache
def _options(fn) -> tuple[str, ...]:
    return tuple(p for p in inspect.signature(fn).parameters if p not in ("x", "seed"))


def fit_model(family: str, x: np.ndarray | torch.Tensor, *, seed: int, **options) -> Trained:
    """Fit a model of ``family`` (``gaussian``, ``mixture``, ``flow``) to the rows of ``x`` with that
    family's ``options``; deterministic given ``seed``. Returns the checkpointable :class:`Trained`."""
    if family not in FAMILIES:
        raise InputError(f"unknown model family {family!r} (known: {', '.join(FAMILIES)})")
    fn = FAMILIES[family]
    allowed = _options(fn)
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise InputError(f"{family}: unknown options {unknown} (known: {', '.join(allowed)})")
    return fn(as_points(x, "training data", min_rows=2), seed, **options)
