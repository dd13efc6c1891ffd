"""The ``mad`` study's datasets: the real data with its fixed feature map, per generation the models of many
chains (a checkpoint) and their samples and metrics, and the curves over generations.

Real data: ``ring`` (a mixture of ``modes`` Gaussians on a circle, 2D) or ``digits`` (scikit-learn's 8×8
digits scaled to [0, 1], shipped with the package). A pool of real points and a held-out set (the metrics'
reference) are fixed by the seed, and so is the feature space: a PCA of the pool (whitened), fitted once.
On the ring (a distribution we can sample) each chain's real set and its fresh data are new draws from the
true distribution, each from its own stream, so chains are independent and their standard errors cover what
they claim; on digits (finite data) both come from the pool, which every chain shares.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
import xarray as xr

from strata_errors import InputError
from tasks.nn.checkpoint import Trained, from_dataset, stack

from .loop import chain_generation
from .metrics import PCAFeatures, frechet_distance, precision_recall

__all__ = ["real_data", "fit_chains", "generation", "curves", "ring", "chain_model"]

METRICS = ("precision", "recall", "fid")


def ring(rng: np.random.Generator, m: int, *, modes: int = 6, radius: float = 4.0, std: float = 0.4) -> np.ndarray:
    """``m`` points of an equal-weight mixture of ``modes`` isotropic Gaussians on a circle."""
    angle = 2 * np.pi * rng.integers(0, modes, m) / modes
    return np.column_stack([radius * np.cos(angle), radius * np.sin(angle)]) + std * rng.normal(size=(m, 2))


def real_data(*, kind: str, pool: int, held_out: int, components: int, seed: int,
              ring_options: Mapping[str, Any] | None = None) -> xr.Dataset:
    """``pool`` (point, feature) and ``held_out`` (held, feature) real points, and the PCA feature map
    (``feature_mean``, ``feature_axes``, ``feature_scale``) of the pool."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0]))
    if kind == "ring":
        x = ring(rng, pool + held_out, **dict(ring_options or {}))
    elif kind == "digits":
        from sklearn.datasets import load_digits

        x = load_digits().data.astype(np.float64) / 16.0
        if pool + held_out > len(x):
            raise InputError(f"digits: pool + held_out = {pool + held_out} exceeds the {len(x)} images")
        x = x[rng.permutation(len(x))[:pool + held_out]]
    else:
        raise InputError(f"real data kind {kind!r} is not ring or digits")
    feats = PCAFeatures.fit(x[:pool], min(components, x.shape[1]))
    source = ("each chain's real set and its fresh data are new draws from the true ring distribution"
              if kind == "ring" else
              f"each chain's real set and its fresh data come from the same finite pool of {pool} digits, "
              f"which every chain shares (fresh data is fresh to the chain, not to the study)")
    return xr.Dataset(
        {"pool": (("point", "feature"), x[:pool]), "held_out": (("held", "feature"), x[pool:]),
         "feature_mean": ("feature", feats.mean), "feature_axes": (("component", "feature"), feats.axes),
         "feature_scale": ("component", feats.scale)},
        attrs={"kind": kind, "seed": seed, "ring": dict(ring_options or {}) if kind == "ring" else {},
               "note": source})


def _features(real: xr.Dataset) -> PCAFeatures:
    return PCAFeatures(real["feature_mean"].values, real["feature_axes"].values, real["feature_scale"].values)


def chain_model(models: xr.Dataset, chain: int) -> Trained:
    """The fitted model of one chain of a ``mad_models`` checkpoint (:func:`fit_chains`)."""
    return from_dataset(models, member=int(chain))


def fit_chains(real: xr.Dataset, prev: xr.Dataset | None = None, *, chains: np.ndarray, family: str,
               options: Mapping[str, Any], loop: str, lam: float, generation: int, n: int, n_synth: int,
               n_fresh: int, seed: int) -> xr.Dataset:
    """Generation ``generation`` of the models of ``chains`` (kind ``checkpoint``): one step of the generic
    loop per chain (:func:`tasks.generative.loop.chain_generation`), generation t−1's models (``prev``)
    sampled with bias ``lam``: one checkpoint stacking the chains' models over ``chain``
    (:func:`tasks.nn.checkpoint.stack`)."""
    chains = np.atleast_1d(np.asarray(chains, dtype=np.int64))
    pool = real["pool"].values
    truth = real.attrs.get("kind") == "ring"
    if n > len(pool) and not truth:
        raise InputError(f"the real set of a chain ({n}) exceeds the pool ({len(pool)})")

    def fresh(rng: np.random.Generator, m: int) -> np.ndarray:
        """New real points: from the true distribution where we can sample it, else from the shared pool."""
        if truth:
            return ring(rng, m, **real.attrs.get("ring", {}))
        return pool[rng.choice(len(pool), m, replace=False)]

    models = []
    for c in chains:
        own = fresh(np.random.default_rng(np.random.SeedSequence([seed, int(c), 10**6])), n)
        before = None if prev is None else chain_model(prev, int(c))
        g = chain_generation(family, options, real=own, prev=before, generation=generation, loop=loop, lam=lam,
                             n_synth=n_synth, n_fresh=n_fresh, seed=seed, chain=int(c), draw_fresh=fresh)
        models.append(g.trained)
    out = stack(models, "chain", chains)
    out["chain"].attrs["long_name"] = "chain"
    return out.assign_attrs(family=family, loop=loop, lam=float(lam), generation=int(generation))


def generation(real: xr.Dataset, models: xr.Dataset, *, chains: np.ndarray, n_eval: int, k: int,
               seed: int) -> xr.Dataset:
    """One generation of ``chains`` scored (kind ``mad_generation``): ``n_eval`` samples of each chain's model
    (``models``, from :func:`fit_chains`) drawn with the loop's bias λ, and their ``precision``, ``recall``
    (k-NN, in the feature space) and ``fid`` (Fréchet distance in the feature space) against the held-out
    real points. The loop, λ and the generation come from the models' attrs."""
    chains = np.atleast_1d(np.asarray(chains, dtype=np.int64))
    feats = _features(real)
    held = feats(real["held_out"].values)
    t, lam = int(models.attrs["generation"]), float(models.attrs["lam"])
    samples, scores = [], []
    for c in chains:
        gen = torch.Generator().manual_seed(int(np.random.SeedSequence([seed, int(c), t, 7])
                                                .generate_state(1, np.uint64)[0] % 2**63))
        fake = chain_model(models, int(c)).module.sample(n_eval, lam, gen).numpy()
        f = feats(fake)
        scores.append((*precision_recall(held, f, k=k), frechet_distance(held, f)))
        samples.append(fake)
    points = (("chain", "sample", "feature"), np.stack(samples), {"long_name": "generated points"})
    out = xr.Dataset({"samples": points}, coords={"chain": ("chain", chains, {"long_name": "chain"})})
    scores = np.asarray(scores)
    for i, name in enumerate(METRICS):
        out[name] = ("chain", scores[:, i], {"units": "1"})
    out.attrs.update({k: models.attrs[k] for k in ("family", "loop", "lam", "generation")})
    return out


def curves(*generations: xr.Dataset, loops: Sequence[str], biases: Sequence[float]) -> xr.Dataset:
    """``precision``, ``recall``, ``fid`` with dims (loop, bias, chain, generation) (kind ``mad_curves``)."""
    g_max = max(int(g.attrs["generation"]) for g in generations)
    chains = generations[0]["chain"].values
    shape = (len(loops), len(biases), len(chains), g_max + 1)
    data = {m: np.full(shape, np.nan) for m in METRICS}
    for g in generations:
        i, j = list(loops).index(g.attrs["loop"]), [float(b) for b in biases].index(float(g.attrs["lam"]))
        for m in METRICS:
            data[m][i, j, :, int(g.attrs["generation"])] = g[m].values
    dims = ("loop", "bias", "chain", "generation")
    return xr.Dataset({m: (dims, v, {"units": "1"}) for m, v in data.items()},
                      coords={"loop": list(loops), "bias": [float(b) for b in biases], "chain": chains,
                              "generation": np.arange(g_max + 1)})
