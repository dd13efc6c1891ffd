"""Known answers of the self-consuming Gaussian loop (tasks/generative/gaussian.py)."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from scipy.linalg import sqrtm
from scipy.special import digamma

from strata_errors import InputError
from tasks.generative.gaussian import (
    LOOPS,
    draw_real,
    expected_variance,
    fit_generation,
    summarize,
    truth,
    wasserstein2_gaussian,
)

TRUTH = {"mu0": 0.0, "sigma0": 1.0, "rho": 0.5}


def run_loop(loop: str, *, chains, n: int, generations: int, dim: int = 1, lam: float = 1.0,
             n_synth: int = 0, n_fresh: int = 0, estimator: str = "unbiased", seed: int = 0,
             **truth_kw) -> list[xr.Dataset]:
    """Generations 0..G of one loop for the given chains (an int means range(chains))."""
    kw = TRUTH | truth_kw
    chains = np.arange(chains) if isinstance(chains, int) else np.asarray(chains)
    real = draw_real(chains, n=n, dim=dim, seed=seed, **kw)
    out: list[xr.Dataset] = []
    prev = None
    for t in range(generations + 1):
        prev = fit_generation(real, prev, generation=t, loop=loop, lam=lam, n_synth=n_synth,
                              n_fresh=n_fresh, estimator=estimator, seed=seed, **kw)
        out.append(prev)
    return out


def mean_se(a: np.ndarray, axis: int = 0) -> tuple[np.ndarray, np.ndarray]:
    return a.mean(axis), a.std(axis, ddof=1) / np.sqrt(a.shape[axis])


def assert_within(sim: np.ndarray, se: np.ndarray, expected: np.ndarray, k: float = 3.0) -> None:
    z = np.abs(np.asarray(sim) - expected) / np.asarray(se)
    assert np.all(z <= k), f"max |z| = {z.max():.2f}: sim {sim} vs expected {expected}"


def marginal_var(ds: xr.Dataset) -> np.ndarray:
    return np.trace(ds["cov"].values, axis1=1, axis2=2) / ds.sizes["dim"]


# ---------------------------------------------------------------- truth and datasets


def test_truth_matrices():
    mu, cov = truth(3, mu0=2.0, sigma0=2.0, rho=0.25)
    np.testing.assert_array_equal(mu, [2.0, 2.0, 2.0])
    np.testing.assert_allclose(cov, [[4, 1, 1], [1, 4, 1], [1, 1, 4]])
    mu, cov = truth(1, sigma0=3.0, rho=0.9)
    assert mu.shape == (1,) and cov.tolist() == [[9.0]]


def test_datasets_shape_dtype_and_cf_attrs():
    real = draw_real(np.array([4, 9, 2]), n=6, dim=2, seed=1, **TRUTH)
    assert real["x"].dims == ("chain", "sample", "dim") and real["x"].dtype == np.float64
    assert real["x"].shape == (3, 6, 2) and real["chain"].values.tolist() == [4, 9, 2]
    g0 = fit_generation(real, None, generation=0, loop="fresh_data", lam=1.0, n_synth=3,
                        n_fresh=2, estimator="unbiased", seed=1, **TRUTH)
    g1 = fit_generation(real, g0, generation=1, loop="fresh_data", lam=1.0, n_synth=3,
                        n_fresh=2, estimator="unbiased", seed=1, **TRUTH)
    assert g1["mean"].dims == ("chain", "dim") and g1["cov"].dims == ("chain", "dim", "dim_")
    assert g1["w2"].dims == ("chain",) and int(g1["generation"]) == 1
    assert g1["generation"].ndim == 0 and g1["chain"].values.tolist() == [4, 9, 2]
    np.testing.assert_array_equal(g1["cov"].values, np.swapaxes(g1["cov"].values, 1, 2))
    assert "not squared" in g1["w2"].attrs["long_name"]
    for ds in (real, g0, g1):
        for name in list(ds.data_vars) + list(ds.coords):
            assert {"units", "long_name"} <= set(ds[name].attrs), name


@pytest.mark.parametrize("dim", [1, 3])
@pytest.mark.parametrize("loop", LOOPS)
def test_chain_results_do_not_depend_on_batching(loop, dim):
    kw = {"loop": loop, "n": 4, "generations": 3, "dim": dim, "lam": 0.9, "n_synth": 5,
          "n_fresh": 2, "seed": 11}
    full = run_loop(chains=10, **kw)
    part = run_loop(chains=[3, 4], **kw)
    one = run_loop(chains=[7], **kw)
    for a, b, c in zip(full, part, one, strict=True):
        xr.testing.assert_identical(a.sel(chain=[3, 4]), b)
        xr.testing.assert_identical(a.sel(chain=[7]), c)
    # loops use distinct streams: their generation-1 fits differ
    other = run_loop(chains=[3, 4], **(kw | {"loop": LOOPS[(LOOPS.index(loop) + 1) % 3]}))
    xr.testing.assert_equal(other[0], part[0])  # generation 0 ignores the loop (not its attrs)
    assert not np.array_equal(other[1]["cov"].values, part[1]["cov"].values)


# ---------------------------------------------------------------- fully synthetic


@pytest.mark.parametrize("dim", [1, 2])
@pytest.mark.parametrize("lam", [1.0, 0.8])
def test_fully_synthetic_unbiased_covariance_mean_is_lam_t_sigma0(dim, lam):
    gens = run_loop("fully_synthetic", chains=3000, n=10, generations=5, dim=dim, lam=lam, seed=3)
    _, cov0 = truth(dim, **TRUTH)
    for t, ds in enumerate(gens):
        m, se = mean_se(ds["cov"].values)  # every matrix element
        assert_within(m, se, lam**t * cov0)
        m, se = mean_se(ds["mean"].values)
        assert_within(m, se, np.zeros(dim))


def test_mle_variance_shrinks_by_n_minus_1_over_n_per_fit():
    n, lam = 5, 0.9
    gens = run_loop("fully_synthetic", chains=4000, n=n, generations=5, lam=lam, estimator="mle",
                    seed=4)
    expected = ((n - 1) / n) ** (np.arange(6) + 1) * lam ** np.arange(6)
    sim = np.array([mean_se(marginal_var(ds)) for ds in gens])
    assert_within(sim[:, 0], sim[:, 1], expected)
    theory = expected_variance("fully_synthetic", 5, n=n, n_synth=0, n_fresh=0, lam=lam,
                               estimator="mle", sigma0=1.0)
    np.testing.assert_allclose(theory, expected, rtol=1e-12)


def test_log_variance_is_a_random_walk_and_the_median_decays():
    """E log s_t^2 = log s0^2 + (t+1) [psi((n-1)/2) + ln(2/(n-1))] + t ln lam.

    Generation 0 is itself a fit (one chi^2 factor), hence t + 1 factors, not t.
    """
    n, G = 5, 20
    step = digamma((n - 1) / 2) + np.log(2 / (n - 1))
    unbiased = None
    for lam, gens_n in ((1.0, G), (0.7, 4)):
        gens = run_loop("fully_synthetic", chains=2000, n=n, generations=gens_n, lam=lam, seed=5)
        unbiased = gens if lam == 1.0 else unbiased
        logs = np.log(np.array([marginal_var(ds) for ds in gens]))  # (t, chain)
        m, se = mean_se(logs, axis=1)
        t = np.arange(gens_n + 1)
        assert_within(m, se, (t + 1) * step + t * np.log(lam))
        assert abs(m[0] - 0.0) > 10 * se[0]  # t * step (0 at t = 0) is ruled out
    # lam = 1: the mean stays sigma0^2 but the median falls like exp(-(t+1)/(n-1))
    med = np.log(np.array([np.median(marginal_var(ds)) for ds in unbiased]))
    slope = (med[G] - med[0]) / G
    assert abs(slope - step) < 0.02
    assert abs(slope / (-1 / (n - 1)) - 1) < 0.15
    assert med[G] < -4.5  # median after 20 generations < 1.2% of sigma0^2 at lam = 1


# ---------------------------------------------------------------- fresh data, augmentation


def fresh_fixed_point(nr: int, ns: int, lam: float, s2: float = 1.0) -> float:
    """Solve v = (nr s2 + ns lam v)/N + nr ns D/(N(N-1)), D = (nr s2 + ns lam v + ns^2 D)/N^2."""
    big = nr + ns
    a = np.array([[1 - ns * lam / big, -nr * ns / (big * (big - 1))],
                  [-ns * lam / big**2, 1 - ns**2 / big**2]])
    return float(np.linalg.solve(a, [nr * s2 / big, nr * s2 / big**2])[0])


def test_fresh_data_settles_at_the_recursion_fixed_point_not_the_naive_one():
    nr, ns, lam, n, G = 5, 95, 1.0, 100, 120
    fp = fresh_fixed_point(nr, ns, lam)
    naive = nr / (nr + ns * (1 - lam))
    assert fp / naive == pytest.approx(1.1086, abs=5e-4)  # naive is 11% low (relative to itself)
    theory = expected_variance("fresh_data", G, n=n, n_synth=ns, n_fresh=nr, lam=lam,
                               estimator="unbiased", sigma0=1.0)
    long_run = expected_variance("fresh_data", 4000, n=n, n_synth=ns, n_fresh=nr, lam=lam,
                                 estimator="unbiased", sigma0=1.0)
    assert long_run[-1] == pytest.approx(fp, rel=1e-10)
    assert abs(theory[-1] / fp - 1) < 0.003
    gens = run_loop("fresh_data", chains=500, n=n, generations=G, lam=lam, n_synth=ns,
                    n_fresh=nr, seed=6)
    sim = np.array([mean_se(marginal_var(ds)) for ds in gens])
    assert_within(sim[:, 0], sim[:, 1], theory)
    assert (sim[-1, 0] - naive) / sim[-1, 1] > 4


@pytest.mark.parametrize(("loop", "lam", "estimator"), [
    ("synthetic_augmentation", 0.8, "unbiased"),
    ("synthetic_augmentation", 1.0, "mle"),
    ("fresh_data", 0.7, "mle"),
    ("fully_synthetic", 0.9, "unbiased"),
])
def test_summarize_theory_curves_match_simulation(loop, lam, estimator):
    G = 6
    gens = run_loop(loop, chains=2000, n=8, generations=G, dim=2, lam=lam, n_synth=12,
                    n_fresh=3, estimator=estimator, seed=7)
    s = summarize(gens, [loop]).sel(loop=loop)
    assert_within(s["var_mean"].values, s["var_se"].values, s["var_theory"].values)
    assert_within(s["mean_err"].values, s["mean_err_se"].values, s["mean_err_theory"].values)
    np.testing.assert_allclose(
        s["var_theory"].values,
        expected_variance(loop, G, n=8, n_synth=12, n_fresh=3, lam=lam, estimator=estimator,
                          sigma0=1.0))


def test_expected_variance_limits():
    kw = {"n": 10, "lam": 0.8, "estimator": "unbiased", "sigma0": 2.0}
    fully = expected_variance("fully_synthetic", 6, n_synth=99, n_fresh=99, **kw)
    np.testing.assert_allclose(fully, 4.0 * 0.8 ** np.arange(7))
    # no synthetic data: augmentation refits the real set, fresh data draws new real sets
    for loop in ("synthetic_augmentation", "fresh_data"):
        np.testing.assert_allclose(expected_variance(loop, 4, n_synth=0, n_fresh=7, **kw), 4.0)
    # fresh data with no fresh samples is fully synthetic with n_synth samples
    np.testing.assert_allclose(
        expected_variance("fresh_data", 5, n_synth=10, n_fresh=0, **kw), fully[:6])


# ---------------------------------------------------------------- Wasserstein-2


def test_w2_closed_forms_and_symmetry():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(5, 3, 3))
    cov = a @ np.swapaxes(a, 1, 2) + 0.1 * np.eye(3)
    mu = rng.normal(size=(5, 3))
    np.testing.assert_allclose(wasserstein2_gaussian(mu, cov, mu, cov), 0.0, atol=1e-6)
    # 1-D: sqrt((m1 - m2)^2 + (s1 - s2)^2)
    w = wasserstein2_gaussian(np.array([[1.0]]), np.array([[[4.0]]]), np.array([-2.0]),
                              np.array([[9.0]]))
    np.testing.assert_allclose(w, [np.sqrt(9.0 + 1.0)])
    # commuting (diagonal) covariances
    d1, d2 = np.array([1.0, 4.0, 0.25]), np.array([9.0, 1.0, 1.0])
    w = wasserstein2_gaussian(np.zeros(3), np.diag(d1), np.ones(3), np.diag(d2))
    assert w.shape == ()
    assert w == pytest.approx(np.sqrt(3 + ((np.sqrt(d1) - np.sqrt(d2)) ** 2).sum()))
    # symmetric, batched, and equal to the textbook formula with scipy's sqrtm
    ab = wasserstein2_gaussian(mu, cov, mu[::-1], cov[::-1])
    ba = wasserstein2_gaussian(mu[::-1], cov[::-1], mu, cov)
    np.testing.assert_allclose(ab, ba, rtol=1e-9)
    for i in range(5):
        r = sqrtm(cov[4 - i]).real
        cross = sqrtm(r @ cov[i] @ r).real
        ref = np.sum((mu[i] - mu[4 - i]) ** 2) + np.trace(cov[i] + cov[4 - i] - 2 * cross)
        assert ab[i] == pytest.approx(np.sqrt(max(ref, 0.0)), rel=1e-9, abs=1e-6)
    assert wasserstein2_gaussian(mu, cov, np.zeros(3), np.eye(3)).shape == (5,)


# ---------------------------------------------------------------- bad input


def _fit(**over):
    real = draw_real(np.arange(3), n=4, dim=2, seed=0, **TRUTH)
    g0 = fit_generation(real, None, generation=0, loop="fully_synthetic", lam=1.0, n_synth=2,
                        n_fresh=2, estimator="unbiased", seed=0, **TRUTH)
    kw = {"generation": 1, "loop": "fully_synthetic", "lam": 1.0, "n_synth": 2, "n_fresh": 2,
          "estimator": "unbiased", "seed": 0} | TRUTH | over
    prev = kw.pop("prev", g0)
    return fit_generation(kw.pop("real", real), prev, **kw)


@pytest.mark.parametrize(("call", "field"), [
    (lambda: _fit(loop="foo"), "loop 'foo' is not one of fully_synthetic, synthetic_augmentation, "
                               "fresh_data"),
    (lambda: _fit(estimator="ols"), "estimator"),
    (lambda: _fit(lam=0.0), "lam"),
    (lambda: _fit(lam=-1.0), "lam"),
    (lambda: _fit(lam=float("nan")), "lam"),
    (lambda: _fit(n_synth=-1), "n_synth"),
    (lambda: _fit(generation=-1), "generation"),
    (lambda: _fit(generation=2), "prev is generation 0"),
    (lambda: _fit(prev=None), "prev"),
    (lambda: _fit(generation=1, loop="fresh_data", n_synth=1, n_fresh=0), "at least 2 samples"),
    (lambda: _fit(sigma0=0.0), "sigma0"),
    (lambda: _fit(rho=1.0), "rho"),
    (lambda: _fit(seed=-3), "seed"),
    (lambda: draw_real(np.arange(2), n=1, dim=1, seed=0, **TRUTH), "n must"),
    (lambda: draw_real(np.array([1, 1]), n=3, dim=1, seed=0, **TRUTH), "chains"),
    (lambda: draw_real(np.array([-1]), n=3, dim=1, seed=0, **TRUTH), "chains"),
    (lambda: truth(0), "dim"),
    (lambda: truth(3, rho=-0.5), "rho"),
    (lambda: expected_variance("fresh", 3, n=5, n_synth=1, n_fresh=1, lam=1.0,
                               estimator="unbiased", sigma0=1.0), "loop 'fresh'"),
    (lambda: expected_variance("fully_synthetic", 3, n=1, n_synth=1, n_fresh=1, lam=1.0,
                               estimator="unbiased", sigma0=1.0), "n must"),
    (lambda: wasserstein2_gaussian(np.zeros(2), np.eye(3), np.zeros(2), np.eye(2)), "cov1"),
    (lambda: summarize([_fit(generation=0, prev=None)] * 3, ["a", "b"]), "2 loops"),
])
def test_bad_input_raises_input_error_naming_the_field(call, field):
    with pytest.raises(InputError, match=field.replace("(", r"\(")):
        call()


def test_summarize_structure_order_and_missing_attrs():
    loops = list(LOOPS)
    gens = [g for loop in loops for g in run_loop(loop, chains=20, n=5, generations=2,
                                                  n_synth=4, n_fresh=3, seed=8)]
    s = summarize(gens, loops)
    assert s["w2_mean"].dims == ("loop", "generation") and s.sizes == {"loop": 3, "generation": 3}
    assert s["loop"].values.tolist() == loops
    for name in list(s.data_vars) + list(s.coords):
        assert {"units", "long_name"} <= set(s[name].attrs), name
    # generation 0 is the same fit for every loop
    np.testing.assert_array_equal(s["var_mean"].values[:, 0], s["var_mean"].values[0, 0])
    assert np.isfinite(s["var_theory"].values).all()
    bare = [g.drop_attrs() for g in gens[:3]]
    assert np.isnan(summarize(bare, ["fully_synthetic"])["var_theory"].values).all()
    assert np.isnan(summarize(gens[:1], ["custom"])["var_theory"].values).all()
    with pytest.raises(InputError, match="generation"):
        summarize(gens[:3][::-1], ["fully_synthetic"])
    with pytest.raises(InputError, match="generation 1 is of 'synthetic_augmentation'"):
        summarize(gens[:6], ["fully_synthetic", "fresh_data"])


def test_plots_render():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from tasks.plots import plot_dataset

    gens = [g for loop in LOOPS for g in run_loop(loop, chains=30, n=6, generations=3,
                                                  n_synth=6, n_fresh=2, seed=9)]
    curves = summarize(gens, LOOPS)
    # its own kinds, and the kinds a root written before them holds them as (the mad study's)
    for ds, kind in ((curves, "mad_gaussian_curves"), (gens[-1], "mad_gaussian_generation"),
                     (curves, "mad_curves"), (gens[-1], "mad_generation")):
        fig = plot_dataset(ds, kind)
        assert isinstance(fig, matplotlib.figure.Figure) and len(fig.axes) >= 2
        plt.close(fig)
