"""The qualitative claims of "Self-Consuming Generative Models Go MAD", reproduced with the generic loop on a
six-mode ring in 2D (Gaussian-mixture family), as inequalities on chain means with standard errors of the
per-chain change between generation 0 and the last generation G (measured values in comments)."""

from __future__ import annotations

import numpy as np
import torch

from tasks.generative.loop import chain_generation
from tasks.generative.mad import ring
from tasks.generative.metrics import frechet_distance, precision_recall

CHAINS, G, N = 10, 5, 200
FAMILY = ("mixture", {"components": 6})


def _chain(loop: str, lam: float, c: int, n_fresh: int) -> np.ndarray:
    """(generation, [precision, recall, Fréchet distance]) of chain c against 400 held-out real points."""
    real, held = ring(np.random.default_rng([1, c]), N), ring(np.random.default_rng([2, c]), 400)
    prev, out = None, []
    for t in range(G + 1):
        prev = chain_generation(*FAMILY, real=real, prev=prev, generation=t, loop=loop, lam=lam, n_synth=N,
                                n_fresh=n_fresh, seed=0, chain=c, draw_fresh=ring).trained
        fake = prev.module.sample(400, lam, torch.Generator().manual_seed(c)).numpy()
        out.append((*precision_recall(held, fake), frechet_distance(held, fake)))
    return np.array(out)


def _change(loop: str, lam: float, n_fresh: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Chain means at generation 0, at G, and the standard error of the per-chain change (per metric)."""
    m = np.array([_chain(loop, lam, c, n_fresh) for c in range(CHAINS)])
    diff = m[:, -1] - m[:, 0]
    return m[:, 0].mean(0), m[:, -1].mean(0), diff.std(0, ddof=1) / np.sqrt(CHAINS)


def test_fully_synthetic_unbiased_loop_goes_mad():
    first, last, se = _change("fully_synthetic", 1.0)
    assert last[2] - first[2] > 2 * se[2], (first, last, se)  # 0.14 -> 0.79, SE 0.16


def test_biased_sampling_keeps_precision_and_loses_recall():
    first, last, se = _change("fully_synthetic", 0.5)
    assert last[0] - first[0] > -2 * se[0], (first, last, se)  # precision 0.983 -> 0.992
    assert first[1] - last[1] > 2 * se[1], (first, last, se)  # recall 0.83 -> 0.06


def test_half_fresh_data_stays_sane():
    first, last, se = _change("fresh_data", 1.0, n_fresh=N)  # N fresh + N synthetic per generation
    assert last[2] <= first[2] * 1.1 + 2 * se[2], (first, last, se)  # 0.15 -> 0.20
