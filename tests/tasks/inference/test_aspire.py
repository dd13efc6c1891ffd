"""The ASPIRE iteration's science as plain functions: metrics against known answers, posterior
estimates seeded per sample, and the isolated training step's process."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from strata_errors import InputError
from tasks.inference import aspire, stylized, stylized_data
from tasks.inference.aspire_metrics import iteration_metrics, metrics_table
from tasks.nn.checkpoint import to_dataset

D, M = 4, 6


@pytest.fixture(scope="module")
def problem():
    return stylized_data.problem_dataset(d=D, m=M, seed=3, noise_correlation=0.5)


def _posterior_dataset(draws: np.ndarray, truth: np.ndarray, nll: np.ndarray) -> xr.Dataset:
    return xr.Dataset({"draws": (("case", "draw", "component"), draws),
                       "mean": (("case", "component"), draws.mean(1)),
                       "std": (("case", "component"), draws.std(1, ddof=1)),
                       "truth": (("case", "component"), truth), "nll": ("case", nll)},
                      coords={"case": np.arange(len(truth)) + 100})


def _exact(problem, cases=30, n=4000, widen=1.0, seed=0):
    """Posterior datasets drawn from the analytic posterior (std scaled by ``widen``), and its reference."""
    pairs = stylized_data.draw_pairs(problem, samples=np.arange(cases) + 100, seed=seed)
    ref = stylized_data.reference_posterior(pairs, problem)
    mu, cov = ref["mean"].values, ref["cov"].values
    draws = stylized.sample_gaussian(mu, widen**2 * cov, n, np.random.default_rng(seed)).transpose(1, 0, 2)
    return _posterior_dataset(draws, pairs["x"].values.astype(float), np.zeros(cases)), ref


def test_the_metrics_of_exact_posterior_draws_are_the_known_answers(problem):
    post, ref = _exact(problem)
    row = iteration_metrics(post, ref, iteration=1)
    assert row.sizes["iteration"] == 1 and row.iteration.values.tolist() == [1]
    m = row.isel(iteration=0)
    assert float(m.mean_error) < 0.03  # Monte Carlo error of 4000 draws: ~1/sqrt(4000) per unit std
    assert float(m.cov_error) < 0.06 and float(m.kl) < 0.005
    # the truth is a draw from the same posterior: nominal coverage within 3 standard errors
    for level in (50, 90):
        c, se = float(m[f"coverage_{level}"]), float(m[f"coverage_{level}_se"])
        assert abs(c - level / 100) <= 3 * se + 0.02, (level, c, se)
    # too narrow a posterior (half the std) is caught by every calibration metric
    narrow = iteration_metrics(_exact(problem, widen=0.5)[0], ref, iteration=1).isel(iteration=0)
    assert float(narrow.coverage_90) < 0.7 and float(narrow.cov_error) > 0.7 and float(narrow.kl) > 0.5
    assert float(narrow.mean_error) < 0.03  # the mean is still right


def test_metrics_of_images_include_ssim_and_the_table_stacks_iterations():
    rng = np.random.default_rng(0)
    truth = rng.standard_normal((3, 16, 16))
    draws = truth[:, None] + 0.1 * rng.standard_normal((3, 50, 16, 16))
    post = xr.Dataset({"draws": (("case", "draw", "x", "z"), draws), "mean": (("case", "x", "z"), draws.mean(1)),
                       "std": (("case", "x", "z"), draws.std(1, ddof=1)), "truth": (("case", "x", "z"), truth),
                       "nll": ("case", np.zeros(3))})
    rows = [iteration_metrics(post, iteration=k) for k in (2, 1)]
    assert 0.95 < float(rows[0].ssim[0]) <= 1.0 and "kl" not in rows[0]
    table = metrics_table(*rows)
    assert table.iteration.values.tolist() == [1, 2] and table.sizes == {"iteration": 2, "case": 3, "change": 1}
    with pytest.raises(InputError, match="repeated"):
        metrics_table(rows[0], rows[0])


def _trained(problem, n=600):
    pairs = stylized_data.draw_pairs(problem, samples=np.arange(n), seed=1)
    x0 = stylized_data.prior_estimates(pairs, problem)
    s = stylized_data.summaries(x0, pairs, problem)
    trained = aspire.train_posterior(pairs, s, x0, var="x", iteration=1, seed=0, threads=1,
                                     cnf={"family": "maf", "transforms": 1, "hidden_features": [16]},
                                     training={"epochs": 2, "batch_size": 128, "patience": None})
    return pairs, x0, s, to_dataset(trained)


def test_posterior_estimates_of_a_sample_do_not_depend_on_the_other_samples(problem):
    pairs, x0, s, ckpt = _trained(problem)
    whole = aspire.posterior_estimates(s, x0, ckpt, var="x", draws=16, seed=5, iteration=1)
    part = aspire.posterior_estimates(s.isel(sample=slice(7, 9)), x0, ckpt, var="x", draws=16, seed=5, iteration=1)
    assert whole.x.dims == ("sample", "component") and whole.sizes["sample"] == 600
    np.testing.assert_array_equal(part.x.values, whole.x.sel(sample=[7, 8]).values)
    np.testing.assert_array_equal(part["std"].values, whole["std"].sel(sample=[7, 8]).values)
    other = aspire.posterior_estimates(s.isel(sample=slice(7, 9)), x0, ckpt, var="x", draws=16, seed=6, iteration=1)
    assert not np.array_equal(other.x.values, part.x.values)
    # held-out posterior: draws (case, draw, component), nll from the CNF's density
    post = aspire.posterior(ckpt, s.isel(sample=slice(0, 3)), x0, pairs, var="x", draws=40, seed=5, iteration=1)
    assert post.draws.dims == ("case", "draw", "component") and post.draws.shape == (3, 40, D)
    assert np.isfinite(post.nll.values).all()
    np.testing.assert_allclose(post["mean"].values, post.draws.values.mean(1), rtol=1e-5, atol=1e-6)


def test_bad_inputs_are_named(problem):
    pairs, x0, s, ckpt = _trained(problem, n=64)
    with pytest.raises(InputError, match="no variable 'vp'"):
        aspire.posterior_estimates(s, x0, ckpt, var="vp", draws=4, seed=0, iteration=1)
    with pytest.raises(InputError, match="draws must be >= 2"):
        aspire.posterior(ckpt, s, x0, pairs, var="x", draws=1, seed=0, iteration=1)
    bad = x0.copy(deep=True)
    bad["x"][0, 0] = np.nan
    with pytest.raises(InputError, match="not finite"):
        aspire.posterior_estimates(s, bad, ckpt, var="x", draws=4, seed=0, iteration=1)


def test_image_posterior_estimates_of_a_sample_do_not_depend_on_the_other_samples():
    from tasks.inference.glow import train_image_cnf

    rng = np.random.default_rng(0)
    coords = {"sample": np.arange(6), "x": np.arange(8) * 10.0, "z": np.arange(8) * 10.0}
    truth = xr.Dataset({"vp": (("sample", "x", "z"), 2000 + 100 * rng.standard_normal((6, 8, 8)))}, coords=coords)
    est = xr.Dataset({"vp": (("sample", "x", "z"), np.full((6, 8, 8), 2000.0))}, coords=coords)
    s = xr.Dataset({"gradient": (("sample", "x", "z"), rng.standard_normal((6, 8, 8)))}, coords=coords)
    c = np.stack([s.gradient.values, est.vp.values], 1)
    ckpt = to_dataset(train_image_cnf(truth.vp.values[:, None], c, seed=0, threads=1, epochs=1, batch_size=3,
                                      levels=1, steps=1, hidden=4, context_features=2, pixelwise=True))
    whole = aspire.posterior_estimates(s, est, ckpt, var="vp", draws=5, seed=1, iteration=1)
    part = aspire.posterior_estimates(s.isel(sample=[4]), est, ckpt, var="vp", draws=5, seed=1, iteration=1)
    assert whole.vp.dims == ("sample", "x", "z")
    np.testing.assert_array_equal(part.vp.values, whole.vp.sel(sample=[4]).values)
    np.testing.assert_array_equal(part["std"].values, whole["std"].sel(sample=[4]).values)
