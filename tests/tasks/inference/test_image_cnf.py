"""Training the image CNF (a conditional Glow): deterministic, checkpointable, refusing bad input, and accurate
on a denoising problem with a known per-pixel Gaussian posterior."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from strata_errors import InputError
from tasks.inference.glow import ImageCNF, train_image_cnf
from tasks.nn.checkpoint import from_dataset, to_dataset
from tasks.nn.training import seeded_torch

SIGMA = 0.5  # c = x + SIGMA · noise, x with iid N(0, 1) pixels
ARCH = {"levels": 2, "steps": 2, "hidden": 16, "context_features": 8}
TINY = {"epochs": 2, "batch_size": 16, "levels": 1, "steps": 1, "hidden": 4, "context_features": 2}


def _pairs(n: int, seed: int, size: int = 8) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 1, size, size)).astype("f4")
    return x, (x + SIGMA * rng.standard_normal(x.shape)).astype("f4")


def _exact(c: torch.Tensor) -> tuple[torch.Tensor, float]:
    """The posterior of every pixel: N(c / (1 + σ²), σ² / (1 + σ²))."""
    return c / (1 + SIGMA**2), SIGMA / math.sqrt(1 + SIGMA**2)


def _errors(module: ImageCNF, x: torch.Tensor, c: torch.Tensor) -> dict[str, float]:
    """RMS error of the posterior mean and relative RMS error of the posterior std (200 draws), and the mean
    excess NLL per pixel over the exact posterior's (a KL divergence estimate, nats)."""
    mean, std = _exact(c)
    with seeded_torch(0, threads=1), torch.no_grad():
        m, s = module.posterior_mean_std(c, 200, torch.Generator().manual_seed(1), batch=64)
        nll = -module.log_prob(x, c).mean() / x[0].numel()
    exact = 0.5 * math.log(2 * math.pi * std**2) + 0.5 * float((((x - mean) / std) ** 2).mean())
    return {"mean": float(((m - mean) ** 2).mean().sqrt()), "std": float((((s - std) / std) ** 2).mean().sqrt()),
            "excess_nll": float(nll) - exact}


def test_a_conditional_glow_learns_the_per_pixel_posterior_of_a_denoising_problem():
    """4,000 pairs of 8×8 images, 4 epochs (~10 s on one thread): the posterior mean within 0.25 (RMS; an
    untrained flow is off by ~0.9, the posterior std is 0.45), the std within 25 % (untrained: ~120 %), and
    held-out NLL within 0.1 nats per pixel of the exact posterior's (untrained: ~0.8)."""
    x, c = _pairs(4000, seed=0)
    trained = train_image_cnf(x, c, seed=0, threads=1, epochs=4, batch_size=32, lr=3e-3, **ARCH)
    xt, ct = (torch.from_numpy(a) for a in _pairs(64, seed=1))
    got = _errors(trained.module, xt, ct)
    assert got["mean"] < 0.25 and got["std"] < 0.25 and got["excess_nll"] < 0.1, got
    # the same checks fail for the untrained flow (identity steps, z-scoring from the same data)
    init = {k: v for k, v in trained.init.items()}
    with seeded_torch(0, threads=1):
        untrained = ImageCNF(**init)
        untrained.standardize(torch.from_numpy(x), torch.from_numpy(c))
    bad = _errors(untrained, xt, ct)
    assert bad["mean"] > 0.6 and bad["std"] > 0.8 and bad["excess_nll"] > 0.5, bad


def test_training_is_deterministic_and_returns_a_registered_checkpoint():
    x, c = _pairs(64, seed=2, size=4)
    a = train_image_cnf(x, c, seed=5, threads=1, **TINY)
    b = train_image_cnf(x, c, seed=5, threads=1, **TINY)
    sa, sb = a.module.state_dict(), b.module.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa) and a.history == b.history
    assert train_image_cnf(x, c, seed=6, threads=1, **TINY).history != a.history
    assert isinstance(a.module, ImageCNF) and a.name == "image_cnf"
    assert a.init == {"channels": 1, "context_channels": 1, "size": [4, 4], "levels": 1, "steps": 1, "hidden": 4,
                      "context_features": 2, "dtype": "float32", "pixelwise": False, "scale_bound": 2.0}
    assert set(a.history) == {"train", "validation"} and 1 <= len(a.history["train"]) <= 2
    # per-channel z-scoring over the pairs and the pixels
    assert np.allclose(a.module.x_mean.numpy(), [x.mean()], atol=1e-5)
    assert np.allclose(a.module.c_scale.numpy(), [c.std()], rtol=1e-4)
    back = from_dataset(to_dataset(a))
    xt, ct = torch.from_numpy(x[:5]), torch.from_numpy(c[:5])
    with torch.no_grad():
        assert torch.equal(back.module.log_prob(xt, ct), a.module.log_prob(xt, ct))


def test_a_constant_channel_is_scaled_by_one():
    module = ImageCNF(2, 1, [4, 4], levels=1, steps=1, hidden=4, context_features=2)
    x = torch.randn(8, 2, 4, 4)
    x[:, 1] = 3.0
    module.standardize(x, torch.randn(8, 1, 4, 4))
    assert module.x_scale[1] == 1.0 and module.x_mean[1] == 3.0


def test_pixelwise_z_scoring_has_a_mean_and_scale_per_pixel():
    module = ImageCNF(1, 1, [4, 4], levels=1, steps=1, hidden=4, context_features=2, pixelwise=True)
    x = torch.randn(64, 1, 4, 4) * torch.arange(1, 17.0).reshape(1, 1, 4, 4) + 5.0
    x[:, 0, 0, 0] = 2.0  # a constant pixel
    module.standardize(x, torch.randn(64, 1, 4, 4))
    assert module.x_mean.shape == module.x_scale.shape == (1, 4, 4)
    assert torch.allclose(module.x_mean, x.mean(0)) and module.x_scale[0, 0, 0] == 1.0
    assert torch.allclose(module.x_scale[0, 1:, :], x.std(0, correction=0)[0, 1:, :])
    with pytest.raises(InputError, match="pixelwise must be true or false"):
        ImageCNF(1, 1, [4, 4], levels=1, pixelwise="yes")


def test_posterior_mean_std_in_batches_matches_all_at_once():
    module = ImageCNF(1, 2, [4, 4], levels=2, steps=1, hidden=4, context_features=2)
    c = torch.randn(3, 2, 4, 4)
    m1, s1 = module.posterior_mean_std(c, 10, torch.Generator().manual_seed(0))
    m2, s2 = module.posterior_mean_std(c, 10, torch.Generator().manual_seed(0), batch=4)
    assert m2.shape == s2.shape == (3, 1, 4, 4)
    # the chunks come from the same generator stream: the same draws up to summation order
    assert torch.allclose(m1, m2, atol=1e-5) and torch.allclose(s1, s2, atol=1e-5)
    with pytest.raises(InputError, match="n >= 2"):
        module.posterior_mean_std(c, 1, torch.Generator())


@pytest.mark.parametrize("kwargs, match", [
    ({"size": [8]}, "size must be"),
    ({"size": [8, 0]}, "size"),
    ({"size": "88"}, "size must be"),
    ({"size": [12, 8], "levels": 3}, "divisible by 2\\*\\*levels = 8"),
    ({"levels": 0}, "levels"),
    ({"steps": 0}, "steps"),
    ({"hidden": 2.5}, "hidden"),
    ({"channels": True}, "channels"),
    ({"context_features": 0}, "context_features"),
    ({"dtype": "float16"}, "dtype"),
])
def test_bad_init_kwargs_are_refused(kwargs, match):
    init = {"channels": 1, "context_channels": 2, "size": [8, 8], "levels": 2, **kwargs}
    with pytest.raises(InputError, match=match):
        ImageCNF(**init)


def test_bad_inputs_are_refused():
    module = ImageCNF(1, 2, [4, 4], levels=1, steps=1, hidden=4, context_features=2)
    with pytest.raises(InputError, match="condition must end in"):
        module.log_prob(torch.zeros(3, 1, 4, 4), torch.zeros(3, 1, 4, 4))
    with pytest.raises(InputError, match="x must end in"):
        module.log_prob(torch.zeros(3, 1, 8, 8), torch.zeros(3, 2, 4, 4))
    with pytest.raises(InputError, match="sample count"):
        module.sample(torch.zeros(2, 4, 4), 0, torch.Generator())


def test_bad_training_data_are_refused():
    x, c = _pairs(20, seed=0, size=4)
    with pytest.raises(InputError, match="pairs"):
        train_image_cnf(x, c[:10], seed=0, threads=1, **TINY)
    bad = x.copy()
    bad[0, 0, 1, 2] = np.inf
    with pytest.raises(InputError, match="not finite"):
        train_image_cnf(bad, c, seed=0, threads=1, **TINY)
    with pytest.raises(InputError, match="4-D"):
        train_image_cnf(x[:, 0], c, seed=0, threads=1, **TINY)
    with pytest.raises(InputError, match="same size"):
        train_image_cnf(x, c[..., :2], seed=0, threads=1, **TINY)
    with pytest.raises(InputError, match="divisible"):
        train_image_cnf(x[..., :3, :3], c[..., :3, :3], seed=0, threads=1, **TINY)


def test_the_scale_bound_limits_every_affine_layer_and_travels_with_the_checkpoint():
    rng = np.random.default_rng(0)
    x, c = rng.standard_normal((8, 1, 4, 4)), rng.standard_normal((8, 1, 4, 4))
    tight = train_image_cnf(x, c, seed=0, threads=1, **{**TINY, "scale_bound": 0.5})
    assert tight.init["scale_bound"] == 0.5
    loaded = from_dataset(to_dataset(tight)).module
    layers = [m for m in loaded.modules() if hasattr(m, "bound") and hasattr(m, "net")]
    assert layers and all(m.bound == 0.5 for m in layers)
    step = loaded.flow.levels[0][0].coupling
    with torch.no_grad():  # a huge raw output is squashed into ±bound
        step.net[-1].bias.fill_(100.0)
        _, log_s = step._shift_log_scale(torch.zeros(1, step.kept, 2, 2), torch.zeros(1, 2, 2, 2))
    assert float(log_s.abs().max()) <= 0.5 + 1e-6
    with pytest.raises(InputError, match="scale_bound"):
        ImageCNF(1, 1, [4, 4], levels=1, steps=1, scale_bound=0.0)
