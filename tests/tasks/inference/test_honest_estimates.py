"""Honest estimates and honest numbers in the ASPIRE loop: cross-fitted estimates come from CNFs that never saw
their sample, the finite-draw coverage a calibrated posterior reaches, the baselines, paired differences."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from tasks.inference import aspire, baselines, stylized_data
from tasks.inference.aspire_metrics import iteration_metrics, metrics_table
from tasks.inference.stylized import coverage, nominal_coverage
from tasks.nn.checkpoint import to_dataset

CNF = {"family": "maf", "transforms": 1, "hidden_features": [8]}
FIT = {"epochs": 1, "batch_size": 64, "patience": None}


@pytest.fixture(scope="module")
def pairs():
    problem = stylized_data.problem_dataset(d=2, m=3, seed=1)
    xy = stylized_data.draw_pairs(problem, samples=np.arange(90), seed=0)
    x0 = stylized_data.prior_estimates(xy, problem)
    return xy, x0, stylized_data.summaries(x0, xy, problem)


def test_no_training_sample_gets_its_estimate_from_a_cnf_that_saw_it(pairs):
    xy, x0, s = pairs
    folds = 3
    ckpts = [to_dataset(aspire.train_posterior(xy, s, x0, var="x", iteration=1, seed=0, threads=1, cnf=CNF,
                                               training=FIT, fold=f, folds=folds)) for f in range(folds)]
    labels = s.sample.values
    fold = aspire.fold_of(labels, folds)
    for f, ckpt in enumerate(ckpts):
        # the z-scoring statistics a CNF carries are the means of exactly the samples it was trained on
        seen = labels[fold != f]
        np.testing.assert_allclose(ckpt["x_mean"].values, xy.x.sel(sample=seen).values.mean(0), rtol=1e-5)
        assert not np.allclose(ckpt["x_mean"].values, xy.x.values.mean(0), rtol=1e-5)
    crossed = aspire.posterior_estimates(s, x0, *ckpts, var="x", draws=8, seed=2, iteration=1)
    for f, ckpt in enumerate(ckpts):
        mine = s.isel(sample=np.flatnonzero(fold == f))
        alone = aspire.posterior_estimates(mine, x0, ckpt, var="x", draws=8, seed=2, iteration=1)
        np.testing.assert_array_equal(crossed.x.sel(sample=mine.sample).values, alone.x.values)
    # the fold CNFs differ from each other and from one trained on every pair
    whole = to_dataset(aspire.train_posterior(xy, s, x0, var="x", iteration=1, seed=0, threads=1, cnf=CNF,
                                              training=FIT))
    plain = aspire.posterior_estimates(s, x0, whole, var="x", draws=8, seed=2, iteration=1)
    assert not np.array_equal(plain.x.values, crossed.x.values)


def test_the_nominal_coverage_of_finitely_many_draws_is_what_a_calibrated_posterior_reaches():
    assert nominal_coverage(0.9, 128) == pytest.approx(117 / 129)  # ranks 6 and 123
    assert nominal_coverage(0.5, 128) == pytest.approx(65 / 129)
    rng = np.random.default_rng(0)
    trials = 40000
    for n, dist in ((16, rng.standard_normal), (9, rng.standard_exponential), (128, rng.standard_cauchy)):
        draws = dist((n, trials))
        truth = dist(trials)  # a calibrated posterior: the truth is one more draw of it, whatever its shape
        for level in (0.5, 0.9):
            got = coverage(draws, truth, level)
            se = np.sqrt(got * (1 - got) / trials)
            assert abs(got - nominal_coverage(level, n)) < 4 * se, (n, level, got)
    # 16 draws cannot give a 90 % interval: the nominal value says what they give
    assert nominal_coverage(0.9, 16) == pytest.approx(15 / 17) and nominal_coverage(0.9, 9) == pytest.approx(0.8)


def test_the_linear_baseline_recovers_a_linear_map_and_the_prior_mean_does_not():
    rng = np.random.default_rng(0)
    n, d = 400, 6
    x = rng.standard_normal((n, d))
    c = np.concatenate([x @ rng.standard_normal((d, d)), np.zeros((n, d))], 1) + 0.05 * rng.standard_normal((n, 2 * d))
    coords = {"sample": np.arange(n), "component": np.arange(d)}
    truth = xr.Dataset({"x": (("sample", "component"), x)}, coords=coords)
    s = xr.Dataset({"gradient": (("sample", "component"), c[:, :d])}, coords=coords)
    e = xr.Dataset({"x": (("sample", "component"), c[:, d:])}, coords=coords)
    test, train = slice(0, 50), slice(50, None)
    out = baselines.baselines(truth.isel(sample=train), s.isel(sample=train), e.isel(sample=train),
                              s.isel(sample=test), e.isel(sample=test), truth.isel(sample=test), var="x")
    assert out.attrs["role"] == "per_case_metrics" and out.rmse_linear.dims == ("case",)
    assert float(out.rmse_linear.mean()) < 0.1 < 0.8 < float(out.rmse_prior_mean.mean())
    assert out.attrs["linear_components_out"] == d  # cross-validation keeps every direction of the truth
    expected = np.sqrt(((x[test] - x[train].mean(0)) ** 2).mean(1))
    np.testing.assert_allclose(out.rmse_prior_mean.values, expected)


def _post(err: float, cases: int = 20, rng=None):
    rng = rng or np.random.default_rng(0)
    truth = rng.standard_normal((cases, 2))
    draws = truth[:, None] + err * rng.standard_normal((cases, 64, 2))
    return xr.Dataset({"draws": (("case", "draw", "axis"), draws), "mean": (("case", "axis"), draws.mean(1)),
                       "std": (("case", "axis"), draws.std(1, ddof=1)), "truth": (("case", "axis"), truth),
                       "nll": ("case", np.zeros(cases))}, coords={"case": np.arange(cases)})


def test_extra_per_case_metrics_join_the_row_and_the_table_pairs_iterations():
    rows = []
    for k, scale in ((1, 2.0), (2, 1.0)):
        post = _post(0.1)
        extra = xr.Dataset({"kl_grid": ("case", scale * np.arange(1.0, 21.0)),
                            "mean_error": ("case", scale**2 * np.full(20, 0.25), {"aggregate": "rms"})},
                           coords={"case": np.arange(20)}, attrs={"role": "per_case_metrics"})
        rows.append(iteration_metrics(post, extra, iteration=k))
    t = metrics_table(*rows)
    np.testing.assert_allclose(t.kl_grid.values, [21.0, 10.5])
    np.testing.assert_allclose(t.mean_error.values, [1.0, 0.5])  # the root of the mean of squared values
    assert t.kl_grid_diff.dims == ("change",) and t.change.values.tolist() == [2]
    np.testing.assert_allclose(t.kl_grid_diff.sel(change=2), -10.5)
    # the paired difference's SE is that of the per-case differences, not of either iteration alone
    np.testing.assert_allclose(t.kl_grid_diff_se.sel(change=2), np.arange(1.0, 21.0).std(ddof=1) / np.sqrt(20))
    np.testing.assert_allclose(t.mean_error_diff.sel(change=2), -0.5)
    assert t.coverage_90_nominal.values[0] == pytest.approx(59 / 65)  # ranks 3 and 62 of 64
    assert t.kl_grid_per_case.dims == ("iteration", "case")


def test_the_cross_validation_shortcut_scores_as_explicit_predictions_do():
    """The CV error is computed in the targets' principal directions (cheap); explicit predictions of every
    candidate on every fold choose the same candidate with the same error."""
    rng = np.random.default_rng(1)
    c = rng.standard_normal((120, 12))
    x = c[:, :3] @ rng.standard_normal((3, 7)) + 0.3 * rng.standard_normal((120, 7))
    _, choice, cv = baselines.ridge_pca_fit(c, x, seed=0)
    order = np.random.default_rng(0).permutation(120)
    parts = np.array_split(order, 5)
    grid_in, grid_out = baselines._components(12), baselines._components(7)
    err = np.zeros((len(grid_in), len(grid_out), len(baselines._ALPHAS)))
    for part in parts:
        fit = baselines._Fold(c[np.setdiff1d(order, part)], x[np.setdiff1d(order, part)], 12, 7)
        for i, a in enumerate(grid_in):
            for j, b in enumerate(grid_out):
                for k, alpha in enumerate(baselines._ALPHAS):
                    err[i, j, k] += ((fit.predict(c[part], a, b, alpha) - x[part]) ** 2).sum()
    i, j, k = np.unravel_index(np.argmin(err), err.shape)
    assert choice == (grid_in[i], grid_out[j], baselines._ALPHAS[k])
    assert cv == pytest.approx(err[i, j, k] / x.size, rel=1e-9)
