"""One generation of one chain of a self-consuming ("MAD") loop, for any model family of
:mod:`tasks.generative.families`.

Generation 0 fits the chain's real set (n points). Generation t >= 1 draws synthetic points from generation
t−1's model with bias λ and refits on the loop's training set: ``fully_synthetic`` (n synthetic),
``synthetic_augmentation`` (the fixed real set + ``n_synth`` synthetic), ``fresh_data`` (``n_fresh`` new
real points + ``n_synth`` synthetic). Randomness of (chain c, generation t, loop) comes from
``SeedSequence([seed, c, t, loop index])``: a chain never depends on which other chains run with it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from strata_errors import InputError
from tasks.nn.checkpoint import Trained

from .common import LOOPS
from .families import fit_model
from .metrics import as_points

__all__ = ["Generation", "training_set", "chain_generation"]

# draw_fresh(rng, m) -> (m, features) new real points
FreshSource = Callable[[np.random.Generator, int], np.ndarray]


@dataclass(frozen=True)
class Generation:
    """A fitted generation: its model and the points it was fitted on."""

    trained: Trained
    training: np.ndarray


def _sizes(loop: str, n: int, n_synth: int, n_fresh: int) -> tuple[int, int]:
    """(synthetic, fresh) points of a generation t >= 1."""
    if loop not in LOOPS:
        raise InputError(f"loop {loop!r} is not one of {', '.join(LOOPS)}")
    m_synth = n if loop == "fully_synthetic" else n_synth
    m_fresh = n_fresh if loop == "fresh_data" else 0
    return m_synth, m_fresh


def training_set(loop: str, real: np.ndarray, synth: np.ndarray, fresh: np.ndarray) -> np.ndarray:
    """The points generation t >= 1 is fitted on, per loop type."""
    parts = {"fully_synthetic": [synth], "synthetic_augmentation": [real, synth], "fresh_data": [fresh, synth]}
    return np.concatenate(parts[loop], axis=0)


def chain_generation(family: str, options: Mapping[str, Any], *, real: np.ndarray, prev: Trained | None,
                     generation: int, loop: str, lam: float, n_synth: int, n_fresh: int, seed: int, chain: int,
                     draw_fresh: FreshSource | None = None) -> Generation:
    """Generation ``generation`` of chain ``chain``: fit ``family`` (with ``options``) to the real set
    (generation 0) or to the loop's mix of the fresh and the synthetic points drawn from ``prev``."""
    real = as_points(real, "the real set", min_rows=2)
    m_synth, m_fresh = _sizes(loop, len(real), n_synth, n_fresh)
    stream = np.random.SeedSequence([int(seed), int(chain), int(generation), LOOPS.index(loop)])
    fresh_seq, synth_seq, fit_seq = stream.spawn(3)
    fit_seed = int(fit_seq.generate_state(1)[0] % 2**31)
    if generation == 0:
        if prev is not None:
            raise InputError("generation 0 fits the real set: it takes no previous model")
        return Generation(fit_model(family, real, seed=fit_seed, **options), real)
    if prev is None:
        raise InputError(f"generation {generation} needs generation {generation - 1}'s model")
    if m_fresh and draw_fresh is None:
        raise InputError("the fresh_data loop needs a source of fresh real points")
    if m_synth + m_fresh + (len(real) if loop == "synthetic_augmentation" else 0) < 2:
        raise InputError(f"the {loop} loop fits on fewer than 2 points: raise n_synth or n_fresh")
    gen = torch.Generator().manual_seed(int(synth_seq.generate_state(1, np.uint64)[0] % 2**63))
    synth = prev.module.sample(m_synth, lam, gen).numpy() if m_synth else np.empty((0, real.shape[1]))
    fresh = (as_points(draw_fresh(np.random.default_rng(fresh_seq), m_fresh), "fresh points", min_rows=2) if m_fresh
             else np.empty((0, real.shape[1])))
    x = training_set(loop, real, synth, fresh)
    return Generation(fit_model(family, x, seed=fit_seed, **options), x)
