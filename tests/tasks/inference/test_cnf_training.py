"""Training a vector CNF: deterministic, checkpointable, and accurate on the stylized linear-Gaussian problem."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from strata_errors import InputError
from tasks.inference.cnf import VectorCNF, train_cnf
from tasks.inference.stylized import cov_error, coverage, make_problem, mean_error, sample_pairs
from tasks.nn.checkpoint import from_dataset, to_dataset

SMALL = {"epochs": 3, "batch_size": 64, "transforms": 2, "hidden_features": [8, 8]}


def _pairs(n: int = 300):
    p = make_problem(2, 3, seed=0, noise_scale=0.5)
    return sample_pairs(p, n, seed=0)


def test_training_is_deterministic_and_returns_a_registered_checkpoint():
    x, y = _pairs()
    a = train_cnf(x, y, seed=5, threads=1, **SMALL)
    b = train_cnf(x, y, seed=5, threads=1, **SMALL)
    sa, sb = a.module.state_dict(), b.module.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa) and a.history == b.history
    c = train_cnf(x, y, seed=6, threads=1, **SMALL)
    assert a.history != c.history
    assert isinstance(a.module, VectorCNF) and a.name == "vector_cnf"
    assert a.init == {"features": 2, "context": 3, "transforms": 2, "hidden_features": [8, 8], "family": "nsf",
                      "bins": 8, "activation": "relu", "dtype": "float32"}
    assert set(a.history) == {"train", "validation"} and 1 <= len(a.history["train"]) <= 3
    # the z-scoring buffers hold the moments of the training rows
    assert np.allclose(a.module.x_mean.numpy(), x.mean(0), atol=1e-5)
    assert np.allclose(a.module.c_scale.numpy(), y.std(0), rtol=1e-5)
    back = from_dataset(to_dataset(a))
    xt, yt = torch.from_numpy(x[:5]).float(), torch.from_numpy(y[:5]).float()
    with torch.no_grad():
        assert torch.equal(back.module.log_prob(xt, yt), a.module.log_prob(xt, yt))


def test_bad_training_data_are_refused():
    x, y = _pairs(20)
    with pytest.raises(InputError, match="rows"):
        train_cnf(x, y[:10], seed=0, threads=1, **SMALL)
    bad = x.copy()
    bad[0, 0] = np.nan
    with pytest.raises(InputError, match="not finite"):
        train_cnf(bad, y, seed=0, threads=1, **SMALL)
    with pytest.raises(InputError, match="2-D"):
        train_cnf(x[:, 0], y, seed=0, threads=1, **SMALL)
    with pytest.raises(InputError, match="family"):
        train_cnf(x, y, seed=0, threads=1, family="glow", **SMALL)


@pytest.mark.parametrize("family", ["nsf", "maf"])
def test_a_cnf_learns_the_posterior_of_a_2d_linear_gaussian_problem(family):
    """5,000 pairs, a second of training: posterior means within 0.3 posterior std (RMS), covariances within
    30 % (relative Frobenius), 90 % intervals covering about 90 % of the truths."""
    p = make_problem(2, 3, seed=0, noise_scale=0.5)
    x, y = sample_pairs(p, 5000, seed=0)
    trained = train_cnf(x, y, seed=0, threads=1, epochs=40, batch_size=256, lr=3e-3, patience=5, family=family,
                        transforms=2, hidden_features=[32, 32])
    x_test, y_test = sample_pairs(p, 100, seed=0, index=1)
    mu, G = p.posterior(y_test)
    with torch.no_grad():
        draws = trained.module.sample(torch.from_numpy(y_test).float(), 1000, torch.Generator().manual_seed(0))
    draws = draws.double().numpy()
    mean = draws.mean(0)
    covs = np.einsum("nbi,nbj->bij", draws - mean, draws - mean) / (len(draws) - 1)
    assert mean_error(mean, mu, scale=np.sqrt(np.diag(G))) < 0.3
    assert cov_error(covs, G) < 0.3
    assert coverage(draws, x_test, 0.9) == pytest.approx(0.9, abs=0.08)
