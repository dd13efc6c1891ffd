"""Where the ``mad`` study's real and fresh data come from: on the ring (a distribution we can sample) new draws
from the truth, each chain from its own stream; on digits (finite data) the shared pool, and the data say so."""

from __future__ import annotations

import numpy as np

from tasks.generative import mad

KW = dict(family="gaussian", options={}, lam=1.0, n=30, n_synth=30, n_fresh=30, seed=3)


def _mean(models, chain):
    return mad.chain_model(models, chain).module.state_dict()["mean"].numpy()


def test_ring_chains_draw_their_real_sets_from_the_truth_not_the_pool():
    real = mad.real_data(kind="ring", pool=40, held_out=10, components=2, seed=0, ring_options={"modes": 3})
    assert "true ring distribution" in real.attrs["note"]
    g0 = mad.fit_chains(real, chains=np.arange(3), loop="fully_synthetic", generation=0, **KW)
    means = np.array([_mean(g0, c) for c in range(3)])
    for c in range(3):  # generation 0 fits chain c's real set: n new draws of the ring from the chain's stream
        own = mad.ring(np.random.default_rng(np.random.SeedSequence([3, c, 10**6])), 30, modes=3)
        np.testing.assert_allclose(means[c], own.mean(0), rtol=1e-12)
        assert not any(np.isclose(real["pool"].values, own[0]).all(1))  # not a point of the pool
    # a chain's bytes do not depend on which other chains share the call
    alone = mad.fit_chains(real, chains=np.array([2]), loop="fully_synthetic", generation=0, **KW)
    np.testing.assert_array_equal(_mean(alone, 2), means[2])
    # the real set may exceed the pool on the ring: the truth is not finite
    mad.fit_chains(real, chains=np.arange(1), loop="fully_synthetic", generation=0, **{**KW, "n": 100})


def _fresh_only(real, chains, n_fresh):
    """Generation 1 of the fresh-data loop with no synthetic points: a Gaussian fitted to the fresh data alone."""
    kw = {**KW, "n_synth": 0, "n_fresh": n_fresh}
    g0 = mad.fit_chains(real, chains=chains, loop="fresh_data", generation=0, **kw)
    return mad.fit_chains(real, g0, chains=chains, loop="fresh_data", generation=1, **kw)


def test_ring_fresh_data_are_new_draws_of_the_truth_from_the_chains_own_stream():
    real = mad.real_data(kind="ring", pool=40, held_out=10, components=2, seed=0, ring_options={"modes": 3})
    g1 = _fresh_only(real, np.arange(2), 50)
    for c in range(2):
        stream = np.random.SeedSequence([3, c, 1, 2]).spawn(3)[0]  # (seed, chain, generation, fresh_data)
        fresh = mad.ring(np.random.default_rng(stream), 50, modes=3)
        np.testing.assert_allclose(_mean(g1, c), fresh.mean(0), rtol=1e-12)


def test_digits_chains_share_the_finite_pool_and_say_so():
    real = mad.real_data(kind="digits", pool=60, held_out=10, components=4, seed=0)
    assert "same finite pool of 60 digits" in real.attrs["note"]
    g1 = _fresh_only(real, np.arange(2), 60)  # fresh data of the size of the pool: all of it, in some order
    for c in range(2):
        np.testing.assert_allclose(_mean(g1, c), real["pool"].values.mean(0), rtol=1e-12, atol=1e-15)
