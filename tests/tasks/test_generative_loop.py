"""The generic MAD loop against the exact moment recursions of the Gaussian loop, and its seeding."""

from __future__ import annotations

import numpy as np
import pytest

from strata_errors import InputError
from tasks.generative.gaussian import expected_mean_error, expected_variance
from tasks.generative.loop import chain_generation

N, G, CHAINS = 12, 4, 600


def _fresh(rng: np.random.Generator, m: int) -> np.ndarray:
    return rng.normal(size=(m, 1))


def _chain_moments(loop: str, lam: float, chain: int, n_synth: int = 12, n_fresh: int = 6) -> list[tuple]:
    """(fitted variance, squared mean error) per generation of one chain; the truth is N(0, 1)."""
    real = np.random.default_rng([5, chain]).normal(size=(N, 1))
    prev, out = None, []
    for t in range(G + 1):
        g = chain_generation("gaussian", {}, real=real, prev=prev, generation=t, loop=loop, lam=lam,
                             n_synth=n_synth, n_fresh=n_fresh, seed=3, chain=chain, draw_fresh=_fresh)
        prev = g.trained
        out.append((float(prev.module.chol.numpy()[0, 0] ** 2), float(prev.module.mean.numpy()[0] ** 2)))
    return out


@pytest.mark.parametrize("loop,lam", [("fully_synthetic", 1.0), ("fully_synthetic", 0.8), ("fresh_data", 1.0),
                                      ("synthetic_augmentation", 1.0)])
def test_gaussian_family_follows_the_exact_variance_recursion(loop, lam):
    """Means over chains of the fitted variance and of the squared mean error within 3.5 SE of E[σ_t²] and
    E(μ_t − μ0)² (mad_gaussian's exact recursions, which depend on λ, the loop type and the set sizes) at every t."""
    m = np.array([_chain_moments(loop, lam, c) for c in range(CHAINS)])  # (chain, t, 2)
    mean, se = m.mean(0), m.std(0, ddof=1) / np.sqrt(CHAINS)
    sizes = {"n": N, "n_synth": 12, "n_fresh": 6, "lam": lam, "estimator": "unbiased", "sigma0": 1.0}
    exact = np.column_stack([expected_variance(loop, G, **sizes), expected_mean_error(loop, G, **sizes)])
    assert np.all(np.abs(mean - exact) <= 3.5 * se), (mean, exact, se)
    if loop == "fully_synthetic" and lam < 1:
        assert mean[-1, 0] < 0.6 * mean[0, 0]  # λ^t: 0.8^4 = 0.41


def test_a_chain_does_not_depend_on_the_others_and_is_seeded():
    assert _chain_moments("fresh_data", 1.0, 7) == _chain_moments("fresh_data", 1.0, 7)
    assert _chain_moments("fresh_data", 1.0, 7) != _chain_moments("fresh_data", 1.0, 8)


def test_bad_inputs():
    real = np.zeros((5, 1)) + np.arange(5)[:, None]
    with pytest.raises(InputError, match="not one of"):
        chain_generation("gaussian", {}, real=real, prev=None, generation=0, loop="bogus", lam=1.0, n_synth=1,
                         n_fresh=1, seed=0, chain=0)
    with pytest.raises(InputError, match="needs generation 0's model"):
        chain_generation("gaussian", {}, real=real, prev=None, generation=1, loop="fully_synthetic", lam=1.0,
                         n_synth=1, n_fresh=1, seed=0, chain=0)
    g0 = chain_generation("gaussian", {}, real=real, prev=None, generation=0, loop="fresh_data", lam=1.0,
                          n_synth=0, n_fresh=0, seed=0, chain=0)
    with pytest.raises(InputError, match="fewer than 2 points"):
        chain_generation("gaussian", {}, real=real, prev=g0.trained, generation=1, loop="fresh_data", lam=1.0,
                         n_synth=1, n_fresh=0, seed=0, chain=0, draw_fresh=_fresh)
