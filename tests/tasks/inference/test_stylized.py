"""The stylized linear-Gaussian problem: its posterior formulas against each other and the joint Gaussian,
and the metrics on known answers."""

from __future__ import annotations

import numpy as np
import pytest

from strata_errors import InputError
from tasks.inference.stylized import (
    analytic_posterior,
    cov_error,
    coverage,
    error_std_corr,
    gaussian_kl,
    make_problem,
    mean_error,
    sample_gaussian,
    sample_pairs,
    summary,
)


@pytest.fixture(params=[(3, 5, 0.6), (4, 2, 0.0)], ids=["overdetermined-coloured", "underdetermined-white"])
def problem(request):
    d, m, rho = request.param
    return make_problem(d, m, seed=7, noise_correlation=rho)


def brute_force_conditional(y, A, mu0, G0, Gn):
    """x | y from the joint Gaussian of (x, y), through the inverse of its full covariance."""
    d = len(mu0)
    joint = np.block([[G0, G0 @ A.T], [A @ G0, A @ G0 @ A.T + Gn]])
    prec = np.linalg.inv(joint)
    cov = np.linalg.inv(prec[:d, :d])
    mean = mu0 - (y - A @ mu0) @ (cov @ prec[:d, d:]).T
    return mean, cov


def test_the_problem_and_its_pairs_are_seeded(problem):
    d, m = problem.dims
    again = make_problem(d, m, seed=7, noise_correlation=problem.Gn[0, 1] / problem.Gn[0, 0])
    assert all(np.array_equal(getattr(problem, k), getattr(again, k)) for k in ("A", "mu0", "G0", "Gn"))
    x, y = sample_pairs(problem, 10, seed=1)
    assert x.shape == (10, d) and y.shape == (10, m)
    x2, y2 = sample_pairs(problem, 10, seed=1)
    assert np.array_equal(x, x2) and np.array_equal(y, y2)
    assert not np.array_equal(sample_pairs(problem, 10, seed=1, index=1)[0], x)
    assert np.all(np.linalg.eigvalsh(problem.G0) > 0) and np.all(np.linalg.eigvalsh(problem.Gn) > 0)


def test_the_pairs_have_the_joint_moments():
    p = make_problem(2, 3, seed=3, noise_correlation=0.7)
    x, y = sample_pairs(p, 100_000, seed=0)
    assert np.allclose(x.mean(0), p.mu0, atol=0.02)
    assert np.allclose(np.cov(x.T), p.G0, atol=0.03)
    assert np.allclose(np.cov((y - x @ p.A.T).T), p.Gn, atol=0.01)


def test_gain_and_precision_forms_agree_with_the_joint_gaussian(problem):
    _, y = sample_pairs(problem, 6, seed=2)
    args = (problem.A, problem.mu0, problem.G0, problem.Gn)
    mean, cov = analytic_posterior(y, *args)
    for form in ("gain", "precision"):
        m, c = analytic_posterior(y, *args, form=form)
        assert np.allclose(m, mean, atol=1e-10) and np.allclose(c, cov, atol=1e-10)
    bm, bc = brute_force_conditional(y, *args)
    assert np.allclose(mean, bm, atol=1e-9) and np.allclose(cov, bc, atol=1e-9)
    assert mean.shape == (6, problem.dims[0]) and cov.shape == (problem.dims[0],) * 2
    one, _ = analytic_posterior(y[0], *args)
    assert one.shape == (problem.dims[0],) and np.allclose(one, mean[0])
    assert np.all(np.linalg.eigvalsh(problem.G0 - cov) > -1e-12)  # data never add uncertainty


def test_the_summary_is_the_gradient_of_the_data_misfit(problem):
    x, y = sample_pairs(problem, 3, seed=4)
    g = summary(x, y, problem.A, problem.Gn)
    assert g.shape == x.shape
    Gn_inv = np.linalg.inv(problem.Gn)

    def misfit(v, yy):
        r = problem.A @ v - yy
        return 0.5 * r @ Gn_inv @ r

    h = 1e-6
    for i in range(3):
        fd = [(misfit(x[i] + h * e, y[i]) - misfit(x[i] - h * e, y[i])) / (2 * h) for e in np.eye(len(x[i]))]
        assert np.allclose(g[i], fd, atol=1e-6)
    assert np.allclose(summary(x[0], y[0], problem.A, problem.Gn), g[0])


def test_exact_posterior_samples_cover_at_the_nominal_level(problem):
    x, y = sample_pairs(problem, 2000, seed=5)
    mean, cov = problem.posterior(y)
    draws = sample_gaussian(mean, cov, 400, np.random.default_rng(0))
    assert draws.shape == (400, 2000, problem.dims[0])
    for level in (0.5, 0.9):
        assert coverage(draws, x, level) == pytest.approx(level, abs=0.02)
    # an overconfident posterior (half the spread) covers far less
    tight = sample_gaussian(mean, cov / 4, 400, np.random.default_rng(0))
    assert coverage(tight, x, 0.9) < 0.75


def test_kl_of_a_gaussian_with_itself_is_zero_and_known_answers():
    p = make_problem(3, 4, seed=1)
    _, y = sample_pairs(p, 4, seed=0)
    mean, cov = p.posterior(y)
    assert np.allclose(gaussian_kl(mean, cov, mean, cov), 0.0, atol=1e-12)
    assert gaussian_kl(mean, cov, mean, cov).shape == (4,)
    # 1-D: KL(N(0, 1) || N(1, 4)) = ln 2 + (1 + 1) / 8 - 1/2
    kl = gaussian_kl(np.zeros(1), np.eye(1), np.ones(1), 4 * np.eye(1))
    assert kl == pytest.approx(np.log(2) + 2 / 8 - 0.5)
    assert float(gaussian_kl(mean[0], cov, mean[1], cov)) > 0


def test_mean_and_cov_errors_and_the_error_std_correlation():
    truth = np.array([[1.0, 2.0], [3.0, 4.0]])
    assert mean_error(truth, truth) == 0.0
    assert mean_error(truth * 1.1, truth) == pytest.approx(0.1)
    assert mean_error(truth + 0.5, truth, scale=np.array([0.5, 0.25])) == pytest.approx(np.sqrt((1 + 4) / 2))
    cov = np.array([[2.0, 0.5], [0.5, 1.0]])
    assert cov_error(cov, cov) == 0.0 and cov_error(1.2 * cov, cov) == pytest.approx(0.2)
    assert cov_error(np.stack([cov, cov]), cov) == 0.0
    rng = np.random.default_rng(0)
    std = rng.uniform(0.1, 2.0, (500, 3))
    truth = rng.standard_normal((500, 3))
    mean = truth + std * rng.standard_normal((500, 3))
    assert error_std_corr(mean, std, truth) > 0.4
    assert abs(error_std_corr(mean, rng.permutation(std.ravel()).reshape(std.shape), truth)) < 0.15
    with pytest.raises(InputError, match="constant"):
        error_std_corr(mean, np.ones(3), truth)


def test_bad_shapes_and_levels_are_refused():
    p = make_problem(2, 3, seed=0)
    with pytest.raises(InputError, match="shapes do not fit"):
        analytic_posterior(np.zeros(2), p.A, p.mu0, p.G0, p.Gn)
    with pytest.raises(InputError, match="level"):
        coverage(np.zeros((4, 2)), np.zeros(2), 1.0)
    with pytest.raises(InputError, match="seeds"):
        sample_pairs(p, 3, seed=-1)
