"""Self-consuming ("MAD") loops of a Gaussian, after "Self-Consuming Generative Models Go MAD".

Generation 0 fits N(mu, Sigma) to n real samples of N(mu0, Sigma0). Generation t >= 1 draws
synthetic samples from N(mu_t-1, lam * Sigma_t-1), mixes them per loop type and refits:
``fully_synthetic`` (n synthetic), ``synthetic_augmentation`` (the fixed real set of generation
0 + n_synth synthetic), ``fresh_data`` (n_fresh new real + n_synth synthetic). Many independent
chains run at once.

Each generation of each chain is one step of the loop every model family shares
(:func:`tasks.generative.loop.chain_generation`, the ``gaussian`` family): its seeding makes a chain's
bytes independent of which other chains share the call. The real sets are drawn here, chain c from
``default_rng(SeedSequence([seed, c, 0]))``. The exact moment recursions of the loop
(:func:`expected_variance`, :func:`expected_mean_error`) are the known answers it is tested against.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import xarray as xr

from strata_errors import InputError

from .common import LOOPS, sqrtm_psd, wasserstein2_gaussian

__all__ = ["LOOPS", "ESTIMATORS", "truth", "draw_real", "fit_generation",
           "wasserstein2_gaussian", "summarize", "curves", "expected_variance",
           "expected_mean_error"]

ESTIMATORS = {"unbiased": 1, "mle": 0}  # estimator -> ddof
_U = {"units": "1"}  # the samples are dimensionless; moments are in their units
_GEN = {**_U, "long_name": "generation"}


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise InputError(message)


def _one_of(name: str, value: object, options: Sequence[str]) -> None:
    _check(value in options, f"{name} {value!r} is not one of {', '.join(options)}")


def _ints(low: int, **values: int) -> None:
    for name, v in values.items():
        ok = isinstance(v, int | np.integer) and not isinstance(v, bool) and v >= low
        _check(ok, f"{name} must be an integer >= {low}, got {v!r}")


def _check_lam(lam: float) -> None:
    _check(bool(np.isfinite(lam)) and lam > 0, f"lam must be a finite number > 0, got {lam!r}")


def truth(dim: int, *, mu0: float = 0.0, sigma0: float = 1.0,
          rho: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """The true Gaussian N(mu0 * 1, sigma0^2 ((1 - rho) I + rho 1 1^T)).

    Parameters
    ----------
    dim : int
        Dimension d >= 1.
    mu0, sigma0, rho : float
        Mean and standard deviation (> 0) of every component; correlation of every pair,
        ``-1/(d-1) < rho < 1`` (ignored for d = 1).

    Returns
    -------
    mu : ndarray, shape (d,)
    cov : ndarray, shape (d, d)
    """
    _ints(1, dim=dim)
    _check(bool(np.isfinite(mu0)), f"mu0 must be finite, got {mu0!r}")
    _check(bool(np.isfinite(sigma0)) and sigma0 > 0, f"sigma0 must be > 0, got {sigma0!r}")
    if dim > 1:
        low = -1.0 / (dim - 1)
        _check(low < rho < 1, f"rho must lie in ({low:g}, 1) for dim={dim}, got {rho!r}")
    rho = rho if dim > 1 else 0.0
    return np.full(dim, float(mu0)), sigma0**2 * ((1 - rho) * np.eye(dim) + rho)


def _affine(mean: np.ndarray, root: np.ndarray, z: np.ndarray) -> np.ndarray:
    """``mean + root @ z_i`` for z (C, m, d), mean (C|1, d), root (C|1, d, d), elementwise."""
    x = np.broadcast_to(mean[:, None, :], z.shape).copy()
    for k in range(z.shape[-1]):
        x += z[:, :, k : k + 1] * root[:, None, :, k]
    return x


def _normals(chains: np.ndarray, seed: int, stream: int, m: int, d: int) -> np.ndarray:
    z = np.empty((len(chains), m, d))
    for i, c in enumerate(chains):
        rng = np.random.default_rng(np.random.SeedSequence([seed, int(c), stream]))
        z[i] = rng.standard_normal((m, d))
    return z


def _chain_ids(chains: np.ndarray) -> np.ndarray:
    c = np.asarray(chains)
    ok = c.ndim == 1 and c.size > 0 and np.issubdtype(c.dtype, np.integer) and (c >= 0).all()
    _check(bool(ok), "chains must be a non-empty 1-D array of integers >= 0")
    _check(np.unique(c).size == c.size, "chains must not repeat")
    return c.astype(np.int64)


def _coords(chains: np.ndarray, d: int) -> dict:
    return {"chain": ("chain", chains, {**_U, "long_name": "chain index"}),
            "dim": ("dim", np.arange(d), {**_U, "long_name": "component"}),
            "dim_": ("dim_", np.arange(d), {**_U, "long_name": "component"})}


def draw_real(chains: np.ndarray, *, n: int, dim: int, mu0: float, sigma0: float, rho: float,
              seed: int) -> xr.Dataset:
    """Draw the real set: n samples of N(mu0, Sigma0) per chain, stream 0.

    Returns
    -------
    xr.Dataset
        ``x`` (chain, sample, dim) float64; coords ``chain`` (the given ids), ``sample``, ``dim``.
    """
    chains = _chain_ids(chains)
    _ints(2, n=n)
    _ints(0, seed=seed)
    mu, cov = truth(dim, mu0=mu0, sigma0=sigma0, rho=rho)
    x = _affine(mu[None], sqrtm_psd(cov)[None], _normals(chains, seed, 0, n, dim))
    coords = _coords(chains, dim)
    del coords["dim_"]
    coords["sample"] = ("sample", np.arange(n), {**_U, "long_name": "sample index"})
    attrs = {"n": n, "mu0": float(mu0), "sigma0": float(sigma0), "rho": float(rho), "seed": seed}
    return xr.Dataset({"x": (("chain", "sample", "dim"), x, {**_U, "long_name": "real sample"})},
                      coords=coords, attrs=attrs)


def fit_generation(real: xr.Dataset, prev: xr.Dataset | None = None, *, generation: int, loop: str,
                   lam: float, n_synth: int, n_fresh: int, estimator: str, mu0: float,
                   sigma0: float, rho: float, seed: int) -> xr.Dataset:
    """Fit generation ``generation`` of every chain of ``real``: the generic loop
    (:func:`tasks.generative.loop.chain_generation`) with the ``gaussian`` model family, chain by chain.

    Generation 0 (``prev`` None) fits ``real.x`` and so does not depend on loop, lam, n_synth or
    n_fresh. Generation t >= 1 samples N(prev.mean, lam * prev.cov), mixes per ``loop``
    (``fully_synthetic`` draws n = real.sizes["sample"] and ignores n_synth, n_fresh; fresh real
    samples are drawn from N(mu0, Sigma0)) and refits with ``estimator`` ("unbiased": ddof 1, "mle": ddof 0).

    Returns
    -------
    xr.Dataset
        ``mean`` (chain, dim), ``cov`` (chain, dim, dim_), ``w2`` (chain): Wasserstein-2 distance
        (not squared) to N(mu0, Sigma0); scalar coord ``generation``; parameters in attrs.
    """
    from .families import gaussian_trained
    from .loop import chain_generation

    _one_of("loop", loop, LOOPS)
    _one_of("estimator", estimator, tuple(ESTIMATORS))
    _check_lam(lam)
    _ints(0, generation=generation, n_synth=n_synth, n_fresh=n_fresh, seed=seed)
    ok = "x" in real and real["x"].dims == ("chain", "sample", "dim")
    _check(ok, "real must hold x with dims (chain, sample, dim)")
    chains, x_real = _chain_ids(real["chain"].values), real["x"].values.astype(np.float64)
    _, n, d = x_real.shape
    mu_true, cov_true = truth(d, mu0=mu0, sigma0=sigma0, rho=rho)
    root_true = sqrtm_psd(cov_true)
    m_synth = n if loop == "fully_synthetic" else n_synth
    m_fresh = n_fresh if loop == "fresh_data" else 0
    n_fit = m_synth + m_fresh + (n if loop == "synthetic_augmentation" else 0)
    n_fit = n if generation == 0 else n_fit
    _check(n_fit >= 2, f"the {loop} fit of generation {generation} needs at least 2 samples per "
           f"chain, got {n_fit} (n, or n_fresh + n_synth)")
    if generation == 0:
        _check(prev is None, "prev must be None for generation 0")
    else:
        _check(prev is not None, f"prev (generation {generation - 1}) is required for generation "
               f"{generation}")
        _check(np.array_equal(prev["chain"].values, chains), "prev and real chains differ")
        _check(prev["cov"].shape == (len(chains), d, d), "prev cov must be (chain, dim, dim_)")
        g = int(prev["generation"]) if "generation" in prev.coords else generation - 1
        _check(g == generation - 1, f"prev is generation {g}, expected {generation - 1}")

    def fresh(rng: np.random.Generator, m: int) -> np.ndarray:
        return mu_true + rng.standard_normal((m, d)) @ root_true

    options = {"ddof": ESTIMATORS[estimator]}
    mean, cov = np.empty((len(chains), d)), np.empty((len(chains), d, d))
    prev_mean, prev_cov = (None, None) if prev is None else (prev["mean"].values, prev["cov"].values)
    for i, c in enumerate(chains):
        before = None if prev is None else gaussian_trained(prev_mean[i], prev_cov[i])
        fitted = chain_generation("gaussian", options, real=x_real[i], prev=before, generation=generation,
                                  loop=loop, lam=lam, n_synth=n_synth, n_fresh=n_fresh, seed=seed, chain=int(c),
                                  draw_fresh=fresh).trained.module
        mean[i], cov[i] = fitted.mean.numpy(), fitted.cov.numpy()
    w2 = wasserstein2_gaussian(mean, cov, mu_true, cov_true)
    coords = _coords(chains, d) | {"generation": ((), generation, _GEN)}
    w2_name = "Wasserstein-2 distance to N(mu0, Sigma0), not squared"
    return xr.Dataset(
        {"mean": (("chain", "dim"), mean, {**_U, "long_name": "fitted mean"}),
         "cov": (("chain", "dim", "dim_"), cov, {**_U, "long_name": "fitted covariance"}),
         "w2": ("chain", w2, {**_U, "long_name": w2_name})},
        coords=coords,
        attrs={"loop": loop, "lam": float(lam), "estimator": estimator, "n": n, "n_synth": n_synth,
               "n_fresh": n_fresh, "mu0": float(mu0), "sigma0": float(sigma0), "rho": float(rho),
               "seed": seed})


def _moments(loop: str, generations: int, *, n: int, n_synth: int, n_fresh: int, lam: float,
             estimator: str, sigma0: float) -> tuple[np.ndarray, np.ndarray]:
    """Exact E[sigma_t^2] and E[(mu_t - mu0)^2] per marginal, t = 0..G (see expected_variance)."""
    _one_of("loop", loop, LOOPS)
    _one_of("estimator", estimator, tuple(ESTIMATORS))
    _check_lam(lam)
    _ints(0, generations=generations, n_synth=n_synth, n_fresh=n_fresh)
    _ints(2, n=n)
    ddof, s2 = ESTIMATORS[estimator], float(sigma0) ** 2
    v, dd = np.empty(generations + 1), np.empty(generations + 1)
    v[0], dd[0] = s2 * (n - 1) / (n - ddof), s2 / n
    if loop == "synthetic_augmentation":
        ns, big, a = n_synth, n + n_synth, 0.0  # a = A_t = E(xbar_real - mu_t)^2
        for t in range(1, generations + 1):
            v[t] = ((n - 1) * s2 + lam * v[t - 1] * ns * (big - 1) / big + n * ns * a / big)
            v[t] /= big - ddof
            a = (ns**2 * a + ns * lam * v[t - 1]) / big**2
            dd[t] = s2 / n + a
        return v, dd
    nr, ns = (0, n) if loop == "fully_synthetic" else (n_fresh, n_synth)
    big = nr + ns
    _check(generations == 0 or big >= 2, f"the {loop} fit needs n_fresh + n_synth >= 2, got {big}")
    for t in range(1, generations + 1):
        s = nr * s2 + ns * lam * v[t - 1]
        v[t] = (s * (big - 1) / big + nr * ns * dd[t - 1] / big) / (big - ddof)
        dd[t] = (s + ns**2 * dd[t - 1]) / big**2
    return v, dd


def expected_variance(loop: str, generations: int, *, n: int, n_synth: int, n_fresh: int,
                      lam: float, estimator: str, sigma0: float) -> np.ndarray:
    """Exact E[sigma_t^2] of one marginal for t = 0..G (length G + 1); n is the real-set size.

    Conditioning on generation t-1, E[sum (x_i - xbar)^2] = (N-1)/N sum Var x_i +
    sum (E x_i - mean E x)^2 gives linear recursions in v_t = E sigma_t^2 = E SS_t / (N - ddof)
    and the mean error, exact for both estimators:

    * fully_synthetic: v_t = lam (n-1)/(n-ddof) v_t-1, i.e. lam^t sigma0^2 (unbiased),
      ((n-1)/n)^(t+1) lam^t sigma0^2 (mle);
    * fresh_data (n_r = n_fresh, n_s = n_synth, N = n_r + n_s, D_t = E(mu_t - mu0)^2,
      D_0 = sigma0^2/n, S = n_r sigma0^2 + n_s lam v_t-1):
      v_t = ((N-1)/N S + n_r n_s D_t-1 / N) / (N - ddof), D_t = (S + n_s^2 D_t-1) / N^2
      (for ddof 1 the recursion of the MAD paper);
    * synthetic_augmentation, derived here (real set of size n fixed, N = n + n_s,
      A_t = E(xbar_real - mu_t)^2, A_0 = 0): v_t = ((n-1) sigma0^2 + lam v_t-1 n_s (N-1)/N
      + n n_s A_t-1 / N) / (N - ddof), A_t = (n_s^2 A_t-1 + n_s lam v_t-1) / N^2, and
      D_t = sigma0^2/n + A_t (xbar_real - mu0 is uncorrelated with xbar_real - mu_t).
    """
    return _moments(loop, generations, n=n, n_synth=n_synth, n_fresh=n_fresh, lam=lam,
                    estimator=estimator, sigma0=sigma0)[0]


def expected_mean_error(loop: str, generations: int, *, n: int, n_synth: int, n_fresh: int,
                        lam: float, estimator: str, sigma0: float) -> np.ndarray:
    """Exact E(mu_t - mu0)^2 of one marginal for t = 0..G (the D_t of :func:`expected_variance`)."""
    return _moments(loop, generations, n=n, n_synth=n_synth, n_fresh=n_fresh, lam=lam,
                    estimator=estimator, sigma0=sigma0)[1]


_CURVES = {"w2_mean": "mean Wasserstein-2 distance to the truth",
           "w2_se": "standard error of w2_mean",
           "var_mean": "mean fitted variance trace(cov)/d", "var_se": "standard error of var_mean",
           "var_median": "median fitted variance trace(cov)/d", "mean_err": "mean |mu - mu0|^2",
           "mean_err_se": "standard error of mean_err", "var_theory": "exact E[trace(cov)/d]",
           "mean_err_theory": "exact E|mu - mu0|^2"}


def summarize(generations: Sequence[xr.Dataset], loop_names: Sequence[str]) -> xr.Dataset:
    """Curves over chains, dims (loop, generation), from per-generation fits.

    ``generations`` holds, loop after loop, each loop's datasets for generations 0..G in order.
    The theory curves ``var_theory`` and ``mean_err_theory`` use the parameters in the last
    generation's attrs; they are NaN for an unknown loop or missing attrs.
    """
    n_loops, total = len(loop_names), len(generations)
    _check(n_loops > 0 and total > 0 and total % n_loops == 0,
           f"got {total} generation datasets for {n_loops} loops: need loops x (G + 1)")
    g1, d = total // n_loops, generations[0].sizes["dim"]
    out = {k: np.full((n_loops, g1), np.nan) for k in _CURVES}
    for i, name in enumerate(loop_names):
        for t, ds in enumerate(generations[i * g1 : (i + 1) * g1]):
            g = int(ds["generation"])
            _check(g == t, f"loop {name!r}: dataset {t} of the loop is generation {g}")
            fit_loop = ds.attrs.get("loop", name)
            _check(t == 0 or fit_loop == name, f"loop {name!r}: generation {t} is of {fit_loop!r}")
            per_chain = {"w2": ds["w2"].values,
                         "var": np.trace(ds["cov"].values, axis1=1, axis2=2) / d,
                         "mean_err": ((ds["mean"].values - ds.attrs.get("mu0", 0.0)) ** 2).sum(-1)}
            for key, a in per_chain.items():
                out[key if key == "mean_err" else f"{key}_mean"][i, t] = a.mean()
                out[f"{key}_se"][i, t] = a.std(ddof=1) / np.sqrt(a.size) if a.size > 1 else np.nan
            out["var_median"][i, t] = np.median(per_chain["var"])
        attrs = generations[(i + 1) * g1 - 1].attrs
        keys = ("n", "n_synth", "n_fresh", "lam", "estimator", "sigma0")
        if name in LOOPS and all(k in attrs for k in keys):
            v, dd = _moments(name, g1 - 1, **{k: attrs[k] for k in keys})
            out["var_theory"][i], out["mean_err_theory"][i] = v, d * dd
    return xr.Dataset(
        {k: (("loop", "generation"), a, {**_U, "long_name": _CURVES[k]}) for k, a in out.items()},
        coords={"loop": ("loop", np.array(list(loop_names), dtype=object),
                         {**_U, "long_name": "loop type"}),
                "generation": ("generation", np.arange(g1), _GEN)},
        attrs={"chains": int(generations[0].sizes["chain"]), "dim": int(d)})


def curves(*generations: xr.Dataset, loop_names: Sequence[str]) -> xr.Dataset:
    """:func:`summarize` taking the generation datasets as positional arguments (a step's inputs)."""
    return summarize(generations, loop_names)
