"""Source location from travel times and the grid quadrature behind its exact posterior: closed forms where
they exist, the summary against finite differences, the best posterior given a linear function of the data."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from strata_errors import InputError
from tasks.inference import grid as G
from tasks.inference import location, stylized


@pytest.fixture(scope="module")
def problem():
    return location.problem_dataset(receivers=8, radius=1.0, velocity=1.0, noise_std=0.1)


def test_the_grid_posterior_of_a_linear_gaussian_problem_is_its_closed_form():
    rng = np.random.default_rng(0)
    A, sigma = rng.standard_normal((5, 2)), 0.4
    y = A @ np.array([0.7, -0.4]) + sigma * rng.standard_normal(5)
    grid = G.make_grid(241, 4.0)
    logp = G.log_posterior(grid, y, grid.points @ A.T, sigma)
    mean, cov = G.moments(logp, grid)
    mu, post_cov = stylized.analytic_posterior(y, A, np.zeros(2), np.eye(2), sigma**2 * np.eye(5))
    np.testing.assert_allclose(mean, mu, atol=1e-6)
    np.testing.assert_allclose(cov, post_cov, atol=1e-6)
    exact = G.gaussian_log_density(grid.points, mu, post_cov)
    np.testing.assert_allclose(logp, exact, atol=1e-6)  # normalized: the same density, not just its shape
    # conditioning on a projection Qᵀ y is the closed form of the projected problem
    q, _ = np.linalg.qr(rng.standard_normal((5, 3)))
    proj = G.log_posterior(grid, y, grid.points @ A.T, sigma, project=q)
    mu_q, cov_q = stylized.analytic_posterior(q.T @ y, q.T @ A, np.zeros(2), np.eye(2), sigma**2 * np.eye(3))
    np.testing.assert_allclose(G.moments(proj, grid)[0], mu_q, atol=1e-6)
    np.testing.assert_allclose(G.moments(proj, grid)[1], cov_q, atol=1e-6)


def test_the_grid_kl_is_the_gaussian_kl_where_both_apply():
    grid = G.make_grid(241, 4.0)
    mu_p, cov_p = np.array([0.3, -0.2]), np.array([[0.20, 0.05], [0.05, 0.10]])
    mu_q, cov_q = np.array([0.1, 0.1]), np.array([[0.30, -0.02], [-0.02, 0.15]])
    logp = G.gaussian_log_density(grid.points, mu_p, cov_p)
    logq = G.gaussian_log_density(grid.points, mu_q, cov_q)
    expected = stylized.gaussian_kl(mu_p, cov_p, mu_q, cov_q)
    np.testing.assert_allclose(G.kl(logp, logq, grid), expected, rtol=1e-5)
    assert G.kl(logp, logp, grid) == pytest.approx(0.0, abs=1e-12)
    batch = G.kl(np.stack([logp, logq]), np.stack([logq, logp]), grid)
    np.testing.assert_allclose(batch[1], stylized.gaussian_kl(mu_q, cov_q, mu_p, cov_p), rtol=1e-5)


def test_the_summary_is_the_log_likelihood_gradient(problem):
    cases = location.draw_cases(problem, samples=np.arange(5), seed=3)
    rng = np.random.default_rng(1)
    xhat = cases[["x"]].copy(data={"x": rng.standard_normal((5, 2)).astype(np.float32)})
    s = location.summaries(xhat, cases, problem)["gradient"].values
    rec = problem.receivers.values
    y = cases.y.values.astype(float)

    def loglik(x, i):
        return -0.5 * ((y[i] - location.forward(x, rec, 1.0)) ** 2).sum() / 0.1**2

    h = 1e-6
    for i in range(5):
        x = xhat.x.values[i].astype(float)
        fd = [(loglik(x + h * e, i) - loglik(x - h * e, i)) / (2 * h) for e in np.eye(2)]
        np.testing.assert_allclose(s[i], fd, rtol=1e-4, atol=1e-3)


def test_cases_are_seeded_per_label_and_the_problem_is_checked(problem):
    whole = location.draw_cases(problem, samples=np.arange(10), seed=4)
    part = location.draw_cases(problem, samples=np.array([7, 3]), seed=4)
    np.testing.assert_array_equal(part.x.values, whole.x.sel(sample=[7, 3]).values)
    np.testing.assert_array_equal(part.y.values, whole.y.sel(sample=[7, 3]).values)
    assert problem.receivers.shape == (8, 2)
    np.testing.assert_allclose(np.linalg.norm(problem.receivers.values, axis=1), 1.0)
    with pytest.raises(InputError, match="at least 2 receivers"):
        location.problem_dataset(receivers=1)
    with pytest.raises(InputError, match="odd"):
        G.make_grid(240, 4.0)


def test_the_ideal_posterior_is_exact_when_the_summaries_see_all_the_data(problem):
    """With estimates at 4 distinct points the stacked Jacobians (8 × 8) span the data: the best posterior
    given the summaries is the exact one; with one estimate at the origin it is much wider."""
    held = location.draw_cases(problem, samples=10**9 + np.arange(6), seed=0)
    ref = location.reference_posterior(held, problem, points=121, extent=4.0)
    rng = np.random.default_rng(2)

    def est(x):
        return xr.Dataset({"x": (("sample", "axis"), x)}, coords={"sample": held.sample.values})

    one = location.ideal_metrics(problem, held, ref, est(np.zeros((6, 2))))
    four = location.ideal_metrics(problem, held, ref, *[est(rng.standard_normal((6, 2))) for _ in range(4)])
    assert one.attrs["role"] == "per_case_metrics" and one.ideal_kl_grid.dims == ("case",)
    np.testing.assert_allclose(four.ideal_kl_grid.values, 0.0, atol=1e-8)
    np.testing.assert_allclose(four.ideal_mean_error.values, 0.0, atol=1e-10)
    assert float(one.ideal_kl_grid.mean()) > 0.3
    # the exact posterior's mean beats the prior mean (0) on the truth
    err = np.linalg.norm(ref["mean"].values - held.x.values, axis=1)
    assert (err**2).mean() < 0.5 * (np.linalg.norm(held.x.values, axis=1) ** 2).mean()
